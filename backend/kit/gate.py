"""A bound on costly work in flight (a password hash) that refuses a flood instead of queueing it.

A queue without a bound turns 150 parallel logins with made-up usernames into a 20-second wait for
the clerk who is really logging in. Here at most `running` jobs run at once, at most `waiting` wait
for a turn, and anyone beyond that is told at once to come back (503, Retry-After).
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from backend.kit.errors import AppError

__all__ = ["WorkGate"]


class WorkGate:
    def __init__(self, *, running: int, waiting: int):
        self._slots = asyncio.Semaphore(running)
        self._max_waiting = waiting
        self._waiting = 0

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        if self._slots.locked() and self._waiting >= self._max_waiting:
            raise AppError("busy", 503, headers={"Retry-After": "1"}, retry_after=1)
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._slots.release()
