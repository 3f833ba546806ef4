"""Each test books in a hall of its own (tests/rows.py), at a business time it freezes, so no count it
reads was moved by another test and the horizon, cut-off and calendar are the ones it states.

Monday 2026-06-01 is an ordinary week: the horizon runs from Tuesday 06-02 to Monday 06-08 (five
working days). Log in after freezing: access tokens are checked against the frozen clock."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from backend.catalog.models import Department, ServiceItem
from tests.factories import bearer
from tests.rows import make_category, make_department, make_hall, make_item

MONDAY = "2026-06-01T10:00:00+08:00"
TUESDAY = "2026-06-02"


@pytest.fixture
def frozen_clock(frozen_clock: Callable[[str], None]) -> Callable[[str], None]:
    """The shared frozen clock (tests/conftest.py), stopped at MONDAY to begin with."""
    frozen_clock(MONDAY)
    return frozen_clock


@dataclass
class Desk:
    """A hall of the test's own with one queue category (A) serving one department and its item."""
    hall: str
    category: str
    department: str
    item: str


async def make_desk(**item_fields) -> Desk:
    hall = await make_hall()
    department = await make_department(hall.code)
    item = await make_item(department, **item_fields)
    await make_category(hall.code, prefix="A", departments=[department.code])
    return Desk(hall=hall.code, category="A", department=department.code, item=item.code)


@pytest.fixture
async def desk(frozen_clock) -> Desk:
    return await make_desk()


async def slots(client: httpx.AsyncClient, desk: Desk, day: str = TUESDAY) -> dict:
    response = await client.get(f"/api/v1/halls/{desk.hall}/slots", params={"category": desk.category, "date": day})
    assert response.status_code == 200, response.text
    return response.json()


async def slot_ids(client: httpx.AsyncClient, desk: Desk, day: str = TUESDAY) -> list[int]:
    return [slot["id"] for slot in (await slots(client, desk, day))["items"]]


async def remaining(client: httpx.AsyncClient, desk: Desk, slot_id: int, day: str = TUESDAY) -> int:
    return next(s["remaining"] for s in (await slots(client, desk, day))["items"] if s["id"] == slot_id)


async def another_item(desk: Desk, **fields) -> ServiceItem:
    """One more item of the desk's department, so served by its queue."""
    return await make_item(await Department.get(code=desk.department), **fields)


async def refreshed(client: httpx.AsyncClient, tokens: dict) -> dict:
    """New tokens for the same citizen after the clock moved past the access token's life (the refresh
    token lives 30 days; a second SMS login would meet the per-phone limit, which counts real time)."""
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 200, response.text
    return {**tokens, **response.json()}


async def book(client: httpx.AsyncClient, tokens: dict, slot_id: int, item: str) -> httpx.Response:
    return await client.post("/api/v1/appointments", headers=bearer(tokens),
                             json={"slot_id": slot_id, "service_item": item})


async def my_id(client: httpx.AsyncClient, tokens: dict) -> int:
    return (await client.get("/api/v1/me", headers=bearer(tokens))).json()["id"]
