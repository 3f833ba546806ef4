"""Helpers that drive the real API the way a client does."""
from __future__ import annotations

import asyncio
import random
import re
import uuid

import httpx

from backend.accounts.staff import create_staff
from backend.kit.auth import Grant
from backend.kit.identity import id_number_check_char


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


async def staff_tokens(client: httpx.AsyncClient, *grants: Grant, password: str = "correct horse battery",
                       phone: str | None = None) -> dict:
    username = f"staff-{uuid.uuid4().hex[:10]}"
    staff = await create_staff(client.rt, username=username, password=password, display_name="测试员",
                               grants=grants, phone=phone)
    login = await client.post("/api/v1/staff/login", json={"username": username, "password": password})
    assert login.status_code == 200, login.text
    return {**login.json(), "username": username, "id": staff.id}


def new_id_number() -> str:
    """A valid 18-character resident ID number (an Inner Mongolia region, born 1960-1999), random enough
    that no two tests' citizens share one: the ID number is unique per account."""
    first17 = f"15{random.randint(0, 9999):04d}" + f"{random.randint(1960, 1999)}{random.randint(1, 12):02d}{random.randint(1, 28):02d}" \
        + f"{random.randint(0, 999):03d}"
    return first17 + id_number_check_char(first17)


async def real_name_citizen(client: httpx.AsyncClient, capsys, name: str = "巴特尔") -> dict:
    """A logged-in citizen with a name and an ID number on the profile (实名), as booking needs."""
    tokens = await login_citizen(client, capsys)
    for _ in range(5):  # a random ID number another test's citizen took already: draw again
        patched = await client.patch("/api/v1/me", headers=bearer(tokens),
                                     json={"name": name, "id_number": new_id_number()})
        if patched.status_code != 409:
            break
    assert patched.status_code == 200, patched.text
    return tokens


async def real_name_citizens(client: httpx.AsyncClient, capsys, count: int) -> list[dict]:
    """`count` real-name citizens, logged in concurrently (the codes are read from one console capture)."""
    phones = set()
    while len(phones) < count:
        phones.add(new_phone())
    phones_list = sorted(phones)
    for sent in await asyncio.gather(*(client.post("/api/v1/auth/sms-code", json={"phone": p}) for p in phones_list)):
        assert sent.status_code == 202, sent.text
    printed = capsys.readouterr().out
    logins = await asyncio.gather(*(client.post("/api/v1/auth/login", json={"phone": p, "code": sms_code_for(p, printed)})
                                    for p in phones_list))
    citizens = []
    for phone, login in zip(phones_list, logins):
        assert login.status_code == 200, login.text
        citizens.append({**login.json(), "phone": phone})
    patches = await asyncio.gather(*(client.patch("/api/v1/me", headers=bearer(c),
                                                  json={"name": "其其格", "id_number": new_id_number()})
                                     for c in citizens))
    assert all(p.status_code == 200 for p in patches), [p.text for p in patches if p.status_code != 200]
    return citizens
