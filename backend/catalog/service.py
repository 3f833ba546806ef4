"""Catalogue reads, the working calendar, and the one staff write so far: opening and closing windows.

Reads return the response schemas' models (catalog/schemas.py), the one definition of each answer.
Finished answers are kept in `rt.catalogue_cache` under the catalogue revision (`kept`): `ehall seed`
bumps it, so no process serves an answer built from an older catalogue once the reload has committed.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

from tortoise.expressions import Q

from backend.catalog.calendar import WorkingCalendar
from backend.catalog.models import (
    CatalogRevision, Department, Hall, HolidayOverride, QueueCategory, ServiceItem, Window,
)
from backend.catalog.permissions import require_window_hall, require_window_scope
from backend.catalog.schemas import (
    DepartmentList, DepartmentOut, HallDetail, HallList, HallNode, HallSummary, QueueCategoryOut,
    ServiceItemDetail, ServiceItemOut, ServiceItemPage, ServiceItemQuery, WindowOut,
)
from backend.kit.auth import Principal
from backend.kit.errors import AppError
from backend.kit.uow import UnitOfWork, unit_of_work
from backend.runtime import Runtime

__all__ = [
    "catalogue_revision", "kept", "list_halls", "hall_tree", "get_hall_detail", "hall_lineage",
    "list_windows", "list_departments", "search_service_items", "get_service_item",
    "load_working_calendar", "set_window_status",
]

T = TypeVar("T")


def _connection(tx: UnitOfWork | None):
    return tx.tx if tx is not None else None


async def catalogue_revision(rt: Runtime) -> int:
    """The revision `ehall seed` bumped last (0 before the first load)."""
    revision = await CatalogRevision.filter(id=1).first().values_list("revision", flat=True)
    return int(revision or 0)


async def kept(rt: Runtime, *, key: tuple[Hashable, ...], build: Callable[[], Awaitable[T]]) -> T:
    """What `build()` returns for `key`, kept a few seconds in this process under the current catalogue
    revision: one primary-key read per request instead of the answer's 10-50 queries, and an answer
    built from an older catalogue is never served after a reload."""
    return await rt.catalogue_cache.get((await catalogue_revision(rt), *key), build)


async def list_halls(rt: Runtime, *, level: str | None = None, parent: str | None = None) -> HallList:
    query = Hall.all().order_by("code")
    if level:
        query = query.filter(level=level)
    if parent:
        query = query.filter(parent_id=parent)
    return HallList(items=[HallNode.from_model(h) for h in await query])


async def hall_tree(rt: Runtime) -> HallList:
    nodes = {h.code: HallNode.from_model(h)
             for h in await Hall.all().order_by("code")}
    roots = []
    for node in nodes.values():
        parent = nodes.get(node.parent) if node.parent else None
        (parent.children if parent else roots).append(node)
    return HallList(items=roots)


async def _get_hall(code: str) -> Hall:
    hall = await Hall.get_or_none(code=code)
    if hall is None:
        raise AppError("hall_not_found", 404)
    return hall


async def _hall_static(code: str) -> HallDetail:
    hall = await _get_hall(code)
    children = await Hall.filter(parent_id=code).order_by("code")
    departments = await Department.filter(hall_id=code).order_by("code")
    categories = await QueueCategory.filter(hall_id=code).order_by("prefix")
    return HallDetail(
        **HallSummary.from_model(hall).model_dump(),
        address=hall.address, phone=hall.phone, hours_workday=hall.hours_workday, hours_note=hall.hours_note,
        children=[HallSummary.from_model(c) for c in children],
        departments=[DepartmentOut.from_model(d) for d in departments],
        queue_categories=[QueueCategoryOut.from_model(c) for c in categories],
        windows=[],
    )


async def list_windows(rt: Runtime, *, hall_code: str) -> list[WindowOut]:
    """A hall's windows as they are now (their status is live)."""
    return [WindowOut.from_model(w) for w in await Window.filter(hall_id=hall_code).order_by("number")]


async def get_hall_detail(rt: Runtime, *, code: str) -> HallDetail:
    """One hall: its static part is kept (`kept`), its windows are read on every call."""
    static = await kept(rt, key=("hall", code), build=lambda: _hall_static(code))
    return static.model_copy(update={"windows": await list_windows(rt, hall_code=code)})


async def hall_lineage(rt: Runtime, *, code: str) -> list[str]:
    """The hall's code followed by its ancestors' codes, nearest first (for scope checks)."""
    lineage = []
    current: str | None = (await _get_hall(code)).code
    while current is not None and len(lineage) < 8:
        lineage.append(current)
        current = await Hall.filter(code=current).first().values_list("parent_id", flat=True)
    return lineage


async def list_departments(rt: Runtime, *, hall: str | None = None) -> DepartmentList:
    query = Department.all().order_by("hall_id", "code")
    if hall:
        query = query.filter(hall_id=hall)
    return DepartmentList(items=[DepartmentOut.from_model(d) for d in await query])


async def search_service_items(rt: Runtime, *, query: ServiceItemQuery) -> ServiceItemPage:
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
    return ServiceItemPage(items=[ServiceItemOut.from_model(i) for i in items], page=query.page,
                           page_size=query.page_size, total=total)


async def get_service_item(rt: Runtime, *, code: str, tx: UnitOfWork | None = None) -> ServiceItemDetail:
    item = await ServiceItem.get_or_none(code=code).using_db(_connection(tx)).prefetch_related("department")
    if item is None:
        raise AppError("service_item_not_found", 404)
    return ServiceItemDetail.from_model(item)


async def load_working_calendar(rt: Runtime, *, tx: UnitOfWork | None = None) -> WorkingCalendar:
    overrides = await HolidayOverride.all().using_db(_connection(tx)).values_list("date", "is_workday")
    return WorkingCalendar(dict(overrides))


async def set_window_status(rt: Runtime, *, principal: Principal, hall_code: str, number: str,
                            status: str, tx: UnitOfWork | None = None) -> WindowOut:
    """A clerk opens, pauses or closes a window of a hall (and department) they are posted to; the
    hall's channel hears of it once the change is committed."""
    lineage = await hall_lineage(rt, code=hall_code)
    require_window_hall(principal, lineage)
    async with unit_of_work(rt, tx) as uow:
        window = await Window.filter(hall_id=hall_code, number=number).using_db(uow.tx) \
            .select_for_update().first()
        if window is None:
            raise AppError("window_not_found", 404)
        require_window_scope(principal, lineage, window.department_code)
        previous = window.status
        if previous != status:
            window.status = status
            await window.save(using_db=uow.tx, update_fields=["status"])
            await uow.record("window.status_changed", f"window:{window.id}", hall=hall_code,
                             number=number, status=status, previous=previous, by=principal.subject)
            uow.publish(f"hall:{hall_code}", {"event": "window.status_changed", "window": number,
                                              "status": status})
    return WindowOut.from_model(window)
