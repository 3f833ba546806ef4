"""A call made on one `ehall serve` process reaches a display socket held by another: with PostgreSQL and
Redis, two processes on two ports share the database and the broker (on the SQLite default there is one
process and the in-process broker, so the same story runs on one)."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
from websockets.asyncio.client import connect

from tests.conftest import BACKEND, PG_ADMIN_URL, REDIS_URL, delete_redis_prefix

EHALL = [sys.executable, "-m", "backend.cli"]
ROOT = Path(__file__).resolve().parent.parent.parent
PASSWORD = "cross process password"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _start(env: dict, log_path: Path) -> tuple[asyncio.subprocess.Process, str]:
    port = _free_port()
    with open(log_path, "wb") as log:
        process = await asyncio.create_subprocess_exec(*EHALL, "serve", "--port", str(port), env=env, cwd=ROOT,
                                                       stdout=log, stderr=asyncio.subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=5) as http:
        for _ in range(160):
            if process.returncode is not None:
                break
            try:
                if (await http.get("/readyz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.25)
    assert process.returncode is None, log_path.read_text()
    return process, base


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), timeout=20)
        except TimeoutError:
            process.kill()
            await process.wait()


@pytest.fixture
async def servers(tmp_path, fake_wechat):
    """Two serving processes sharing PostgreSQL and Redis, or one on SQLite."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EHALL_")}
    env |= {"EHALL_VAR_DIR": str(tmp_path), "EHALL_WECHAT__API_BASE_URL": fake_wechat.base_url}
    prefix = f"ehall-test-xproc-{uuid.uuid4().hex[:8]}:"
    database = None
    if BACKEND == "postgres":
        database = f"ehall_test_xproc_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(PG_ADMIN_URL)
        await admin.execute(f'CREATE DATABASE "{database}"')
        await admin.close()
        env |= {"EHALL_DATABASE_URL": PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database,
                "EHALL_REDIS_URL": REDIS_URL, "EHALL_REDIS_PREFIX": prefix}
    else:
        env |= {"EHALL_DATABASE_URL": f"sqlite://{tmp_path}/ehall.sqlite3"}
    processes = []
    try:
        # one after the other: the first migrates and loads the catalogue
        first = await _start(env, tmp_path / "first.log")
        processes.append(first[0])
        bases = [first[1]]
        if BACKEND == "postgres":
            second = await _start(env, tmp_path / "second.log")
            processes.append(second[0])
            bases.append(second[1])
        else:
            bases.append(first[1])
        yield {"bases": bases, "env": env}
    finally:
        for process in processes:
            await _stop(process)
        if database:
            admin = await asyncpg.connect(PG_ADMIN_URL)
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await admin.close()
        await delete_redis_prefix(prefix)


async def _staff(env: dict, base: str, username: str, role: str) -> dict[str, str]:
    process = await asyncio.create_subprocess_exec(
        *EHALL, "staff", "create", username, "--role", role, env={**env, "EHALL_STAFF_PASSWORD": PASSWORD},
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    async with httpx.AsyncClient(base_url=base) as http:
        login = await http.post("/api/v1/staff/login", json={"username": username, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def test_a_call_on_one_process_reaches_a_display_held_by_another(servers):
    caller_base, display_base = servers["bases"]
    clerk = await _staff(servers["env"], caller_base, "xproc-clerk", "window_clerk@150900")
    kiosk = await _staff(servers["env"], caller_base, "xproc-kiosk", "kiosk@150900")
    display = display_base.replace("http://", "ws://") + "/ws/halls/150900/display"
    async with httpx.AsyncClient(base_url=caller_base) as http:
        opened = await http.patch("/api/v1/staff/halls/150900/windows/01", headers=clerk, json={"status": "open"})
        assert opened.status_code == 200, opened.text
        async with connect(display) as board:
            snapshot = json.loads(await asyncio.wait_for(board.recv(), 10))
            assert snapshot["type"] == "snapshot" and snapshot["waiting"]["A"] == 0
            ticket = await http.post("/api/v1/kiosk/tickets", headers=kiosk, json={"hall": "150900", "category": "A"})
            assert ticket.status_code == 201, ticket.text
            called = await http.post("/api/v1/staff/halls/150900/windows/01/call-next", headers=clerk)
            assert called.status_code == 200, called.text
            while True:
                message = json.loads(await asyncio.wait_for(board.recv(), 10))
                if message["type"] == "ticket.called":
                    break
    assert message["number"] == ticket.json()["number"] == "A001" and message["window"] == "01"
    assert "01" in message["text"]["zh"]
