"""Request parsing and problem+json rendering: the one path from bad input to a clear 4xx."""
from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sanic import Request
from sanic.exceptions import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    SanicException,
    ServiceUnavailable,
)
from sanic.response import HTTPResponse

from backend.kit.errors import PROBLEM_CONTENT_TYPE, AppError, FieldError
from backend.kit.i18n import MessageCatalogue, negotiate_language
from backend.kit.pii import redact_text

__all__ = ["parse_body", "parse_query", "validate", "problem_response", "error_to_problem", "language_of",
           "json_response", "etagged_json", "path_value", "path_id", "Representation", "represent",
           "conditional_response"]

log = logging.getLogger("ehall.errors")
Model = TypeVar("Model", bound=BaseModel)

# pydantic error types -> our stable field codes (config/messages/errors.toml)
_FIELD_CODES = {
    "missing": "field.missing",
    "extra_forbidden": "field.unknown",
    "string_too_long": "field.too_long",
    "too_long": "field.too_long",
    "string_too_short": "field.too_short",
    "too_short": "field.too_short",
    "string_pattern_mismatch": "field.format",
    "literal_error": "field.choice",
    "enum": "field.choice",
    "greater_than": "field.range",
    "greater_than_equal": "field.range",
    "less_than": "field.range",
    "less_than_equal": "field.range",
}


def language_of(request: Request) -> str:
    """Accept-Language; without one, the language a logged-in citizen chose in their profile."""
    header = request.headers.get("accept-language")
    if not header:
        principal = getattr(request.ctx, "principal", None)
        if principal is not None and principal.language:
            return principal.language
    return negotiate_language(header)


def json_response(body: BaseModel | Any, status: int = 200, headers: dict[str, str] | None = None) -> HTTPResponse:
    """An answer: a response schema's model (the one definition of what the client gets), or plain JSON
    for kit's own answers."""
    payload = body.model_dump_json() if isinstance(body, BaseModel) \
        else json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)
    return HTTPResponse(payload, status=status, headers=headers, content_type="application/json; charset=utf-8")


def _field_errors(exc: ValidationError) -> list[FieldError]:
    errors = []
    for item in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in item["loc"]) or "$"
        kind = item["type"]
        if kind in _FIELD_CODES:
            code = _FIELD_CODES[kind]
        elif kind.endswith("_type") or kind.endswith("_parsing"):
            code = "field.type"
        elif kind == "value_error" and isinstance((item.get("ctx") or {}).get("error"), ValueError) \
                and str(item["ctx"]["error"]).startswith("field."):
            code = str(item["ctx"]["error"])  # our own validators raise ValueError("field.<code>")
        else:
            code = "field.invalid"
        params = {k: v for k, v in (item.get("ctx") or {}).items() if isinstance(v, (int, float, str))}
        errors.append(FieldError(field=field, code=code, params=params))
    return errors


# C0 control characters other than tab and newlines: PostgreSQL refuses NUL in text, and nothing a
# person types contains the others
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _control_character_errors(data: Any) -> list[FieldError]:
    # iterative: a body nested a thousand deep must not exhaust the interpreter's stack
    errors: list[FieldError] = []
    pending: list[tuple[str, Any]] = [("", data)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            if _CONTROL.search(value):
                errors.append(FieldError(field=path or "$", code="field.format"))
        elif isinstance(value, dict):
            for key, item in value.items():
                pending.append((path, key))
                pending.append((f"{path}.{key}" if path else str(key), item))
        elif isinstance(value, list):
            pending.extend((f"{path}.{i}" if path else str(i), item) for i, item in enumerate(value))
    return errors


def validate(model: type[Model], data: Any) -> Model:
    errors = _control_character_errors(data)
    if errors:
        raise AppError("validation_failed", 422, errors=errors)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise AppError("validation_failed", 422, errors=_field_errors(exc)) from None


def parse_body(request: Request, model: type[Model]) -> Model:
    """The request's JSON body as `model`, or a 4xx problem. An empty body counts as `{}`."""
    content_type = (request.content_type or "").split(";")[0].strip().lower()
    if request.body and content_type not in ("application/json", "") and not content_type.endswith("+json"):
        raise AppError("unsupported_media_type", 415)
    if not request.body:
        data: Any = {}
    else:
        try:
            data = json.loads(request.body)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
            raise AppError("malformed_json", 400) from None
    return validate(model, data)


def parse_query(request: Request, model: type[Model]) -> Model:
    """Query parameters as `model`; a parameter given twice keeps the first value."""
    data = {key: values[0] for key, values in request.args.items()}
    return validate(model, data)


def path_value(value: str, schema: dict[str, Any], not_found: str) -> str:
    """Check a path segment against its documented schema; anything else names nothing that exists."""
    if not re.fullmatch(schema["pattern"], value):
        raise AppError(not_found, 404)
    return value


def path_id(value: int, not_found: str) -> int:
    """Database ids are positive 64-bit integers; a larger number cannot name a row."""
    if not 0 < value < 2**63:
        raise AppError(not_found, 404)
    return value


def error_to_problem(exc: BaseException) -> AppError:
    """Map anything raised while handling a request to the AppError clients see."""
    if isinstance(exc, AppError):
        return exc
    if isinstance(exc, NotFound):
        return AppError("not_found", 404)
    if isinstance(exc, MethodNotAllowed):
        return AppError("method_not_allowed", 405, headers=dict(exc.headers or {}))
    if isinstance(exc, PayloadTooLarge):
        return AppError("body_too_large", 413)
    if isinstance(exc, ServiceUnavailable):
        return AppError("service_unavailable", 503)
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
        # limits, sessions and the broker live in Redis: without it we cannot decide safely, so we
        # refuse for a moment rather than guess (a limit skipped is an SMS bill, a session not checked)
        return AppError("service_unavailable", 503, headers={"Retry-After": "5"}, retry_after=5)
    if isinstance(exc, BadRequest):
        return AppError("malformed_json" if "json" in str(exc).lower() else "validation_failed", 400)
    if isinstance(exc, SanicException) and 400 <= exc.status_code < 500:
        return AppError("validation_failed", exc.status_code)
    return AppError("internal_error", 500)


def problem_response(request: Request, error: AppError, messages: MessageCatalogue) -> HTTPResponse:
    language = language_of(request)
    body: dict[str, Any] = {
        "type": f"https://ehall.ulanqab.gov.cn/problems/{error.code}",
        "title": messages.render(error.code, "en", **error.params),
        "status": error.status,
        "code": error.code,
        "detail": messages.render(error.code, language, **error.params),
        "lang": language,
        "instance": redact_text(request.path),
    }
    request_id = getattr(request.ctx, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    if error.errors:
        body["errors"] = [
            {"field": e.field, "code": e.code, "message": messages.render(e.code, language, **e.params)}
            for e in error.errors
        ]
    for key, value in error.params.items():
        if key not in body:
            body[key] = value
    response = json_response(body, status=error.status, headers=error.headers)
    response.content_type = PROBLEM_CONTENT_TYPE
    response.headers["content-language"] = language
    return response


# below this a gzip header costs more than it saves
_GZIP_MIN_BYTES = 1024


def _accepts_gzip(request: Request) -> bool:
    for coding in request.headers.get("accept-encoding", "").split(","):
        name, _, params = coding.strip().partition(";")
        if name.strip().lower() in ("gzip", "*") and params.replace(" ", "") not in ("q=0", "q=0.0"):
            return True
    return False


@dataclass(frozen=True)
class Representation:
    """A finished JSON answer: its bytes, their digest (the ETag) and, when worth it, the gzipped bytes."""
    payload: bytes
    digest: str
    gzipped: bytes | None


def represent(body: Any) -> Representation:
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode()
    gzipped = gzip.compress(payload, compresslevel=6, mtime=0) if len(payload) >= _GZIP_MIN_BYTES else None
    return Representation(payload, hashlib.sha256(payload).hexdigest()[:32], gzipped)


def conditional_response(request: Request, representation: Representation, *, max_age: int) -> HTTPResponse:
    """Answer with a strong ETag, gzipped when the client takes it; 304 with no body when the client has
    it already, so a phone on a weak network revalidates the catalogue instead of downloading it again."""
    digest = representation.digest
    compress = representation.gzipped is not None and _accepts_gzip(request)
    # each encoding is its own representation with its own strong validator (RFC 9110 8.8.3)
    etag = f'"{digest}-gz"' if compress else f'"{digest}"'
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={max_age}", "Vary": "Accept-Encoding"}
    if_none_match = request.headers.get("if-none-match", "")
    known = {tag.strip().removeprefix("W/").replace("-gz", "") for tag in if_none_match.split(",")}
    if f'"{digest}"' in known or if_none_match.strip() == "*":
        return HTTPResponse(status=304, headers=headers)
    if compress:
        headers["Content-Encoding"] = "gzip"
    return HTTPResponse(representation.gzipped if compress else representation.payload, headers=headers,
                        content_type="application/json; charset=utf-8")


def etagged_json(request: Request, body: Any, *, max_age: int) -> HTTPResponse:
    return conditional_response(request, represent(body), max_age=max_age)
