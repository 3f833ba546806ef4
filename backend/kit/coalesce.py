"""Work whose latest run is all that matters, coalesced per key within a process.

A hall's display boards are sent the hall's waiting counts after every change of its queues. In a rush
(5,000 tickets taken at the opening of the doors) every change would count the queues and publish the
counts, each answer a little staler than the next one already under way. Here a key runs at most once at
a time: a change that arrives while it runs leaves a note, and one more run follows for all the notes.
Every change is still followed by a run that began after it, so the last counts the boards get are
right.

The first change runs the work itself, before its answer leaves: an unhurried change (the common case,
and every test) is followed by its counts in order, as if nothing were coalesced. Only the runs that
notes ask for happen in the background.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable

__all__ = ["Coalescer"]

log = logging.getLogger("ehall.coalesce")

Work = Callable[[], Awaitable[None]]


class Coalescer:
    def __init__(self) -> None:
        self._running: set[Hashable] = set()
        self._again: dict[Hashable, Work] = {}     # key -> the latest work asked for while it ran
        self._background: set[asyncio.Task[None]] = set()

    async def run(self, key: Hashable, work: Work) -> None:
        """Run `work` now, or once more after the run of `key` under way. A failure is logged, never
        raised: what runs here is a hint sent after a change that has committed."""
        if key in self._running:
            self._again[key] = work
            return
        self._running.add(key)
        try:
            await self._attempt(key, work)
        finally:
            if key in self._again:
                task = asyncio.create_task(self._drain(key), name=f"coalesced-{key}")
                self._background.add(task)
                task.add_done_callback(self._background.discard)
            else:
                self._running.discard(key)

    async def _drain(self, key: Hashable) -> None:
        try:
            while key in self._again:
                await self._attempt(key, self._again.pop(key))
        finally:
            self._running.discard(key)
            self._again.pop(key, None)

    @staticmethod
    async def _attempt(key: Hashable, work: Work) -> None:
        try:
            await work()
        except Exception:  # a broker or database failure; the change stands, the log says what was not sent
            log.warning("coalesced work failed", exc_info=True, extra={"ehall": {"key": str(key)}})

    async def close(self) -> None:
        """Let the background runs finish (a process that stops sends the counts it owes)."""
        await asyncio.gather(*self._background, return_exceptions=True)
