"""Consulting across processes: with PostgreSQL and Redis, two `ehall serve` processes share the database,
the broker and presence; a staff member online on one is given a conversation opened on the other, and a
message sent on one reaches the socket held by the other (on the SQLite default, one process does both)."""
from __future__ import annotations

import asyncio
import json
import re
import uuid
from contextlib import AsyncExitStack

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.conftest import BACKEND
from tests.serving import EHALL, ROOT, ehall_serve, serve_environment

PASSWORD = "consult cross process"


@pytest.fixture
async def servers(tmp_path, fake_wechat):
    async with AsyncExitStack() as stack:
        env = await stack.enter_async_context(serve_environment(tmp_path, fake_wechat, "consultx"))
        first = await stack.enter_async_context(ehall_serve(env, tmp_path / "first.log"))
        second = await stack.enter_async_context(ehall_serve(env, tmp_path / "second.log")) \
            if BACKEND == "postgres" else first
        yield {"bases": [first, second], "env": env, "logs": [tmp_path / "first.log", tmp_path / "second.log"]}


async def _staff(env: dict, base: str, role: str) -> dict:
    username = f"consultx-{uuid.uuid4().hex[:8]}"
    process = await asyncio.create_subprocess_exec(
        *EHALL, "staff", "create", username, "--role", role, env={**env, "EHALL_STAFF_PASSWORD": PASSWORD},
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    async with httpx.AsyncClient(base_url=base) as http:
        login = await http.post("/api/v1/staff/login", json={"username": username, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return login.json()


async def _citizen(base: str, logs) -> dict:
    phone = "139" + str(uuid.uuid4().int)[:8]
    async with httpx.AsyncClient(base_url=base) as http:
        assert (await http.post("/api/v1/auth/sms-code", json={"phone": phone})).status_code == 202
        masked = re.escape(phone[:3] + "****" + phone[-4:])
        for _ in range(40):
            printed = "".join(log.read_text() for log in logs if log.exists())
            codes = re.findall(rf"\[SMS to {masked}\] .*?(\d{{6}})", printed)
            if codes:
                break
            await asyncio.sleep(0.1)
        login = await http.post("/api/v1/auth/login", json={"phone": phone, "code": codes[-1]})
    assert login.status_code == 200, login.text
    return login.json()


async def _next(socket, kind: str) -> dict:
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), 10))
        if message["type"] == kind:
            return message


async def test_presence_and_messages_cross_from_one_process_to_the_other(servers):
    asking_base, staff_base = servers["bases"]
    clerk = await _staff(servers["env"], staff_base, "window_clerk@150900/gaj")
    citizen = await _citizen(asking_base, servers["logs"])
    as_clerk = {"Authorization": f"Bearer {clerk['access_token']}"}
    as_citizen = {"Authorization": f"Bearer {citizen['access_token']}"}
    ws = staff_base.replace("http://", "ws://")
    async with connect(ws + "/ws/staff/inbox", additional_headers=as_clerk) as inbox:
        await _next(inbox, "snapshot")
        async with httpx.AsyncClient(base_url=asking_base) as http:
            opened = await http.post("/api/v1/conversations", headers=as_citizen, json={
                "department": "gaj", "text": "身份证丢了怎么补？", "client_msg_id": uuid.uuid4().hex})
            assert opened.status_code == 201, opened.text
            conversation = opened.json()["conversation"]
            assert conversation["assignee"] is not None   # the clerk is online on the other process
            assigned = await _next(inbox, "conversation.assigned")
            assert assigned["conversation"]["id"] == conversation["id"]
            async with connect(f"{ws}/ws/conversations/{conversation['id']}", additional_headers=as_clerk) as feed:
                await _next(feed, "snapshot")
                sent = await http.post(f"/api/v1/conversations/{conversation['id']}/messages", headers=as_citizen,
                                       json={"text": "补领要多久？", "client_msg_id": uuid.uuid4().hex})
                assert sent.status_code == 201, sent.text
                received = await _next(feed, "message.new")
    assert received["message"]["id"] == sent.json()["id"] and received["message"]["text"] == "补领要多久？"
