"""A call made on one `ehall serve` process reaches a display socket held by another: with PostgreSQL and
Redis, two processes on two ports share the database and the broker (on the SQLite default there is one
process and the in-process broker, so the same story runs on one)."""
from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.conftest import BACKEND
from tests.serving import EHALL, ROOT, ehall_serve, serve_environment

PASSWORD = "cross process password"


@pytest.fixture
async def servers(tmp_path, fake_wechat):
    """Two serving processes sharing PostgreSQL and Redis, or one on SQLite."""
    async with AsyncExitStack() as stack:
        env = await stack.enter_async_context(serve_environment(tmp_path, fake_wechat, "xproc"))
        # one after the other: the first migrates and loads the catalogue
        first = await stack.enter_async_context(ehall_serve(env, tmp_path / "first.log"))
        second = await stack.enter_async_context(ehall_serve(env, tmp_path / "second.log")) \
            if BACKEND == "postgres" else first
        yield {"bases": [first, second], "env": env}


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
