"""Finished answers kept for a few seconds in each process (the catalogue's, so far).

The catalogue changes only when `ehall seed` reloads it, yet every app start reads it: building an
answer costs 10-50 bare requests of ORM work (bench/README.md), serving a kept one costs about one,
and a 304 costs nothing but the ETag comparison. After a reload each worker serves the old answers
for at most `catalog.cache_seconds`. Live state (a hall's window status) is never kept here: the hall
detail keeps its static part and reads the windows' status on every request.
"""
from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

__all__ = ["AnswerCache"]


class AnswerCache:
    def __init__(self, ttl_seconds: float, max_entries: int = 2048):
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._building: dict[Hashable, asyncio.Future[Any]] = {}

    async def get(self, key: Hashable, build: Callable[[], Awaitable[Any]], *, join: bool = True) -> Any:
        """The kept value for `key`, or what `build()` returns (kept for the TTL). Never mutate it.

        A burst of the same request builds the answer once: the others wait for the first builder. A
        caller that holds a transaction passes `join=False` and builds it itself if nothing is kept: on
        SQLite the first builder may be waiting for that very transaction's connection lock, and
        waiting for it would never end."""
        if self._ttl <= 0:
            return await build()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        if not join:
            value = await build()
            self._keep(key, value)
            return value
        if key in self._building:
            return await asyncio.shield(self._building[key])
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._building[key] = future
        try:
            value = await build()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            self._building.pop(key, None)
        future.set_result(value)
        self._keep(key, value)
        return value

    def _keep(self, key: Hashable, value: Any) -> None:
        self._entries[key] = (time.monotonic() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def forget(self, key: Hashable) -> None:
        """Drop what is kept for `key` (this process changed what it was built from)."""
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
