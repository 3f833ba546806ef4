"""Helpers that drive the real API the way a client does."""
from __future__ import annotations

import random
import re
import uuid

import httpx

from backend.accounts.staff import create_staff
from backend.kit.auth import Grant


def unique_address() -> str:
    """A client address no other test uses (IPv6 documentation range), for per-address limits: the
    counters live in Redis for the whole run, so a shared address would carry other tests' hits."""
    return f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"


def new_phone() -> str:
    return "1" + random.choice("3456789") + "".join(random.choice("0123456789") for _ in range(9))


def sms_code_for(phone: str, console_output: str) -> str:
    """The last login code the console SMS sender printed for this phone (it prints the phone masked)."""
    masked = phone[:3] + "****" + phone[-4:]
    codes = re.findall(rf"\[SMS to {re.escape(masked)}\] .*?(\d{{6}})", console_output)
    assert codes, f"no SMS printed for {masked}"
    return codes[-1]


async def login_citizen(client: httpx.AsyncClient, capsys, phone: str | None = None) -> dict:
    phone = phone or new_phone()
    sent = await client.post("/api/v1/auth/sms-code", json={"phone": phone})
    assert sent.status_code == 202, sent.text
    code = sms_code_for(phone, capsys.readouterr().out)
    login = await client.post("/api/v1/auth/login", json={"phone": phone, "code": code})
    assert login.status_code == 200, login.text
    return {**login.json(), "phone": phone}


def bearer(tokens: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def staff_tokens(client: httpx.AsyncClient, *grants: Grant, password: str = "correct horse battery") -> dict:
    username = f"staff-{uuid.uuid4().hex[:10]}"
    staff = await create_staff(client.rt, username=username, password=password, display_name="测试员",
                               grants=grants)
    login = await client.post("/api/v1/staff/login", json={"username": username, "password": password})
    assert login.status_code == 200, login.text
    return {**login.json(), "username": username, "id": staff.id}
