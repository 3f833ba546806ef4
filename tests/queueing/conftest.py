"""A hall of the test's own, with queues A and B and windows, at a frozen business time.

Every test makes its own hall (tests/rows.py), so its numbers start at A001 and its counts are its own
whatever order the suite runs in."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from backend.catalog.models import Hall, QueueCategory, Window
from backend.kit import clock
from backend.kit.auth import Grant
from tests.factories import bearer, staff_tokens
from tests.rows import make_category, make_hall, make_window

# a Wednesday, an ordinary working day, mid-morning in Ulanqab (Asia/Shanghai)
WORKDAY_MORNING = datetime.fromisoformat("2026-11-25T10:00:00+08:00")


@dataclass
class QueueHall:
    hall: Hall
    categories: dict[str, QueueCategory]
    windows: list[Window] = field(default_factory=list)

    @property
    def code(self) -> str:
        return self.hall.code

    def window_path(self, window: Window, action: str) -> str:
        return f"/api/v1/staff/halls/{self.code}/windows/{window.number}/{action}"

    async def window(self, *categories: str, department: str = "", status: str = "open") -> Window:
        made = await make_window(self.code, categories=list(categories), department=department, status=status)
        self.windows.append(made)
        return made


@pytest.fixture
def business_time(frozen_clock) -> datetime:
    """Business time frozen on a working-day morning (log in after this, so tokens are valid then)."""
    frozen_clock(WORKDAY_MORNING)
    return WORKDAY_MORNING


@pytest.fixture
async def queue_hall(business_time, database) -> QueueHall:
    hall = await make_hall(parent="150921", level="township", hours_workday=["08:30-12:00", "14:30-17:30"])
    categories = {prefix: await make_category(hall.code, prefix=prefix, mean_service_minutes=minutes)
                  for prefix, minutes in (("A", 10), ("B", 6))}
    return QueueHall(hall=hall, categories=categories)


@pytest.fixture
async def kiosk(client, queue_hall) -> dict[str, str]:
    """The headers of the hall's own ticket machine."""
    return bearer(await staff_tokens(client, Grant("kiosk", hall=queue_hall.code)))


@pytest.fixture
async def clerk(client, queue_hall) -> dict[str, str]:
    """A clerk posted to the whole hall (every department, the comprehensive windows too)."""
    return bearer(await staff_tokens(client, Grant("window_clerk", hall=queue_hall.code)))


async def kiosk_ticket(client, headers, hall: str, category: str = "A", **extra) -> dict:
    response = await client.post("/api/v1/kiosk/tickets", headers=headers,
                                 json={"hall": hall, "category": category, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def later(minutes: float) -> None:
    clock.advance(timedelta(minutes=minutes))
