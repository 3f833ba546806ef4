"""Background work as it is deployed: the housekeeping job in backend.jobs, `ehall worker` processes
sharing one database (one runs each job, a stopped one hands over), and `ehall serve` running the
jobs itself on the embedded default only."""
from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import secrets
import signal
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import httpx
import pytest

from backend.accounts.citizens import purge_expired_credentials
from backend.accounts.models import OtpChallenge, RefreshToken
from backend.jobs import JOBS
from backend.kit import clock
from backend.kit.jobs import JobRunner
from tests.conftest import BACKEND, PG_ADMIN_URL, REDIS_URL, delete_redis_prefix

EHALL = [sys.executable, "-m", "backend.cli"]
ROOT = Path(__file__).resolve().parent.parent
PURGE = "accounts.purge_expired_credentials"
NOW = datetime(2031, 5, 6, 2, 0, tzinfo=timezone.utc)


@pytest.fixture
def frozen():
    clock.freeze(NOW)
    yield
    clock.unfreeze()


async def otp(*, expires_in: timedelta, consumed: bool = False) -> OtpChallenge:
    return await OtpChallenge.create(phone_index=uuid.uuid4().hex, code_hash="salt$hash",
                                     expires_at=NOW + expires_in, consumed_at=NOW - timedelta(minutes=1)
                                     if consumed else None)


async def refresh_token(*, expires_in: timedelta, used: bool = False) -> RefreshToken:
    return await RefreshToken.create(token_hash=secrets.token_hex(32), family=uuid.uuid4().hex,
                                     subject_kind="citizen", subject_id=1, expires_at=NOW + expires_in,
                                     used_at=NOW - timedelta(days=1) if used else None)


async def still_there(rows) -> set[int]:
    model = type(rows[0])
    return set(await model.filter(id__in=[r.id for r in rows]).values_list("id", flat=True))


class TestPurgeExpiredCredentials:
    async def test_deletes_spent_login_codes_and_long_expired_refresh_tokens_and_nothing_else(
            self, server, frozen):
        ttl = timedelta(days=server.rt.settings.auth.refresh_ttl_days)
        expired_code = await otp(expires_in=-timedelta(seconds=1))
        consumed_code = await otp(expires_in=timedelta(minutes=4), consumed=True)
        open_code = await otp(expires_in=timedelta(minutes=4))
        long_expired = await refresh_token(expires_in=-ttl - timedelta(seconds=1), used=True)
        # expired, but recently: presenting it again must still end its session (reuse detection)
        recently_expired = await refresh_token(expires_in=-ttl + timedelta(hours=1), used=True)
        spent_but_valid = await refresh_token(expires_in=timedelta(days=3), used=True)
        live = await refresh_token(expires_in=timedelta(days=29))

        purged = await purge_expired_credentials(server.rt)

        assert purged >= 3  # other tests' spent codes go too: they are spent
        assert await still_there([expired_code, consumed_code, open_code]) == {open_code.id}
        assert await still_there([long_expired, recently_expired, spent_but_valid, live]) == {
            recently_expired.id, spent_but_valid.id, live.id}

    async def test_it_is_registered_as_a_periodic_job(self, server, frozen):
        job = next(job for job in JOBS if job.name == PURGE)
        assert job.every == timedelta(hours=1)
        expired_code = await otp(expires_in=-timedelta(minutes=1))
        # under a name of its own, so that this test's run is not another test's lease
        own = dataclasses.replace(job, name=f"test.purge.{uuid.uuid4().hex[:8]}")
        assert await JobRunner(server.rt, [own], "test-holder").tick() == {own.name: "ran"}
        assert not await OtpChallenge.exists(id=expired_code.id)


# --- the processes -------------------------------------------------------------------------------

class Deployment:
    """A database of its own (and a Redis prefix), migrated by `ehall migrate`, read with plain SQL."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.database = f"ehall_test_worker_{uuid.uuid4().hex[:8]}"
        self.prefix = f"ehall-test-worker-{uuid.uuid4().hex[:8]}:"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("EHALL_")} | {
            "EHALL_VAR_DIR": str(tmp), "EHALL_WORKER__TICK_SECONDS": "0.1"}
        if BACKEND == "postgres":
            self.env |= {"EHALL_DATABASE_URL": PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + self.database,
                         "EHALL_REDIS_URL": REDIS_URL, "EHALL_REDIS_PREFIX": self.prefix}
        else:
            self.env |= {"EHALL_DATABASE_URL": f"sqlite://{tmp}/ehall.sqlite3"}
        self.processes: list[asyncio.subprocess.Process] = []

    async def create(self) -> None:
        if BACKEND == "postgres":
            admin = await asyncpg.connect(PG_ADMIN_URL)
            await admin.execute(f'CREATE DATABASE "{self.database}"')
            await admin.close()
        migrate = await asyncio.create_subprocess_exec(*EHALL, "migrate", env=self.env, cwd=ROOT,
                                                       stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.STDOUT)
        output, _ = await asyncio.wait_for(migrate.communicate(), 120)
        assert migrate.returncode == 0, output.decode()

    async def drop(self) -> None:
        for process in self.processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
        if BACKEND == "postgres":
            admin = await asyncpg.connect(PG_ADMIN_URL)
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            await admin.close()
            await delete_redis_prefix(self.prefix)

    async def query(self, sql: str, *args) -> list[tuple]:
        if BACKEND == "postgres":
            connection = await asyncpg.connect(self.env["EHALL_DATABASE_URL"])
            try:
                return [tuple(row) for row in await connection.fetch(sql, *args)]
            finally:
                await connection.close()
        with sqlite3.connect(self.tmp / "ehall.sqlite3", timeout=10) as connection:
            return connection.execute(re.sub(r"\$\d", "?", sql), args).fetchall()

    async def lease(self, name: str) -> tuple | None:
        rows = await self.query("SELECT holder, runs, expires_at, last_error FROM job_lease WHERE name = $1", name)
        return rows[0] if rows else None

    async def start(self, *args: str, log_name: str) -> tuple[asyncio.subprocess.Process, Path]:
        log_path = self.tmp / log_name
        with open(log_path, "wb") as log:
            process = await asyncio.create_subprocess_exec(*EHALL, *args, env=self.env, cwd=ROOT, stdout=log,
                                                           stderr=asyncio.subprocess.STDOUT)
        self.processes.append(process)
        return process, log_path


@pytest.fixture
async def deployment(tmp_path) -> AsyncIterator[Deployment]:
    made = Deployment(tmp_path)
    try:
        await made.create()
        yield made
    finally:
        await made.drop()


async def eventually(check, seconds: float = 30):
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = await check()
        if value or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.1)


def expired_in_db(value) -> bool:
    if isinstance(value, str):  # SQLite keeps an ISO text
        value = datetime.fromisoformat(value)
    return value < datetime.now(timezone.utc)


class TestWorkerCommand:
    async def test_two_workers_run_the_job_once_and_a_stopped_one_hands_over(self, deployment):
        spent = datetime.now(timezone.utc) - timedelta(minutes=10)
        if BACKEND == "sqlite":
            spent = spent.isoformat(sep=" ")  # as Tortoise writes it, so that it compares as Tortoise compares
        await deployment.query("INSERT INTO otp_challenge (phone_index, code_hash, expires_at, attempts, created_at) "
                               "VALUES ($1, 'salt$hash', $2, 0, $3)", "spent-code", spent, spent)
        first, first_log = await deployment.start("worker", log_name="worker-1.log")
        second, second_log = await deployment.start("worker", log_name="worker-2.log")

        lease = await eventually(lambda: deployment.lease(PURGE))
        assert lease, first_log.read_text() + second_log.read_text()
        await asyncio.sleep(1.5)  # fifteen ticks of each worker
        holder, runs, _, last_error = await deployment.lease(PURGE)
        assert runs == 1 and last_error is None, "one run per period, across both processes"
        assert await deployment.query("SELECT id FROM otp_challenge WHERE phone_index = 'spent-code'") == []

        holding, other = (first, second) if f"ehall worker {holder}:" in first_log.read_text() else (second, first)
        holding.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(holding.wait(), 30) == 0
        logs = first_log.read_text() + second_log.read_text()
        assert "ehall worker stopped" in logs and "Traceback" not in logs, logs
        # released at once: the other worker holds the job at its next tick, without waiting a lease out
        new_holder = await eventually(lambda: _holder_other_than(deployment, holder), seconds=5)
        assert new_holder and f"ehall worker {new_holder}:" in logs
        assert (await deployment.lease(PURGE))[1] == 1, "not due again: handing over is not a run"
        other.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(other.wait(), 30) == 0
        assert expired_in_db((await deployment.lease(PURGE))[2])


async def _ran(deployment: Deployment, job: str) -> tuple | None:
    lease = await deployment.lease(job)
    return lease if lease and lease[1] >= 1 else None


async def _holder_other_than(deployment: Deployment, holder: str) -> str | None:
    lease = await deployment.lease(PURGE)
    return lease[0] if lease and lease[0] != holder else None


class TestServeRunsJobs:
    async def test_serve_runs_the_jobs_itself_on_sqlite_and_leaves_them_to_the_worker_on_postgres(
            self, deployment):
        port = _free_port()
        server, log_path = await deployment.start("serve", "--port", str(port), log_name="serve.log")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            async def ready() -> bool:
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False
            assert await eventually(ready, 60), log_path.read_text()
        if BACKEND == "sqlite":
            # the lease row is taken a moment before the run it allows is recorded: wait for the run
            lease = await eventually(lambda: _ran(deployment, PURGE))
            assert lease and lease[1] == 1, log_path.read_text()
            assert "jobs     run in this process" in log_path.read_text()
        else:
            await asyncio.sleep(1)  # ten ticks, had it been running them
            assert await deployment.lease(PURGE) is None
            assert "start `ehall worker` beside it" in log_path.read_text()
        server.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(server.wait(), 30) == 0
        if BACKEND == "sqlite":
            assert expired_in_db((await deployment.lease(PURGE))[2]), "released on stop"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
