"""A department of the test's own (in a township hall of its own), its staff, and helpers that drive
the consulting API the way the app and the staff console do.

Presence counts whoever holds a staff socket in the server, so a test that needs "online" staff opens
their inbox sockets itself; its own department keeps other tests' staff out of its assignments."""
from __future__ import annotations

import uuid
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import pytest
from websockets.asyncio.client import connect

from backend.catalog.models import Department, Hall
from backend.consult.models import Conversation, ConversationMessage
from backend.kit.auth import Grant
from tests.factories import bearer, login_citizen, staff_tokens
from tests.rows import make_department, make_hall
from tests.sockets import next_message, ws_url

# a Wednesday, an ordinary working day, mid-morning in Ulanqab (Asia/Shanghai)
WORKDAY_MORNING = datetime.fromisoformat("2026-11-25T10:00:00+08:00")


def msg_id() -> str:
    return uuid.uuid4().hex


@dataclass
class Desk:
    hall: Hall
    department: Department

    @property
    def code(self) -> str:
        return self.department.code

    async def staff(self, client, role: str = "window_clerk", **grant) -> dict:
        """A staff member of this department (their tokens and id)."""
        grant = {"hall": self.hall.code, "department": self.code} | grant
        return await staff_tokens(client, Grant(role, **grant))


@pytest.fixture
def business_time(frozen_clock) -> datetime:
    frozen_clock(WORKDAY_MORNING)
    return WORKDAY_MORNING


@pytest.fixture
async def desk(business_time, database) -> Desk:
    hall = await make_hall(parent="150921", level="township", hours_workday=["08:30-12:00", "14:30-17:30"])
    return Desk(hall=hall, department=await make_department(hall.code))


@pytest.fixture
async def citizen(client, capsys, business_time) -> dict:
    return await login_citizen(client, capsys)


async def ask(client, citizen: dict, *, text: str = "请问办理需要带什么材料？", client_msg_id: str | None = None,
              **subject) -> dict:
    response = await client.post("/api/v1/conversations", headers=bearer(citizen),
                                 json={"text": text, "client_msg_id": client_msg_id or msg_id(), **subject})
    assert response.status_code == 201, response.text
    return response.json()


async def answer(client, staff: dict, conversation: int, text: str = "请带身份证原件。") -> dict:
    response = await client.post(f"/api/v1/staff/conversations/{conversation}/messages", headers=bearer(staff),
                                 json={"text": text, "client_msg_id": msg_id()})
    assert response.status_code == 201, response.text
    return response.json()


@asynccontextmanager
async def online(server, *staff: dict):
    """These staff members hold their inbox sockets (they are online) inside the block."""
    async with AsyncExitStack() as stack:
        for member in staff:
            socket = await stack.enter_async_context(connect(ws_url(server, "/ws/staff/inbox"),
                                                             additional_headers=bearer(member)))
            await next_message(socket, "snapshot")
        yield


async def conversation_count(citizen_id: int) -> tuple[int, int]:
    conversations = await Conversation.filter(citizen_id=citizen_id).count()
    messages = await ConversationMessage.filter(conversation__citizen_id=citizen_id).count()
    return conversations, messages


def citizen_id(client, citizen: dict) -> int:
    from backend.kit.auth import decode_access_token
    return decode_access_token(client.rt.settings, citizen["access_token"]).id
