"""Catalogue reads, the working calendar, and the one staff write so far: opening and closing windows."""
from __future__ import annotations

from typing import Any

from tortoise.expressions import Q

from backend.catalog.calendar import WorkingCalendar
from backend.catalog.models import Department, Hall, HolidayOverride, QueueCategory, ServiceItem, Window
from backend.catalog.schemas import ServiceItemQuery
from backend.kit.auth import Principal, require_hall_scope
from backend.kit.errors import AppError
from backend.kit.uow import UnitOfWork, unit_of_work
from backend.runtime import Runtime

__all__ = [
    "list_halls", "hall_tree", "get_hall_detail", "hall_lineage", "list_departments",
    "search_service_items", "get_service_item", "load_working_calendar", "set_window_status",
    "with_window_status",
    "WINDOW_ROLES",
]

# who may open, pause and close a hall's windows
WINDOW_ROLES = ("window_clerk", "supervisor", "admin")


def _hall_summary(hall: Hall) -> dict[str, Any]:
    return {"code": hall.code, "name": hall.name, "name_mn": hall.name_mn, "name_en": hall.name_en,
            "level": hall.level, "parent": hall.parent_id}


def _department_out(department: Department) -> dict[str, Any]:
    return {"code": department.code, "hall": department.hall_id, "name": department.name,
            "short_name": department.short_name, "name_mn": department.name_mn, "name_en": department.name_en}


async def list_halls(*, level: str | None = None, parent: str | None = None) -> list[dict[str, Any]]:
    query = Hall.all().order_by("code")
    if level:
        query = query.filter(level=level)
    if parent:
        query = query.filter(parent_id=parent)
    return [_hall_summary(h) for h in await query]


async def hall_tree() -> list[dict[str, Any]]:
    nodes = {h["code"]: {**h, "children": []} for h in await list_halls()}
    roots = []
    for node in nodes.values():
        parent = nodes.get(node["parent"]) if node["parent"] else None
        (parent["children"] if parent else roots).append(node)
    return roots


async def _get_hall(code: str) -> Hall:
    hall = await Hall.get_or_none(code=code)
    if hall is None:
        raise AppError("hall_not_found", 404)
    return hall


async def get_hall_detail(code: str) -> dict[str, Any]:
    hall = await _get_hall(code)
    children = await Hall.filter(parent_id=code).order_by("code")
    departments = await Department.filter(hall_id=code).order_by("code")
    categories = await QueueCategory.filter(hall_id=code).order_by("prefix")
    windows = await Window.filter(hall_id=code).order_by("number")
    return {
        **_hall_summary(hall),
        "address": hall.address, "phone": hall.phone, "hours_workday": hall.hours_workday,
        "hours_note": hall.hours_note,
        "children": [_hall_summary(c) for c in children],
        "departments": [_department_out(d) for d in departments],
        "queue_categories": [
            {"prefix": c.prefix, "name": c.name, "name_mn": c.name_mn, "name_en": c.name_en,
             "departments": c.departments, "mean_service_minutes": c.mean_service_minutes}
            for c in categories],
        "windows": [
            {"number": w.number, "name": w.name, "categories": w.categories,
             "department": w.department_code, "status": w.status}
            for w in windows],
    }


async def with_window_status(code: str, windows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`windows` (as in the hall detail) with each window's current status."""
    status = dict(await Window.filter(hall_id=code).values_list("number", "status"))
    return [{**window, "status": status.get(window["number"], window["status"])} for window in windows]


async def hall_lineage(code: str) -> list[str]:
    """The hall's code followed by its ancestors' codes, nearest first (for scope checks)."""
    lineage = []
    current: str | None = (await _get_hall(code)).code
    while current is not None and len(lineage) < 8:
        lineage.append(current)
        current = await Hall.filter(code=current).first().values_list("parent_id", flat=True)
    return lineage


async def list_departments(*, hall: str | None = None) -> list[dict[str, Any]]:
    query = Department.all().order_by("hall_id", "code")
    if hall:
        query = query.filter(hall_id=hall)
    return [_department_out(d) for d in await query]


def _item_out(item: ServiceItem, *, detail: bool = False) -> dict[str, Any]:
    out = {
        "code": item.code, "name": item.name, "name_en": item.name_en,
        "department": item.department_id, "department_name": item.department.name,
        "hall": item.department.hall_id, "kind": item.kind, "promised_days": item.promised_days,
        "legal_days": item.legal_days, "instant": item.instant, "fee_yuan": str(item.fee_yuan),
        "fee_note": item.fee_note, "online": item.online, "appointment": item.appointment,
    }
    if detail:
        out["materials"] = item.materials
        out["keywords"] = item.keywords
    return out


async def search_service_items(query: ServiceItemQuery) -> dict[str, Any]:
    filters = Q()
    # 关键词 search: every space-separated word must appear in the name, keywords or department
    for word in (query.q or "").lower().split()[:5]:
        filters &= Q(search_text__contains=word)
    if query.hall:
        filters &= Q(department__hall_id=query.hall)
    if query.department:
        filters &= Q(department_id=query.department)
    if query.instant is not None:
        filters &= Q(instant=query.instant)
    if query.online is not None:
        filters &= Q(online=query.online)
    base = ServiceItem.filter(filters)
    total = await base.count()
    items = await base.order_by("department_id", "code").offset(query.offset).limit(query.page_size) \
        .prefetch_related("department")
    return {"items": [_item_out(i) for i in items], "page": query.page, "page_size": query.page_size,
            "total": total}


async def get_service_item(code: str) -> dict[str, Any]:
    item = await ServiceItem.get_or_none(code=code).prefetch_related("department")
    if item is None:
        raise AppError("service_item_not_found", 404)
    return _item_out(item, detail=True)


async def load_working_calendar() -> WorkingCalendar:
    overrides = await HolidayOverride.all().values_list("date", "is_workday")
    return WorkingCalendar(dict(overrides))


async def set_window_status(rt: Runtime, *, principal: Principal, hall_code: str, number: str,
                            status: str, tx: UnitOfWork | None = None) -> Window:
    """A clerk opens, pauses or closes a window of a hall they are posted to; the hall's channel hears
    of it once the change is committed."""
    require_hall_scope(principal, await hall_lineage(hall_code), WINDOW_ROLES)
    async with unit_of_work(rt, tx) as uow:
        window = await Window.filter(hall_id=hall_code, number=number).using_db(uow.tx) \
            .select_for_update().first()
        if window is None:
            raise AppError("window_not_found", 404)
        previous = window.status
        if previous != status:
            window.status = status
            await window.save(using_db=uow.tx, update_fields=["status"])
            await uow.record("window.status_changed", f"window:{window.id}", hall=hall_code,
                             number=number, status=status, previous=previous, by=principal.subject)
            uow.publish(f"hall:{hall_code}", {"event": "window.status_changed", "window": number,
                                              "status": status})
    return window
