"""Workers killed with SIGKILL in the middle of sending lose nothing and send nobody the same message
twice: real `ehall worker` processes (two at once on PostgreSQL, one after the other on SQLite, which
has one writer), a real `ehall serve` for the citizens' logins, SMS through Alibaba Cloud's SDK to its
fake, which answers slowly enough that sends are in flight when the worker dies."""
from __future__ import annotations

import asyncio
import json
import signal
import sqlite3

from collections import Counter

import asyncpg
import httpx
import pytest

from tests.conftest import BACKEND
from tests.factories import new_phone
from tests.fakes.aliyun_sms import FakeAliyunSms
from tests.serving import EHALL, ROOT, ehall_serve, serve_environment

EVENTS_PER_CITIZEN = 15
CITIZENS = 12


@pytest.fixture
async def slow_aliyun():
    async with FakeAliyunSms() as fake:
        fake.answer_delay_seconds = 0.2   # a worker's sends are in flight most of the time
        yield fake


class Database:
    """Plain SQL on the deployment's database, as an operator would look at it."""

    def __init__(self, url: str):
        self.url = url

    async def rows(self, sql: str, *args) -> list[tuple]:
        if BACKEND == "postgres":
            connection = await asyncpg.connect(self.url)
            try:
                return [tuple(row) for row in await connection.fetch(sql, *args)]
            finally:
                await connection.close()
        with sqlite3.connect(self.url.removeprefix("sqlite://"), timeout=30) as connection:
            return connection.execute(sql.replace("$1", "?").replace("$2", "?"), args).fetchall()

    async def execute_many(self, sql: str, rows: list[tuple]) -> None:
        if BACKEND == "postgres":
            connection = await asyncpg.connect(self.url)
            try:
                await connection.executemany(sql, rows)
            finally:
                await connection.close()
            return
        with sqlite3.connect(self.url.removeprefix("sqlite://"), timeout=30) as connection:
            connection.executemany(sql.replace("$1", "?").replace("$2", "?").replace("$3", "?"), rows)


async def _citizens(base: str, fake: FakeAliyunSms) -> list[int]:
    """Citizens made the way a user makes one: an SMS login (the code read from the provider's fake)."""
    ids = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for _ in range(CITIZENS):
            phone = new_phone()
            assert (await http.post("/api/v1/auth/sms-code", json={"phone": phone})).status_code == 202
            code = next(m for m in reversed(fake.sent) if m["phone_numbers"] == phone)["template_param"]["code"]
            login = await http.post("/api/v1/auth/login", json={"phone": phone, "code": code})
            assert login.status_code == 200, login.text
            me = await http.get("/api/v1/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
            ids.append(me.json()["id"])
    return ids


async def _worker(env: dict, log_name: str, var) -> asyncio.subprocess.Process:
    log = open(var / log_name, "wb")
    return await asyncio.create_subprocess_exec(*EHALL, "worker", env=env, cwd=ROOT, stdout=log,
                                                stderr=asyncio.subprocess.STDOUT)


async def _until(check, seconds: float) -> bool:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.1)
    return False


async def test_killed_workers_lose_nothing_and_send_nothing_twice(tmp_path, fake_wechat, slow_aliyun):
    async with serve_environment(tmp_path, fake_wechat, "crash") as env:
        env |= {
            "EHALL_SMS__BACKEND": "aliyun", "EHALL_SMS__ALIYUN__ENDPOINT": slow_aliyun.address,
            "EHALL_SMS__ALIYUN__PROTOCOL": "http", "EHALL_SMS__ALIYUN__ACCESS_KEY_ID": slow_aliyun.access_key_id,
            "EHALL_SMS__ALIYUN__ACCESS_KEY_SECRET": slow_aliyun.access_key_secret,
            "EHALL_WORKER__IN_SERVE": "never", "EHALL_OTP__PER_IP_PER_HOUR": "100000",
            "EHALL_NOTIFY__LEASE_SECONDS": "3", "EHALL_NOTIFY__BATCH_SIZE": "8", "EHALL_NOTIFY__CONCURRENCY": "4",
            "EHALL_NOTIFY__POLL_SECONDS": "0.1",
            "EHALL_NOTIFY__QUIET_HOURS": "03:00-03:01",   # whenever the suite runs, no SMS waits for morning
            "EHALL_NOTIFY__SMS_PER_PHONE_PER_HOUR": "100000", "EHALL_NOTIFY__SMS_PER_PHONE_PER_DAY": "100000",
            "EHALL_NOTIFY__SMS_PER_PHONE_TEMPLATE_PER_30_SECONDS": "100000"}
        db = Database(env["EHALL_DATABASE_URL"])
        async with ehall_serve(env, tmp_path / "serve.log") as base:
            citizens = await _citizens(base, slow_aliyun)
            await db.execute_many(
                "INSERT INTO outbox_event (kind, aggregate, payload, occurred_at, attempts) "
                "VALUES ($1, $2, $3, CURRENT_TIMESTAMP, 0)",
                [("appointment.booked" if n % 2 else "ticket.called", f"ticket:{n}", json.dumps(
                    {"citizen": citizen, "hall": "150900", "number": f"A{n:03d}", "window": "01", "item": "x",
                     "starts_at": "2026-12-02T01:30:00+00:00"})) for n, citizen in
                 enumerate(citizens * EVENTS_PER_CITIZEN)])
            expected = CITIZENS * EVENTS_PER_CITIZEN

            async def sent() -> int:
                return (await db.rows("SELECT count(*) FROM notify_delivery WHERE status = 'sent'"))[0][0]

            first = [await _worker(env, "worker-1.log", tmp_path)]
            if BACKEND == "postgres":
                first.append(await _worker(env, "worker-2.log", tmp_path))
            async def in_flight_at_the_first() -> bool:
                # the first worker has handed messages to the provider and not heard back yet
                return (await sent()) >= 8 and bool((await db.rows(
                    "SELECT count(*) FROM notify_delivery WHERE status = 'sending' AND handed_at IS NOT NULL "
                    "AND claimed_by LIKE $1", f"%:{first[0].pid}:%"))[0][0])

            assert await _until(in_flight_at_the_first, 120), await db.rows("SELECT status, count(*) FROM "
                                                                             "notify_delivery GROUP BY status")
            first[0].send_signal(signal.SIGKILL)           # in the middle of its sends
            await first[0].wait()
            survivor = first[1] if BACKEND == "postgres" else await _worker(env, "worker-3.log", tmp_path)
            try:
                finished = await _until(lambda: _some(sent, expected), 180)
            finally:
                survivor.send_signal(signal.SIGTERM)
                await asyncio.wait_for(survivor.wait(), 60)
        statuses = await db.rows("SELECT status, count(*) FROM notify_delivery GROUP BY status")
        assert finished, statuses
        references = Counter(m["out_id"] for m in slow_aliyun.sent if m["out_id"])
        deliveries = {f"ehall-d{row[0]}" for row in await db.rows("SELECT id FROM notify_delivery")}
        assert len(deliveries) == expected
        assert set(references) == deliveries                       # nothing lost
        assert [r for r, n in references.items() if n > 1] == []   # nothing twice
        taken_over = (await db.rows("SELECT count(*) FROM notify_delivery WHERE attempts > 1"))[0][0]
        assert taken_over >= 1, "the killed worker left nothing in flight: the test proved nothing"
        print(f"deliveries {expected}, taken over from the killed worker {taken_over}")


async def _some(count, at_least: int) -> bool:
    return await count() >= at_least


