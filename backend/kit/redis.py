"""Redis from asyncio (redis.asyncio, the continuation of aioredis), or nothing on the embedded default."""
from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
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
    # A command waits for a free pooled connection (up to redis_pool_timeout_seconds) instead of failing:
    # redis-py's default pool holds 100 and raises "Too many connections" at once beyond that, which
    # answered 503 to a third of a 256-client booking storm on 2 workers (bench/rush.py).
    pool = BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=settings.redis_max_connections,
        timeout=settings.redis_pool_timeout_seconds, decode_responses=False, health_check_interval=30, retry=retry)
    return Redis.from_pool(pool)
