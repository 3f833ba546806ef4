"""Row factories: a test makes the rows it depends on, with codes no other test uses, so it never reads
what another test left behind. (tests/factories.py drives the API the way a client does.)"""
from __future__ import annotations

import random
import uuid
from typing import Any

from backend.catalog.models import Hall, Window

__all__ = ["make_hall", "make_window"]

# Made halls get codes in 159xxx, which no hall of the Ulanqab catalogue (150xxx) uses; levels below the
# county only, so that the catalogue's 1 city + 11 counties stay as they are.
_CODE_DIGITS = {"township": 9, "village": 12}


async def make_hall(*, parent: str = "150921", level: str = "township", **fields: Any) -> Hall:
    """A township hall (or village agency point) of its own under `parent`."""
    while True:
        code = "159" + "".join(random.choice("0123456789") for _ in range(_CODE_DIGITS[level] - 3))
        if not await Hall.exists(code=code):
            break
    defaults: dict[str, Any] = {"name": f"测试{level}大厅{code[-4:]}", "name_en": f"Test hall {code}",
                                "hours_workday": ["08:30-12:00", "14:30-17:30"]}
    return await Hall.create(code=code, level=level, parent_id=parent, **(defaults | fields))


async def make_window(hall_code: str, *, department: str = "", status: str = "closed",
                      categories: list[str] | None = None, number: str | None = None) -> Window:
    """A window of `hall_code` that only the calling test knows (its number starts with T)."""
    number = number or "T" + uuid.uuid4().hex[:7]
    return await Window.create(hall_id=hall_code, number=number, name=f"测试窗口 {number}",
                               categories=categories or [], department_code=department, status=status)
