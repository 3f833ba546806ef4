"""Who is online now: a person is online while they hold an open socket, in any process on any machine.

A socket `hold()`s its person's presence while it is open. With Redis (several workers or machines)
each held socket is a member of its person's sorted set, and the person a member of their kind's,
scored with the Redis server's time at which they lapse; the socket renews both every `heartbeat`
seconds and removes itself when it closes, so a process that dies without closing its sockets leaves
members that lapse by themselves within `ttl` seconds. Redis's own clock is used, so the machines' clocks are never compared, and
kit.clock (business time, frozen by tests) is not involved: presence is elapsed time. On the
embedded default (one process, no Redis) a counter in memory does the same.

Presence is a hint for routing (which staff member gets a new conversation, whether an answer needs a
notification): a Redis failure while reading it counts as "nobody online", which queues a
conversation or sends a notification that was not needed, never loses one.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

__all__ = ["Presence", "MemoryPresence", "RedisPresence"]

log = logging.getLogger("ehall.presence")


class Presence(Protocol):
    def hold(self, kind: str, person: int) -> contextlib.AbstractAsyncContextManager[None]: ...

    async def online(self, kind: str) -> set[int]: ...

    async def is_online(self, kind: str, person: int) -> bool: ...


class MemoryPresence:
    def __init__(self) -> None:
        self._held: Counter[tuple[str, int]] = Counter()

    @contextlib.asynccontextmanager
    async def hold(self, kind: str, person: int) -> AsyncIterator[None]:
        self._held[(kind, person)] += 1
        try:
            yield
        finally:
            self._held[(kind, person)] -= 1
            if self._held[(kind, person)] <= 0:
                del self._held[(kind, person)]

    async def online(self, kind: str) -> set[int]:
        return {person for (held_kind, person), count in self._held.items() if held_kind == kind and count > 0}

    async def is_online(self, kind: str, person: int) -> bool:
        return self._held.get((kind, person), 0) > 0


# Each script reads Redis's own clock (TIME), so a check or a mark is one round trip and the machines'
# clocks are never compared.
_NOW = """
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
"""

# Marks socket ARGV[1] of person ARGV[2] alive for ARGV[3] seconds in the person's set KEYS[1], and the
# person alive at least as long in the kind's set KEYS[2]. Both sets expire once nothing renews them.
_MARK = _NOW + """
local expiry = now + tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], expiry, ARGV[1])
redis.call('ZADD', KEYS[2], 'GT', expiry, ARGV[2])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])) + 1)
redis.call('EXPIRE', KEYS[2], math.ceil(tonumber(ARGV[3])) + 1)
return 1
"""

# Socket ARGV[1] of person ARGV[2] closed: the person leaves the kind's set when none of their sockets is
# left alive now (another worker's socket of theirs keeps them in). Atomic, so two workers closing
# a person's last two sockets at once cannot both leave the person in.
_RELEASE = _NOW + """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[2])
end
return 1
"""

_ONLINE = _NOW + """
return redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
"""

_IS_ONLINE = _NOW + """
return redis.call('ZCOUNT', KEYS[1], now, '+inf')
"""


class RedisPresence:
    """Per person a sorted set of their open sockets (`presence:<kind>:<id>`), per kind a sorted set of the
    people with one (`presence:<kind>`), each member scored with the Redis time it lapses at: "is this
    citizen online" reads one small set, "which staff are online" one set of staff, however many
    citizens are connected."""

    def __init__(self, redis: Redis, prefix: str, *, ttl: float = 60, heartbeat: float = 20):
        self._redis = redis
        self._prefix = prefix + "presence:"
        self._ttl = ttl
        self._heartbeat = heartbeat
        self._mark_script = redis.register_script(_MARK)
        self._release_script = redis.register_script(_RELEASE)
        self._online_script = redis.register_script(_ONLINE)
        self._is_online_script = redis.register_script(_IS_ONLINE)

    def _keys(self, kind: str, person: int) -> list[str]:
        return [f"{self._prefix}{kind}:{person}", self._prefix + kind]

    async def _mark(self, kind: str, person: int, socket: str) -> None:
        await self._mark_script(keys=self._keys(kind, person), args=[socket, person, self._ttl])

    @contextlib.asynccontextmanager
    async def hold(self, kind: str, person: int) -> AsyncIterator[None]:
        socket = uuid.uuid4().hex

        async def renew() -> None:
            while True:
                await asyncio.sleep(self._heartbeat)
                try:
                    await self._mark(kind, person, socket)
                except (RedisError, OSError):
                    log.warning("presence not renewed: Redis unreachable")

        try:
            await self._mark(kind, person, socket)
        except (RedisError, OSError):
            log.warning("presence not recorded: Redis unreachable")
        renewing = asyncio.create_task(renew(), name="presence-renew")
        try:
            yield
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)
            try:
                await self._release_script(keys=self._keys(kind, person), args=[socket, person])
            except (RedisError, OSError):
                pass  # it lapses by itself within the ttl

    async def online(self, kind: str) -> set[int]:
        try:
            members = await self._online_script(keys=[self._prefix + kind])
        except (RedisError, OSError):
            log.warning("presence unknown: Redis unreachable; nobody counts as online")
            return set()
        return {int(member) for member in members}

    async def is_online(self, kind: str, person: int) -> bool:
        try:
            return await self._is_online_script(keys=[f"{self._prefix}{kind}:{person}"]) > 0
        except (RedisError, OSError):
            log.warning("presence unknown: Redis unreachable; nobody counts as online")
            return False
