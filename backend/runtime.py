"""The long-lived parts a request's service calls need, built once per process by create_app().

Everything long-lived is reached one way, `request.app.ctx.rt` in a handler and the `rt` argument in
a service. Its fields are typed by kit's classes and Protocols, so this module imports only kit and
settings: the arrows of imports point down, from the domains to kit, never back.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from redis.asyncio import Redis

from backend.kit.cache import AnswerCache
from backend.kit.coalesce import Coalescer
from backend.kit.gate import WorkGate
from backend.kit.gateways import SmsSender, WechatGateway
from backend.kit.i18n import MessageCatalogue
from backend.kit.pii import PiiCipher
from backend.kit.presence import Presence
from backend.kit.ratelimit import RateLimiter
from backend.kit.realtime import Broker
from backend.kit.sessions import SessionRevocations
from backend.kit.storage import FileStore
from backend.settings import Settings

__all__ = ["Runtime"]


@dataclass
class Runtime:
    settings: Settings
    messages: MessageCatalogue
    cipher: PiiCipher
    limiter: RateLimiter
    broker: Broker
    redis: Redis | None
    sms: SmsSender
    wechat: WechatGateway
    catalogue_cache: AnswerCache
    catalogue_revision_cache: AnswerCache   # the revision itself, read at most once a second or so
    estimates: AnswerCache             # what a waiting ticket's estimate is made of (kept seconds)
    hints: Coalescer                   # hints whose latest run is all that counts (a hall's waiting counts)
    log: logging.Logger
    revocations: SessionRevocations
    password_checks: WorkGate          # argon2 verifications in flight
    presence: Presence                 # who holds an open socket now (consulting's staff and citizens)
    official_account: WechatGateway    # the official account's API (its own appid and access token)
    files: FileStore                   # uploaded materials and photos (kit.storage)
