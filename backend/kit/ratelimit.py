"""Rate limits over several windows at once ("1 a minute, 5 an hour, 10 a day").

A request is counted only if every window still has room, so a refused request does not eat into
the caller's allowance. Each window starts at its first hit and lasts its length: "1 a minute" then
means at most one in any 60 seconds after an accepted hit, and Retry-After is exact.
Redis does it in one Lua script (atomic across workers); MemoryRateLimiter serves one process.
"""
from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from backend.kit.errors import AppError

__all__ = ["Window", "RateLimiter", "RedisRateLimiter", "MemoryRateLimiter", "enforce"]


@dataclass(frozen=True)
class Window:
    limit: int
    seconds: int


class RateLimiter(Protocol):
    async def hit(self, key: str, windows: list[Window]) -> float:
        """Count a hit if all windows allow it and return 0; else return seconds until it would be allowed."""

    async def hit_all(self, limits: dict[str, list[Window]]) -> float:
        """`hit` over several keys at once: counted under every key if all their windows allow it."""

    async def forget(self, key: str, windows: list[Window]) -> None:
        """Drop what `key` has counted (a login that succeeded clears its failed attempts)."""


_CHECK = """
for i = 1, #KEYS do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  if count >= tonumber(ARGV[2 * i - 1]) then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl < 0 then ttl = tonumber(ARGV[2 * i]) end
    return ttl
  end
end
"""
_HIT_SCRIPT = _CHECK + """
for i = 1, #KEYS do
  if redis.call('INCR', KEYS[i]) == 1 then
    redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[2 * i]))
  end
end
return 0
"""


class RedisRateLimiter:
    def __init__(self, redis: Redis, prefix: str):
        self._redis = redis
        self._prefix = prefix + "rl:"
        self._hit = redis.register_script(_HIT_SCRIPT)

    def _keys_and_args(self, key: str, windows: list[Window]) -> tuple[list[str], list[int]]:
        args: list[int] = []
        for w in windows:
            args += [w.limit, w.seconds * 1000]
        return [f"{self._prefix}{key}:{w.seconds}" for w in windows], args

    async def hit(self, key: str, windows: list[Window]) -> float:
        return await self.hit_all({key: windows})

    async def hit_all(self, limits: dict[str, list[Window]]) -> float:
        # one script, one round trip, however many keys (an SMS counts per phone and per phone and template)
        keys: list[str] = []
        args: list[int] = []
        for key, windows in limits.items():
            more_keys, more_args = self._keys_and_args(key, windows)
            keys += more_keys
            args += more_args
        return int(await self._hit(keys=keys, args=args)) / 1000

    async def forget(self, key: str, windows: list[Window]) -> None:
        keys, _ = self._keys_and_args(key, windows)
        await self._redis.delete(*keys)


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, float]] = {}   # key -> (count, expires at, monotonic)
        self._lock = asyncio.Lock()

    def _wait(self, counted: list[tuple[str, Window]], now: float) -> float:
        for window_key, window in counted:
            count, expires = self._windows.get(window_key, (0, now))
            if expires > now and count >= window.limit:
                return expires - now
        return 0.0

    async def forget(self, key: str, windows: list[Window]) -> None:
        for window in windows:
            self._windows.pop(f"{key}:{window.seconds}", None)

    async def hit(self, key: str, windows: list[Window]) -> float:
        return await self.hit_all({key: windows})

    async def hit_all(self, limits: dict[str, list[Window]]) -> float:
        counted = [(f"{key}:{window.seconds}", window) for key, windows in limits.items() for window in windows]
        async with self._lock:
            now = time.monotonic()
            if len(self._windows) > 100_000:
                self._windows = {k: v for k, v in self._windows.items() if v[1] > now}
            wait = self._wait(counted, now)
            if wait > 0:
                return wait
            for window_key, window in counted:
                count, expires = self._windows.get(window_key, (0, now))
                if expires <= now:
                    self._windows[window_key] = (1, now + window.seconds)
                else:
                    self._windows[window_key] = (count + 1, expires)
            return 0.0


def _refuse(wait: float) -> None:
    if wait > 0:
        retry_after = max(1, math.ceil(wait))
        raise AppError("rate_limited", 429, headers={"Retry-After": str(retry_after)},
                       retry_after=retry_after)


async def enforce(limiter: RateLimiter, key: str, windows: list[Window]) -> None:
    """Count a hit or raise 429 with Retry-After (whole seconds, rounded up)."""
    _refuse(await limiter.hit(key, windows))
