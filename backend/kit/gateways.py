"""What the domains need from the outside world, as Protocols: the Runtime is typed by these, and the
implementations (notify's SMS senders, miniprogram_api's WeChat gateway) depend on kit, not the reverse."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["SmsSender", "WechatGateway", "WechatSession"]


class SmsSender(Protocol):
    async def send(self, phone: str, template: str, language: str, **params: object) -> None:
        """Send template `template` (config/templates/sms.toml) in `language` to `phone`."""


@dataclass(frozen=True)
class WechatSession:
    openid: str
    unionid: str | None
    session_key: str = field(repr=False)  # lets its holder decrypt the user's WeChat data: never logged


class WechatGateway(Protocol):
    async def code_to_session(self, code: str) -> WechatSession: ...

    async def get_phone_number(self, code: str) -> str: ...

    async def send_subscribe_message(self, openid: str, template_id: str, data: dict[str, str], *,
                                     page: str | None = None, miniprogram_state: str = "formal",
                                     lang: str = "zh_CN") -> None: ...

    async def msg_sec_check(self, openid: str, content: str, scene: int) -> str: ...

    async def get_wxa_code_unlimited(self, scene: str, page: str | None = None, *, check_path: bool = True,
                                     env_version: str = "release", width: int = 430) -> bytes: ...

    async def close(self) -> None: ...
