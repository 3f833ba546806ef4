import uuid

import pytest
from redis.asyncio import Redis

from backend.kit.errors import AppError
from backend.kit.ratelimit import MemoryRateLimiter, RedisRateLimiter, Window, enforce
from tests.conftest import REDIS_URL, delete_redis_prefix


@pytest.fixture(params=["memory", "redis"])
async def limiter(request):
    if request.param == "memory":
        yield MemoryRateLimiter()
        return
    prefix = f"ehall-test-rl-{uuid.uuid4().hex}:"
    redis = Redis.from_url(REDIS_URL)
    try:
        yield RedisRateLimiter(redis, prefix)
    finally:
        await redis.aclose()
        await delete_redis_prefix(prefix)


class TestWindows:
    async def test_allows_up_to_the_limit_then_says_how_long_to_wait(self, limiter):
        windows = [Window(2, 60)]
        assert await limiter.hit("k", windows) == 0
        assert await limiter.hit("k", windows) == 0
        wait = await limiter.hit("k", windows)
        assert 0 < wait <= 60

    async def test_a_refused_hit_does_not_use_up_the_longer_windows(self, limiter):
        windows = [Window(1, 60), Window(3, 3600)]
        assert await limiter.hit("k", windows) == 0
        for _ in range(5):
            assert await limiter.hit("k", windows) > 0
        # only the one accepted hit was counted in the hour: a second key proves the hour still has room
        hour_only = [Window(3, 3600)]
        assert await limiter.hit("k", [Window(100, 60), Window(3, 3600)]) == 0
        assert await limiter.hit("k", [Window(100, 60), Window(3, 3600)]) == 0
        assert await limiter.hit("k", [Window(100, 60), *hour_only]) > 3500

    async def test_keys_are_independent(self, limiter):
        assert await limiter.hit("a", [Window(1, 60)]) == 0
        assert await limiter.hit("b", [Window(1, 60)]) == 0


class TestHitAll:
    async def test_counts_under_every_key_when_all_have_room(self, limiter):
        assert await limiter.hit_all({"phone:tpl": [Window(5, 30)], "phone": [Window(2, 3600)]}) == 0
        assert await limiter.hit("phone", [Window(2, 3600)]) == 0
        assert await limiter.hit("phone", [Window(2, 3600)]) > 0   # the first hit counted here too

    async def test_a_hit_refused_under_one_key_is_counted_under_none(self, limiter):
        assert await limiter.hit("phone", [Window(1, 3600)]) == 0
        for _ in range(3):
            assert 3500 < await limiter.hit_all({"phone:tpl": [Window(1, 30)], "phone": [Window(1, 3600)]}) <= 3600
        assert await limiter.hit("phone:tpl", [Window(1, 30)]) == 0

    async def test_enforce_raises_429_with_retry_after_in_whole_seconds(self, limiter):
        await enforce(limiter, "k", [Window(1, 60)])
        with pytest.raises(AppError) as refused:
            await enforce(limiter, "k", [Window(1, 60)])
        assert refused.value.status == 429
        assert refused.value.code == "rate_limited"
        assert 0 < int(refused.value.headers["Retry-After"]) <= 60


async def test_forget_gives_the_allowance_back(limiter):
    windows = [Window(1, 60)]
    assert await limiter.hit("k", windows) == 0
    assert await limiter.hit("k", windows) > 0
    await limiter.forget("k", windows)
    assert await limiter.hit("k", windows) == 0
