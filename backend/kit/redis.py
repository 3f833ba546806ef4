"""Redis from asyncio (redis.asyncio, the continuation of aioredis), or nothing on the embedded default."""
from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from backend.settings import Settings

__all__ = ["create_redis"]


def create_redis(settings: Settings) -> Redis | None:
    if not settings.uses_redis:
        return None
    # A command on a pooled connection that died (Redis restarted, a network blip) is tried again on a
    # fresh one; the pool keeps idle connections, so the first use of each after a restart fails
    # otherwise. Two tries within about half a second: an outage still answers 503 quickly.
    retry = Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.25), retries=2)
    return Redis.from_url(settings.redis_url, decode_responses=False, health_check_interval=30, retry=retry)
