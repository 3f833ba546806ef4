"""A burst of more concurrent Redis commands than a process has pooled connections waits for a free
connection instead of failing (redis-py's default pool raised "Too many connections" at once beyond
100, and every request of a 256-client booking storm past that answered 503: bench/rush.py)."""
import asyncio
import uuid

from backend.kit.redis import create_redis
from backend.settings import Settings
from tests.conftest import REDIS_URL   # Redis itself, on both runs (as tests/kit/test_realtime.py uses it)


async def blocking_burst(settings: Settings, commands: int) -> list:
    redis = create_redis(settings)
    key = f"ehall-test-pool-{uuid.uuid4().hex}"   # never pushed to: each BLPOP holds its connection 0.1 s
    try:
        return await asyncio.gather(*(redis.blpop([key], timeout=0.1) for _ in range(commands)))
    finally:
        await redis.aclose()


async def test_more_concurrent_commands_than_the_default_pool_holds_all_succeed():
    settings = Settings(redis_url=REDIS_URL)
    assert await blocking_burst(settings, settings.redis_max_connections + 50) == \
        [None] * (settings.redis_max_connections + 50)


async def test_the_pool_opens_at_most_redis_max_connections():
    settings = Settings(redis_url=REDIS_URL, redis_max_connections=2)
    redis = create_redis(settings)
    try:
        assert redis.connection_pool.max_connections == 2
    finally:
        await redis.aclose()
    assert await blocking_burst(settings, 6) == [None] * 6
