"""The long-lived parts a request's service calls need, built once by create_app()."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from redis.asyncio import Redis

from backend.kit.i18n import MessageCatalogue
from backend.kit.pii import PiiCipher
from backend.kit.ratelimit import RateLimiter
from backend.kit.realtime import Broker
from backend.settings import Settings

if TYPE_CHECKING:
    from miniprogram_api.wechat import WechatGateway
    from notify.sms import SmsSender

__all__ = ["Runtime"]


@dataclass
class Runtime:
    settings: Settings
    messages: MessageCatalogue
    cipher: PiiCipher
    limiter: RateLimiter
    broker: Broker
    redis: Redis | None
    sms: "SmsSender"
    wechat: "WechatGateway"
