"""Row factories: a test makes the rows it depends on, with codes no other test uses, so it never reads
what another test left behind. (tests/factories.py drives the API the way a client does.)

Catalogue rows are normally written by `ehall seed`, which bumps the catalogue revision; the factories
that add catalogue rows bump it too, so kept answers (rt.catalogue_cache) show the new rows at once, as
they would after a reload. Windows are live and need no bump."""
from __future__ import annotations

import random
import uuid
from typing import Any

from tortoise.expressions import F

from backend.catalog.loader import search_text
from backend.catalog.models import (
    CatalogRevision, Department, Hall, HallItem, QueueCategory, ServiceItem, Topic, Window,
)

__all__ = ["make_hall", "make_window", "make_department", "make_item", "make_topic", "make_hall_item",
           "make_category", "bump_catalogue_revision"]

# Made halls get codes in 159xxx, which no hall of the Ulanqab catalogue (150xxx) uses; levels below the
# county only, so that the catalogue's 1 city + 11 counties stay as they are.
_CODE_DIGITS = {"township": 9, "village": 12}


def _unique() -> str:
    return uuid.uuid4().hex[:8]


async def bump_catalogue_revision() -> None:
    revision, _ = await CatalogRevision.get_or_create(id=1)
    await CatalogRevision.filter(id=revision.id).update(revision=F("revision") + 1)


async def make_hall(*, parent: str = "150921", level: str = "township", **fields: Any) -> Hall:
    """A township hall (or village agency point) of its own under `parent`."""
    while True:
        code = "159" + "".join(random.choice("0123456789") for _ in range(_CODE_DIGITS[level] - 3))
        if not await Hall.exists(code=code):
            break
    defaults: dict[str, Any] = {"name": f"测试{level}大厅{code[-4:]}", "name_en": f"Test hall {code}",
                                "hours_workday": ["08:30-12:00", "14:30-17:30"]}
    hall = await Hall.create(code=code, level=level, parent_id=parent, **(defaults | fields))
    await bump_catalogue_revision()
    return hall


async def make_window(hall_code: str, *, department: str = "", status: str = "closed",
                      categories: list[str] | None = None, number: str | None = None) -> Window:
    """A window of `hall_code` that only the calling test knows (its number starts with T)."""
    number = number or "T" + uuid.uuid4().hex[:7]
    return await Window.create(hall_id=hall_code, number=number, name=f"测试窗口 {number}",
                               categories=categories or [], department_code=department, status=status)


async def make_department(hall_code: str, **fields: Any) -> Department:
    code = f"t{_unique()}"
    department = await Department.create(**({"code": code, "hall_id": hall_code, "name": f"测试局{code}",
                                              "short_name": "测试局"} | fields))
    await bump_catalogue_revision()
    return department


async def make_item(department: Department, *, code: str | None = None, topics: tuple[str, ...] = (),
                    **fields: Any) -> ServiceItem:
    """A service item of `department`, searchable the way the loader makes items searchable."""
    values: dict[str, Any] = {
        "code": code or f"{department.code}.T{_unique()}", "name": f"测试事项{_unique()}", "kind": "公共服务",
        "promised_days": 5, "legal_days": 20, "instant": False, "online": True, "appointment": True,
        "materials": [{"name": "居民身份证", "copies": 1, "original": True}],
    } | fields
    values["search_text"] = search_text(values, {"name": department.name, "short_name": department.short_name})
    item = await ServiceItem.create(department_id=department.code, **values)
    for topic in topics:
        await item.topic_links.create(topic_id=topic)  # type: ignore[attr-defined]
    await bump_catalogue_revision()
    return item


async def make_topic(**fields: Any) -> Topic:
    code = f"t{_unique()}"
    topic = await Topic.create(**({"code": code, "name": f"测试主题{code}", "name_mn": "ᠰᠡᠳᠦᠪ",
                                   "name_en": f"Test topic {code}", "position": 900} | fields))
    await bump_catalogue_revision()
    return topic


async def make_hall_item(hall: Hall, item: ServiceItem) -> HallItem:
    """`hall` accepts `item` (a township) or its agent takes it (a village agency point)."""
    link = await HallItem.create(hall=hall, item=item, mode="agent" if hall.level == "village" else "accept")
    await bump_catalogue_revision()
    return link


async def make_category(hall_code: str, *, prefix: str = "A", departments: list[str] | None = None,
                        **fields: Any) -> QueueCategory:
    """A queue of `hall_code` (make the hall too, so that the prefix is free and counts are the test's own)."""
    category = await QueueCategory.create(**({
        "hall_id": hall_code, "prefix": prefix, "name": f"测试队列{prefix}", "name_mn": "ᠵᠢᠭᠰᠠᠭᠠᠯ",
        "name_en": f"Test queue {prefix}", "departments": departments or [], "mean_service_minutes": 10} | fields))
    await bump_catalogue_revision()
    return category
