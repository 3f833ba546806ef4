"""One way to fail: raise AppError(code, status, **params); the app renders RFC 9457 problem+json.

`code` is stable (clients switch on it); the message comes from config/messages/errors.toml in the
request's language; `errors` lists field-level problems for validation failures.
"""
from __future__ import annotations

from dataclasses import dataclass, field as dataclass_field
from typing import Any

__all__ = ["AppError", "FieldError", "PROBLEM_CONTENT_TYPE"]

PROBLEM_CONTENT_TYPE = "application/problem+json"


@dataclass
class FieldError:
    """One problem with one field: where it is (a JSON pointer-like dotted path) and what is wrong."""
    field: str
    code: str
    params: dict[str, Any] = dataclass_field(default_factory=dict)



class AppError(Exception):
    """A failure the client can understand and act on. Never carries personal data in params."""

    def __init__(self, code: str, status: int = 400, *, errors: list[FieldError] | None = None,
                 headers: dict[str, str] | None = None, **params: Any):
        super().__init__(code)
        self.code = code
        self.status = status
        self.errors = errors or []
        self.headers = headers or {}
        self.params = params
