"""Periodic jobs: each run happens once across every process on every machine, and a crashed runner
holds nothing for longer than its lease.

    JOBS = [Job("accounts.purge_expired_credentials", timedelta(hours=1), purge_expired_credentials)]
    runner = JobRunner(rt, JOBS)
    await runner.run_forever()          # until runner.stop()

The lease is a row per job in the database (kit.models.JobLease), not a Redis key: the embedded
default has no Redis, the database is where the jobs' own changes are kept (and Redis here keeps
nothing on disk), and the lease and the job's last run share one row, so "who may run it" and "is it
due" are read from one place. A runner takes the lease with one conditional UPDATE (`WHERE
expires_at < now OR holder = me`), or with an INSERT the first time the job is ever seen; two
runners that race for it get one row each time: the other one's UPDATE matches nothing, or its
INSERT hits the primary key. The holder runs the job when `last_run_at + every <= now`, records the
outcome and keeps the lease (renewing it on every tick and, during a long run, from a heartbeat), so
the job stays in one process while that process lives; a graceful stop releases it at once, a crash
lets it run out, and the next runner to tick takes it over.

Jobs must be idempotent: a holder that dies after the job's changes committed but before the run was
recorded leaves the run to be done again by the next holder.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q

from backend.kit import clock
from backend.kit.models import JobLease
from backend.kit.pii import redact_text

if TYPE_CHECKING:
    from backend.runtime import Runtime

__all__ = ["Job", "JobRunner", "Outcome", "new_holder_id"]

log = logging.getLogger("ehall.jobs")

Outcome = Literal["ran", "failed", "not_due", "held_elsewhere"]


@dataclass(frozen=True)
class Job:
    """`run(rt)` does one pass of the work and returns how many things it handled (for the log), or None."""
    name: str
    every: timedelta
    run: Callable[["Runtime"], Awaitable[int | None]]
    # a failed run is tried again this soon (or after `every`, if that is sooner), not a whole period later
    retry_after: timedelta = timedelta(minutes=1)

    def due_at(self, lease: JobLease) -> datetime | None:
        """When the next run is due; None: never run yet, due now."""
        if lease.last_run_at is None:
            return None
        failed = lease.last_ok_at is None or lease.last_ok_at < lease.last_run_at
        return lease.last_run_at + (min(self.every, self.retry_after) if failed else self.every)


def new_holder_id() -> str:
    """Names this runner in the lease rows: which machine and process holds a job, for whoever looks."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobRunner:
    def __init__(self, rt: "Runtime", jobs: Sequence[Job], holder_id: str | None = None, *,
                 tick_seconds: float | None = None, lease_seconds: float | None = None):
        names = [job.name for job in jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"job names must be unique: {names}")
        self.rt = rt
        self.jobs = list(jobs)
        self.holder = holder_id or new_holder_id()
        self.tick_seconds = tick_seconds if tick_seconds is not None else rt.settings.worker.tick_seconds
        self.lease = timedelta(seconds=lease_seconds if lease_seconds is not None
                               else rt.settings.worker.lease_seconds)
        self._stopping = asyncio.Event()

    # --- one pass -----------------------------------------------------------------------------------

    async def tick(self) -> dict[str, Outcome]:
        """Each job once, one after the other: run it if this runner holds its lease and it is due."""
        return {job.name: await self.run_if_due(job) for job in self.jobs}

    async def run_if_due(self, job: Job) -> Outcome:
        now = clock.now()
        if not await self._take(job.name, now):
            return "held_elsewhere"
        lease = await JobLease.get(name=job.name)
        due = job.due_at(lease)
        if due is not None and due > now:
            return "not_due"
        return await self._run(job, started=now)

    async def _take(self, name: str, now: datetime) -> bool:
        taken = await JobLease.filter(Q(name=name) & (Q(expires_at__lt=now) | Q(holder=self.holder))) \
            .update(holder=self.holder, expires_at=now + self.lease)
        if taken:
            return True
        if await JobLease.exists(name=name):
            return False  # another runner's lease, still running
        try:
            await JobLease.create(name=name, holder=self.holder, expires_at=now + self.lease)
        except IntegrityError:
            return False  # another runner saw the job for the first time at the same moment, and won
        return True

    async def _run(self, job: Job, *, started: datetime) -> Outcome:
        heartbeat = asyncio.create_task(self._keep_lease(job.name))
        began = time.perf_counter()
        error: str | None = None
        done: int | None = None
        try:
            done = await job.run(self.rt)
        except Exception as exc:  # any failure of the job: recorded on its lease, the runner goes on
            error = f"{type(exc).__name__}: {redact_text(str(exc))}"[:300]
            log.error("job failed", exc_info=True, extra={"ehall": {
                "job": job.name, "ms": round((time.perf_counter() - began) * 1000, 1)}})
        finally:
            heartbeat.cancel()
        values: dict = {"last_run_at": started, "runs": F("runs") + 1, "last_error": error,
                        "expires_at": clock.now() + self.lease}
        if error is None:
            values["last_ok_at"] = started
        recorded = await JobLease.filter(name=job.name, holder=self.holder).update(**values)
        if not recorded:
            # this process stalled past its lease and another runner took the job over: that runner
            # decides from the row as it stands (the job is idempotent)
            log.warning("job lease lost during its run", extra={"ehall": {"job": job.name}})
        elif error is None:
            log.info("job ran", extra={"ehall": {"job": job.name, "done": done,
                                                 "ms": round((time.perf_counter() - began) * 1000, 1)}})
        return "failed" if error is not None else "ran"

    async def _keep_lease(self, name: str) -> None:
        """During a run longer than a third of the lease, keep renewing it, so nobody takes the job over."""
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            try:
                kept = await JobLease.filter(name=name, holder=self.holder) \
                    .update(expires_at=clock.now() + self.lease)
            except Exception:  # the database is unreachable for a moment: try again at the next beat
                log.warning("job lease not renewed", exc_info=True, extra={"ehall": {"job": name}})
                continue
            if not kept:
                log.warning("job lease lost during its run", extra={"ehall": {"job": name}})
                return

    # --- the long run -------------------------------------------------------------------------------

    async def run_forever(self) -> None:
        """Tick until stop(): each job in a loop of its own, so a slow job does not hold up the others.
        A run in progress is finished, then every lease this runner holds is released."""
        try:
            await asyncio.gather(*(self._loop(job) for job in self.jobs))
        finally:
            await asyncio.shield(self.release())

    async def run_until_stopped(self, grace: float) -> None:
        """run_forever() until stop(); a run still going `grace` seconds after stop() is cancelled
        (its job is idempotent: the next holder does it again)."""
        running = asyncio.create_task(self.run_forever())
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
            await asyncio.wait({running}, timeout=grace)
        finally:
            stopping.cancel()
            running.cancel()  # nothing, if it has finished
            await asyncio.gather(running, stopping, return_exceptions=True)

    def stop(self) -> None:
        self._stopping.set()

    async def _loop(self, job: Job) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_if_due(job)
            except Exception:  # the lease could not be read or written (database down): next tick
                log.error("job tick failed", exc_info=True, extra={"ehall": {"job": job.name}})
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self.tick_seconds)
            except TimeoutError:
                pass

    async def release(self) -> int:
        """Give up every lease this runner holds, so another runner takes the jobs at its next tick
        instead of waiting for the leases to run out."""
        try:
            return await JobLease.filter(holder=self.holder) \
                .update(expires_at=clock.now() - timedelta(seconds=1))
        except Exception:  # nothing to do but let them run out
            log.warning("job leases not released", exc_info=True, extra={"ehall": {"holder": self.holder}})
            return 0
