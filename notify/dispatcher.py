"""The notification dispatcher: rounds of notify.service.dispatch_once until stopped. Any number of
them may run, in `ehall worker` processes on several machines (and inside `ehall serve` on the
embedded default): they share the outbox and the deliveries through the database's row locks."""
from __future__ import annotations

import asyncio
import logging

from backend.kit.jobs import new_holder_id
from backend.runtime import Runtime
from notify.service import dispatch_once

__all__ = ["Dispatcher"]

log = logging.getLogger("ehall.notify")


class Dispatcher:
    def __init__(self, rt: Runtime, holder: str | None = None):
        self.rt = rt
        self.holder = holder or new_holder_id()
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """The round in progress finishes its sends (their outcomes are written), then the loop ends."""
        self._stopping.set()

    async def run_until_stopped(self) -> None:
        while not self._stopping.is_set():
            try:
                found = await dispatch_once(self.rt, holder=self.holder)
            except Exception:  # the database away for a moment: nothing is lost, the rows wait
                log.warning("notification round failed", exc_info=True)
                found = 0
            if not found:
                try:
                    await asyncio.wait_for(self._stopping.wait(), timeout=self.rt.settings.notify.poll_seconds)
                except TimeoutError:
                    pass
