"""What the domains need from the outside world, as Protocols: the Runtime is typed by these, and the
implementations (notify's SMS senders, miniprogram_api's WeChat gateway) depend on kit, not the reverse."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

__all__ = ["SmsError", "SmsSender", "WechatGateway", "WechatSession"]


class SmsError(Exception):
    """The provider did not take the message. `retryable`: flow control, a provider fault or the network
    (try later). `recipient_refused`: the provider will not send to this number (not a mobile number,
    blacklisted); a different number is the only way. Neither: our side is wrong (credentials, an
    unregistered template), which the operators must fix. `code` is the provider's own; never the phone."""

    def __init__(self, provider: str, code: str, *, retryable: bool = False, recipient_refused: bool = False):
        super().__init__(f"{provider}: {code}")
        self.provider = provider
        self.code = code
        self.retryable = retryable
        self.recipient_refused = recipient_refused


class SmsSender(Protocol):
    async def send(self, phone: str, template: str, language: str, *, reference: str | None = None,
                   **params: object) -> str | None:
        """Send template `template` (config/templates/sms.toml) in `language` to `phone`; answers the
        provider's message id (None from the console). `reference` travels with the message and comes
        back in the provider's delivery receipt. Raises SmsError when it is not taken."""

    async def was_sent(self, phone: str, reference: str, *, since: datetime) -> bool | None:
        """Whether a message sent with `reference` since `since` went out, as the provider records it:
        True, False, or None when the provider cannot tell. SmsError when the lookup itself fails. A
        sender that died between the call and writing its outcome is followed by this question."""


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

    async def send_customer_service_text(self, openid: str, content: str) -> None:
        """An official account's customer-service text (客服消息) to a follower; AppError
        "wechat_reply_window_closed" (409) outside the 48 hours after the follower last wrote."""

    async def get_wxa_code_unlimited(self, scene: str, page: str | None = None, *, check_path: bool = True,
                                     env_version: str = "release", width: int = 430) -> bytes: ...

    async def close(self) -> None: ...
