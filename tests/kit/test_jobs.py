"""Periodic jobs run once per period across runners, through a lease row in the real database: a
crashed holder's job is taken over, a failing job is recorded and retried, and the runner lives on."""
from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from backend.kit import clock
from backend.kit.jobs import Job, JobRunner
from backend.kit.models import AuditEntry, JobLease
from backend.kit.uow import unit_of_work

HOUR = timedelta(hours=1)


@pytest.fixture
def frozen():
    clock.freeze(datetime(2031, 3, 4, 1, 0, tzinfo=timezone.utc))
    yield
    clock.unfreeze()


def counting_job(every: timedelta = HOUR, **kwargs) -> Job:
    """A job whose every run leaves an audit row of its own, so runs are counted in the database."""
    name = f"test.{uuid.uuid4().hex[:12]}"

    async def run(rt) -> int:
        async with unit_of_work(rt) as uow:
            await uow.audit(actor="system:jobs", action="test.job_ran", subject=f"job:{name}")
        return 1

    return Job(name, every=every, run=run, **kwargs)


async def runs_of(job: Job) -> int:
    return await AuditEntry.filter(subject_kind="job", subject_id=job.name).count()


def runner(server, holder: str, jobs: list[Job], **kwargs) -> JobRunner:
    return JobRunner(server.rt, jobs, f"{holder}-{uuid.uuid4().hex[:6]}", **kwargs)


class TestOncePerPeriod:
    async def test_two_runners_run_a_job_exactly_once_per_period(self, server, frozen):
        job = counting_job()
        first, second = runner(server, "a", [job]), runner(server, "b", [job])
        for _ in range(3):
            await asyncio.gather(first.tick(), second.tick())
        assert await runs_of(job) == 1
        clock.advance(timedelta(minutes=59))
        await asyncio.gather(first.tick(), second.tick())
        assert await runs_of(job) == 1, "not due before the period is over"
        clock.advance(timedelta(minutes=1))
        for _ in range(3):
            await asyncio.gather(second.tick(), first.tick())
        assert await runs_of(job) == 2
        lease = await JobLease.get(name=job.name)
        assert lease.runs == 2 and lease.last_run_at == clock.now() and lease.last_ok_at == clock.now()

    async def test_of_many_runners_seeing_a_new_job_at_once_one_runs_it(self, server, frozen):
        job = counting_job()
        runners = [runner(server, f"r{i}", [job]) for i in range(8)]
        outcomes = await asyncio.gather(*(r.run_if_due(job) for r in runners))
        assert sorted(outcomes).count("ran") == 1
        assert set(outcomes) == {"ran", "held_elsewhere"}
        assert await runs_of(job) == 1

    async def test_the_holder_keeps_the_job_while_it_ticks(self, server, frozen):
        job = counting_job(every=timedelta(minutes=5))
        first, second = runner(server, "a", [job]), runner(server, "b", [job])
        assert await first.run_if_due(job) == "ran"
        for _ in range(4):  # the holder ticks within its lease, so the other runner never gets the job
            clock.advance(timedelta(seconds=50))
            await first.tick()
            assert await second.run_if_due(job) == "held_elsewhere"
        clock.advance(timedelta(minutes=2))
        assert await first.run_if_due(job) == "ran"
        assert (await JobLease.get(name=job.name)).holder == first.holder


class TestTakeover:
    async def test_an_expired_lease_is_taken_over(self, server, frozen):
        job = counting_job()
        crashed = runner(server, "crashed", [job])
        started = asyncio.Event()

        async def hangs(rt) -> None:
            started.set()
            await asyncio.Event().wait()

        stuck = asyncio.create_task(crashed.run_if_due(Job(job.name, every=HOUR, run=hangs)))
        await started.wait()
        stuck.cancel()  # the process died mid-run: the run was never recorded, the lease is still held
        await asyncio.gather(stuck, return_exceptions=True)
        heir = runner(server, "heir", [job])
        assert await heir.run_if_due(job) == "held_elsewhere"
        clock.advance(timedelta(seconds=heir.lease.total_seconds() - 1))
        assert await heir.run_if_due(job) == "held_elsewhere"
        clock.advance(timedelta(seconds=2))
        assert await heir.run_if_due(job) == "ran"
        lease = await JobLease.get(name=job.name)
        assert lease.holder == heir.holder and lease.runs == 1
        assert await runs_of(job) == 1

    async def test_a_long_run_renews_its_lease_so_nobody_runs_it_twice(self, server):
        # real time: a lease of 0.6 s, a run of over 1.2 s (two leases), another runner knocking every 50 ms
        job = counting_job()
        release = asyncio.Event()
        ran = []

        async def slow(rt) -> int:
            ran.append(1)
            await asyncio.wait_for(release.wait(), 30)
            return 1

        slow_job = Job(job.name, every=HOUR, run=slow)
        holder = runner(server, "slow", [slow_job], lease_seconds=0.6)
        other = runner(server, "other", [slow_job], lease_seconds=0.6)
        running = asyncio.create_task(holder.run_if_due(slow_job))
        outcomes = []
        for _ in range(24):
            await asyncio.sleep(0.05)
            outcomes.append(await other.run_if_due(slow_job))
        release.set()
        assert await running == "ran"
        assert outcomes == ["held_elsewhere"] * 24
        assert len(ran) == 1

    async def test_a_stopped_runner_releases_its_jobs_at_once(self, server, frozen):
        job = counting_job(every=timedelta(minutes=1))
        leaving = runner(server, "leaving", [job], tick_seconds=0.02, lease_seconds=3600)
        task = asyncio.create_task(leaving.run_until_stopped(grace=5))
        for _ in range(100):
            if await runs_of(job):
                break
            await asyncio.sleep(0.02)
        leaving.stop()
        await asyncio.wait_for(task, 5)
        clock.advance(timedelta(minutes=1))  # due again, and the lease would still have an hour to run
        heir = runner(server, "heir", [job])
        assert await heir.run_if_due(job) == "ran", "the lease was released, not left to run out"


class TestFailures:
    async def test_a_failing_job_records_its_error_and_the_others_still_run(self, server, frozen):
        async def fails(rt) -> None:
            raise RuntimeError("gateway said no to 13812345678")

        failing = Job(f"test.{uuid.uuid4().hex[:12]}", every=HOUR, run=fails)
        fine = counting_job()
        heard: list[logging.LogRecord] = []
        handler = logging.Handler()
        handler.emit = heard.append
        logging.getLogger("ehall.jobs").addHandler(handler)
        try:
            outcomes = await runner(server, "a", [failing, fine]).tick()
        finally:
            logging.getLogger("ehall.jobs").removeHandler(handler)
        assert outcomes == {failing.name: "failed", fine.name: "ran"}
        lease = await JobLease.get(name=failing.name)
        assert lease.last_error == "RuntimeError: gateway said no to 138****5678"
        assert lease.runs == 1 and lease.last_run_at == clock.now() and lease.last_ok_at is None
        failed = [r for r in heard if r.getMessage() == "job failed"]
        assert failed and failed[0].ehall["job"] == failing.name and failed[0].exc_info

    async def test_a_failed_run_is_retried_after_retry_after_and_the_runner_lives_on(self, server, frozen):
        calls = []

        async def fails_once(rt) -> int:
            calls.append(clock.now())
            if len(calls) == 1:
                raise ConnectionError("down")
            return 1

        job = Job(f"test.{uuid.uuid4().hex[:12]}", every=HOUR, run=fails_once, retry_after=timedelta(minutes=2))
        looping = runner(server, "loop", [job], tick_seconds=0.02)
        task = asyncio.create_task(looping.run_until_stopped(grace=5))
        try:
            for _ in range(100):
                if calls:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.1)
            assert len(calls) == 1, "not retried before retry_after"
            assert (await JobLease.get(name=job.name)).last_error == "ConnectionError: down"
            clock.advance(timedelta(minutes=2))
            for _ in range(100):
                if len(calls) == 2:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.1)
            lease = await JobLease.get(name=job.name)
            assert len(calls) == 2 and lease.runs == 2
            assert lease.last_error is None and lease.last_ok_at == calls[1]
            assert not task.done(), "the runner goes on after a failure"
        finally:
            looping.stop()
            await asyncio.wait_for(task, 5)

    async def test_job_names_are_unique_in_a_runner(self, server):
        job = counting_job()
        with pytest.raises(ValueError):
            JobRunner(server.rt, [job, job])
