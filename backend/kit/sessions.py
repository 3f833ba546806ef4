"""Revoked sessions, so that an access token stops working the moment its session ends.

Access tokens are JWTs checked without the database; each carries its session id (`sid`, the
refresh-token family). Logging out, disabling a staff member or changing their grants revokes the
session in the database (refresh tokens) and here, and every authenticated request asks here, so
the token dies at once instead of living out its `auth.access_ttl_seconds`. An entry is kept for
exactly that long: after it, the token has expired anyway. Redis spans workers; the in-process
registry serves the single-process embedded default.

Redis is the fast path, not the truth: the database holds every revocation too (the refresh-token
family's `revoked_at`). While Redis cannot be reached, `is_revoked` asks the database instead of
failing the request, so a hall keeps issuing and calling tickets through a Redis outage; after a failure
it goes straight to the database for a few seconds rather than waiting on a dead Redis every request.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

__all__ = ["SessionRevocations", "RedisSessionRevocations", "MemorySessionRevocations"]

log = logging.getLogger("ehall.sessions")


class SessionRevocations(Protocol):
    async def revoke(self, session_ids: Iterable[str]) -> None: ...

    async def is_revoked(self, session_id: str) -> bool: ...


class RedisSessionRevocations:
    def __init__(self, redis: Redis, prefix: str, keep_seconds: int,
                 revoked_in_database: Callable[[str], Awaitable[bool]], database_seconds: float = 5.0):
        self._redis = redis
        self._prefix = prefix + "revoked-session:"
        self._keep = keep_seconds
        self._revoked_in_database = revoked_in_database
        self._database_seconds = database_seconds
        self._database_until = 0.0   # monotonic: ask the database, not Redis, until then

    async def revoke(self, session_ids: Iterable[str]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for session_id in session_ids:
                pipe.set(self._prefix + session_id, b"1", ex=self._keep)
            await pipe.execute()

    async def is_revoked(self, session_id: str) -> bool:
        if time.monotonic() >= self._database_until:
            try:
                return bool(await self._redis.exists(self._prefix + session_id))
            except (RedisError, OSError):
                self._database_until = time.monotonic() + self._database_seconds
                log.warning("Redis unreachable: revoked sessions are read from the database for %.0f s",
                            self._database_seconds, exc_info=True)
        return await self._revoked_in_database(session_id)


class MemorySessionRevocations:
    def __init__(self, keep_seconds: int):
        self._keep = keep_seconds
        self._revoked: dict[str, float] = {}   # session id -> forget after (monotonic)

    async def revoke(self, session_ids: Iterable[str]) -> None:
        now = time.monotonic()
        if len(self._revoked) > 100_000:
            self._revoked = {sid: until for sid, until in self._revoked.items() if until > now}
        for session_id in session_ids:
            self._revoked[session_id] = now + self._keep

    async def is_revoked(self, session_id: str) -> bool:
        until = self._revoked.get(session_id)
        return until is not None and until > time.monotonic()
