"""Who is online now: a person is online while they hold an open socket, in any process on any machine.

A socket `hold()`s its person's presence while it is open. With Redis (several workers or machines)
each held socket is a member "<id>:<socket>" of one sorted set per kind, scored with the Redis
server's time at which it lapses; the socket renews it every `heartbeat` seconds and removes it when
it closes, so a process that dies without closing its sockets leaves members that lapse by themselves
within `ttl` seconds. Redis's own clock is used, so the machines' clocks are never compared, and
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


class RedisPresence:
    def __init__(self, redis: Redis, prefix: str, *, ttl: float = 60, heartbeat: float = 20):
        self._redis = redis
        self._prefix = prefix + "presence:"
        self._ttl = ttl
        self._heartbeat = heartbeat

    async def _now(self) -> float:
        seconds, micros = await self._redis.time()
        return seconds + micros / 1_000_000

    async def _mark(self, key: str, member: str) -> None:
        await self._redis.zadd(key, {member: await self._now() + self._ttl})

    @contextlib.asynccontextmanager
    async def hold(self, kind: str, person: int) -> AsyncIterator[None]:
        key, member = self._prefix + kind, f"{person}:{uuid.uuid4().hex}"

        async def renew() -> None:
            while True:
                await asyncio.sleep(self._heartbeat)
                try:
                    await self._mark(key, member)
                except (RedisError, OSError):
                    log.warning("presence not renewed: Redis unreachable")

        try:
            await self._mark(key, member)
        except (RedisError, OSError):
            log.warning("presence not recorded: Redis unreachable")
        renewing = asyncio.create_task(renew(), name="presence-renew")
        try:
            yield
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)
            try:
                await self._redis.zrem(key, member)
            except (RedisError, OSError):
                pass  # it lapses by itself within the ttl

    async def _members(self, kind: str) -> list[str]:
        key = self._prefix + kind
        now = await self._now()
        async with self._redis.pipeline(transaction=True) as pipe:
            _, members = await pipe.zremrangebyscore(key, "-inf", now).zrangebyscore(key, now, "+inf").execute()
        return [m.decode() if isinstance(m, bytes) else m for m in members]

    async def online(self, kind: str) -> set[int]:
        try:
            members = await self._members(kind)
        except (RedisError, OSError):
            log.warning("presence unknown: Redis unreachable; nobody counts as online")
            return set()
        return {int(member.partition(":")[0]) for member in members}

    async def is_online(self, kind: str, person: int) -> bool:
        return person in await self.online(kind)
