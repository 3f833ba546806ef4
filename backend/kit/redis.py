"""Redis from asyncio (redis.asyncio, the continuation of aioredis), or nothing on the embedded default."""
from __future__ import annotations

from redis.asyncio import Redis

from backend.settings import Settings

__all__ = ["create_redis"]


def create_redis(settings: Settings) -> Redis | None:
    if not settings.uses_redis:
        return None
    return Redis.from_url(settings.redis_url, decode_responses=False, health_check_interval=30)
