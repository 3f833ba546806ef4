"""How notify reaches a person, whoever keeps their details (accounts for citizens and staff)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["NotificationContact"]


@dataclass(frozen=True)
class NotificationContact:
    """The phone in clear is for the SMS sender only (never logged or answered); the openid is the
    mini-program's; `wechat` and `sms` are the channels the person allows."""
    kind: Literal["citizen", "staff"]
    id: int
    language: str
    phone: str | None = field(repr=False)
    wechat_openid: str | None = field(repr=False)
    wechat: bool
    sms: bool
