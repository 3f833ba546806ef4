"""Catalogue reads, the working calendar, and the one staff write so far: opening and closing windows.

Reads return the response schemas' models (catalog/schemas.py), the one definition of each answer.
Finished answers are kept in `rt.catalogue_cache` under the catalogue revision (`kept`): `ehall seed`
bumps it, so no process serves an answer built from an older catalogue for longer than
`catalog.revision_check_seconds` after the reload has committed.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from datetime import date, timedelta
from typing import TypeVar

from tortoise.expressions import Case, Q, Subquery, When

from backend.catalog.calendar import OpeningHours, WorkingCalendar
from backend.catalog.forms import check_form
from backend.catalog.models import (
    CatalogRevision, Department, Hall, HallItem, HolidayOverride, QueueCategory, ServiceItem,
    ServiceItemTopic, Topic, Window,
)
from backend.catalog.permissions import require_window_hall, require_window_scope
from backend.catalog.schemas import (
    CALENDAR_MAX_DAYS, AcceptedItemOut, AgencySchedule, AgencyVisit, CalendarDayOut, CalendarOut, DepartmentList, DepartmentOut,
    HallDetail, HallList, HallNode, HallSummary, QueueCategoryOut, ServiceItemDetail, ServiceItemOut,
    ServiceItemPage, ServiceItemQuery, TopicList, TopicOut, WindowOut,
)
from backend.kit import clock
from backend.kit.auth import Principal
from backend.kit.db import in_transaction_now
from backend.kit.errors import AppError, FieldError
from backend.kit.uow import UnitOfWork, unit_of_work
from backend.runtime import Runtime

__all__ = [
    "catalogue_revision", "kept", "list_halls", "hall_tree", "get_hall_detail", "get_hall_summary",
    "hall_lineage", "get_queue_category", "list_queue_categories", "get_window", "hall_open_now",
    "list_windows", "count_open_windows", "list_departments", "search_service_items", "get_service_item", "list_topics",
    "load_working_calendar", "working_calendar", "calendar_days", "set_window_status", "get_agency_schedule",
    "check_application_form", "get_department", "halls_under",
]

_DEFAULT_CALENDAR_DAYS = 30

T = TypeVar("T")


def _connection(tx: UnitOfWork | None):
    return tx.tx if tx is not None else None


async def catalogue_revision(rt: Runtime) -> int:
    """The revision `ehall seed` bumped last (0 before the first load), as this process read it at most
    `catalog.revision_check_seconds` ago: the read cost a kept answer as much as the rest of the
    request (bench/README.md), and a burst of requests reads it once."""
    return await rt.catalogue_revision_cache.get("revision", _read_catalogue_revision, join=not in_transaction_now())


async def _read_catalogue_revision() -> int:
    revision = await CatalogRevision.filter(id=1).first().values_list("revision", flat=True)
    return int(revision or 0)


async def kept(rt: Runtime, *, key: tuple[Hashable, ...], build: Callable[[], Awaitable[T]]) -> T:
    """What `build()` returns for `key`, kept a few seconds in this process under the current catalogue
    revision: no query at all for most requests instead of the answer's 10-50, and an answer built
    from an older catalogue is not served once this process has seen the reload's revision."""
    return await rt.catalogue_cache.get((await catalogue_revision(rt), *key), build, join=not in_transaction_now())


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
    accepted = await HallItem.filter(hall_id=code).order_by("item_id").prefetch_related("item__department")
    return HallDetail(
        **HallSummary.from_model(hall).model_dump(),
        address=hall.address, phone=hall.phone, hours_workday=hall.hours_workday, hours_note=hall.hours_note,
        children=[HallSummary.from_model(c) for c in children],
        departments=[DepartmentOut.from_model(d) for d in departments],
        queue_categories=[QueueCategoryOut.from_model(c) for c in categories],
        accepted_items=[AcceptedItemOut.from_model(link) for link in accepted],
        windows=[], open_now=False, closes_at=None, next_opening_at=None,   # live: filled in per call
    )


async def list_windows(rt: Runtime, *, hall_code: str) -> list[WindowOut]:
    """A hall's windows as they are now (their status is live)."""
    return [WindowOut.from_model(w) for w in await Window.filter(hall_id=hall_code).order_by("number")]


async def count_open_windows(rt: Runtime, *, hall_code: str, category: str) -> int:
    """How many of a hall's windows are open now and call from queue `category`: part of every waiting
    ticket's estimate, so kept a few seconds per process (settings.queueing.estimate_cache_seconds);
    a window opened or closed in this process drops it at once, in another one it shows within that time."""
    async def build() -> list[list[str]]:
        return await Window.filter(hall_id=hall_code, status="open").values_list("categories", flat=True)
    served = await rt.estimates.get(("open-windows", hall_code), build, join=not in_transaction_now())
    return sum(category in categories for categories in served)


async def get_hall_detail(rt: Runtime, *, code: str) -> HallDetail:
    """One hall. Its static part is kept (`kept`); what changes by itself is worked out on every call:
    the windows' status, and whether the hall is open now (its hours on the calendar's working days,
    at clock.now() in the halls' zone)."""
    static = await kept(rt, key=("hall", code), build=lambda: _hall_static(code))
    calendar = await working_calendar(rt)
    hours = OpeningHours(static.hours_workday, clock.business_zone())
    now = clock.now()
    closes_at = hours.current_period_end(calendar, now)
    return static.model_copy(update={
        "windows": await list_windows(rt, hall_code=code),
        "open_now": closes_at is not None, "closes_at": closes_at,
        "next_opening_at": hours.next_opening(calendar, now),
    })


# how many of an agency point's next visiting days an answer lists, looking at most this far ahead
_AGENCY_VISITS = 4
_AGENCY_LOOKAHEAD_DAYS = 60


async def _agency_static(code: str) -> AgencySchedule:
    hall = await _get_hall(code)
    if not hall.agency:
        raise AppError("agency_not_found", 404)
    accepted = await HallItem.filter(hall_id=code).order_by("item_id").prefetch_related("item__department")
    agency = hall.agency
    return AgencySchedule(
        **HallSummary.from_model(hall).model_dump(), agent_name=agency["agent_name"], phone=agency["phone"],
        visit_weekdays=agency["visit_weekdays"], visit_hours=agency["visit_hours"],
        on_request=agency.get("on_request", False), hours_note=hall.hours_note,
        accepted_items=[AcceptedItemOut.from_model(link) for link in accepted], next_visits=[])


async def get_agency_schedule(rt: Runtime, *, code: str) -> AgencySchedule:
    """A village agency point's agent: who, how to call, which days; the next visits are worked out on
    every call from today and the working calendar, the rest is kept with the catalogue."""
    static = await kept(rt, key=("agency", code), build=lambda: _agency_static(code))
    calendar = await working_calendar(rt)
    visits: list[AgencyVisit] = []
    day = clock.today()
    for _ in range(_AGENCY_LOOKAHEAD_DAYS):
        if day.isoweekday() in static.visit_weekdays and calendar.is_workday(day):
            visits.append(AgencyVisit(date=day, hours=static.visit_hours))
            if len(visits) == _AGENCY_VISITS:
                break
        day += timedelta(days=1)
    return static.model_copy(update={"next_visits": visits})


async def get_hall_summary(rt: Runtime, *, code: str) -> HallSummary:
    """A hall's names and place, kept with the catalogue (no live part)."""
    static = await kept(rt, key=("hall", code), build=lambda: _hall_static(code))
    return HallSummary(**static.model_dump(include=set(HallSummary.model_fields)))


async def get_queue_category(rt: Runtime, *, hall: str, prefix: str,
                             tx: UnitOfWork | None = None) -> QueueCategoryOut:
    """One queue of a hall, named by its prefix letter (as a ticket or a slot names it), kept with the
    catalogue: every ticket and booking names one."""
    async def build() -> QueueCategoryOut:
        category = await QueueCategory.get_or_none(hall_id=hall, prefix=prefix).using_db(_connection(tx))
        if category is None:
            raise AppError("queue_category_not_found", 404)
        return QueueCategoryOut.from_model(category)
    return await kept(rt, key=("queue-category", hall, prefix), build=build)


async def list_queue_categories(rt: Runtime, *, hall: str) -> list[QueueCategoryOut]:
    """A hall's queues by prefix letter (kept with the catalogue)."""
    return (await kept(rt, key=("hall", hall), build=lambda: _hall_static(hall))).queue_categories


async def get_window(rt: Runtime, *, hall_code: str, number: str, lock: bool = False,
                     tx: UnitOfWork | None = None) -> WindowOut:
    """A hall's window as it is now; with `lock`, its row stays locked until `tx` ends, so that the
    actions of one window (calling, opening, closing) run one after the other."""
    query = Window.filter(hall_id=hall_code, number=number).using_db(_connection(tx))
    window = await (query.select_for_update() if lock else query).first()
    if window is None:
        raise AppError("window_not_found", 404)
    return WindowOut.from_model(window)


async def hall_open_now(rt: Runtime, *, code: str) -> bool:
    """Whether the hall is open at clock.now(): a working day on the calendar, within its hours."""
    static = await kept(rt, key=("hall", code), build=lambda: _hall_static(code))
    hours = OpeningHours(static.hours_workday, clock.business_zone())
    return hours.current_period_end(await working_calendar(rt), clock.now()) is not None


async def hall_lineage(rt: Runtime, *, code: str) -> list[str]:
    """The hall's code followed by its ancestors' codes, nearest first (for scope checks), kept with the
    catalogue: every scoped action asks for it."""
    async def build() -> list[str]:
        lineage = []
        current: str | None = (await _get_hall(code)).code
        while current is not None and len(lineage) < 8:
            lineage.append(current)
            current = await Hall.filter(code=current).first().values_list("parent_id", flat=True)
        return lineage
    return list(await kept(rt, key=("lineage", code), build=build))


async def get_department(rt: Runtime, *, code: str) -> DepartmentOut:
    """One department, kept with the catalogue."""
    async def build() -> DepartmentOut:
        department = await Department.get_or_none(code=code)
        if department is None:
            raise AppError("department_not_found", 404)
        return DepartmentOut.from_model(department)
    return await kept(rt, key=("department", code), build=build)


async def halls_under(rt: Runtime, *, code: str) -> list[str]:
    """The hall and every hall below it (its counties, townships, agency points), kept with the catalogue:
    what a supervisor or approver grant of `code` oversees."""
    async def build() -> list[str]:
        found, frontier = [code], [code]
        while frontier:
            frontier = await Hall.filter(parent_id__in=frontier).values_list("code", flat=True)
            found.extend(frontier)
        return found
    return await kept(rt, key=("halls-under", code), build=build)


async def list_departments(rt: Runtime, *, hall: str | None = None) -> DepartmentList:
    query = Department.all().order_by("hall_id", "code")
    if hall:
        query = query.filter(hall_id=hall)
    return DepartmentList(items=[DepartmentOut.from_model(d) for d in await query])


async def search_service_items(rt: Runtime, *, query: ServiceItemQuery) -> ServiceItemPage:
    filters = Q()
    # 关键词 search: every space-separated word must appear in a name (zh, mn, en), keywords or department
    words = (query.q or "").lower().split()[:5]
    for word in words:
        filters &= Q(search_text__contains=word)
    if query.hall:
        accepted_there = Subquery(HallItem.filter(hall_id=query.hall).values("item_id"))
        filters &= Q(department__hall_id=query.hall) | Q(code__in=accepted_there)
    if query.department:
        filters &= Q(department_id=query.department)
    if query.instant is not None:
        filters &= Q(instant=query.instant)
    if query.online is not None:
        filters &= Q(online=query.online)
    if query.audience == "personal":
        filters &= Q(for_personal=True)
    elif query.audience == "enterprise":
        filters &= Q(for_enterprise=True)
    if query.topic:
        filters &= Q(code__in=Subquery(ServiceItemTopic.filter(topic_id=query.topic).values("item_id")))
    base = ServiceItem.filter(filters)
    total = await base.count()
    items = await _ranked(base, query).offset(query.offset).limit(query.page_size) \
        .prefetch_related("department", "topic_links")
    return ServiceItemPage(items=[ServiceItemOut.from_model(i) for i in items], page=query.page,
                           page_size=query.page_size, total=total)


def _departments_of(**hall_filter: str) -> Subquery:
    return Subquery(Department.filter(**hall_filter).values("code"))


def _ranked(items, query: ServiceItemQuery):
    """Best first: the name is what was typed, then the name starts with it; the requested hall's own
    items, then the city hall's before the ten counties' copies of the same matter; then the code."""
    text = " ".join((query.q or "").split())
    ranks = {}
    if text:
        ranks["exact_rank"] = Case(When(Q(name=text) | Q(name_mn=text) | Q(name_en__iexact=text), then="0"),
                                   default="1")
        ranks["prefix_rank"] = Case(When(Q(name__startswith=text) | Q(name_mn__startswith=text)
                                         | Q(name_en__istartswith=text), then="0"), default="1")
    if query.hall:
        ranks["hall_rank"] = Case(When(department_id__in=_departments_of(hall_id=query.hall), then="0"),
                                  default="1")
    ranks["level_rank"] = Case(When(department_id__in=_departments_of(hall__level="city"), then="0"),
                               When(department_id__in=_departments_of(hall__level="county"), then="1"),
                               default="2")
    return items.annotate(**ranks).order_by(*ranks, "code")


async def get_service_item(rt: Runtime, *, code: str, tx: UnitOfWork | None = None) -> ServiceItemDetail:
    """One item with its form and who reviews it (the lead first), kept with the catalogue: a booking,
    a declaration and the item's page all read it, and building it is five queries."""
    async def build() -> ServiceItemDetail:
        item = await ServiceItem.get_or_none(code=code).using_db(_connection(tx)) \
            .prefetch_related("department", "topic_links", "hall_links__hall")
        if item is None:
            raise AppError("service_item_not_found", 404)
        found = {d.code: d for d in await Department.filter(code__in=item.review_departments)
                 .using_db(_connection(tx))}
        # the loader refuses a reviewer that does not exist; a department removed since is left out
        reviewers = [found[c] for c in item.review_departments if c in found]
        return ServiceItemDetail.from_model(item, reviewers=reviewers)
    return await kept(rt, key=("item-detail", code), build=build)


async def check_application_form(rt: Runtime, *, item_code: str, data: object,
                                 tx: UnitOfWork | None = None) -> dict[str, object]:
    """A declaration (申报) of the item checked against the item's form as the catalogue stores it: the
    cleaned values, or AppError("invalid_form", 422) naming every problem (catalog.forms.check_form)."""
    form = await ServiceItem.filter(code=item_code).using_db(_connection(tx)).first().values_list("form", flat=True)
    if form is None:
        raise AppError("service_item_not_found", 404)
    return check_form(form, data)


async def list_topics(rt: Runtime) -> TopicList:
    return TopicList(items=[TopicOut.from_model(t) for t in await Topic.all().order_by("position", "code")])


async def load_working_calendar(rt: Runtime, *, tx: UnitOfWork | None = None) -> WorkingCalendar:
    """The calendar with the overrides as they are in the database now."""
    overrides = await HolidayOverride.all().using_db(_connection(tx)).values_list("date", "is_workday", "name")
    return WorkingCalendar({day: workday for day, workday, _ in overrides},
                           {day: name for day, _, name in overrides if name})


async def working_calendar(rt: Runtime) -> WorkingCalendar:
    """The calendar, kept with the catalogue it was loaded with (overrides change only with `ehall seed`)."""
    return await kept(rt, key=("working-calendar",), build=lambda: load_working_calendar(rt))


async def calendar_days(rt: Runtime, *, start: date | None = None, end: date | None = None) -> CalendarOut:
    """Each day from `start` (default today) to `end` (default a month later), both included."""
    start = start or clock.today()
    if end is None:
        end = start + timedelta(days=min(_DEFAULT_CALENDAR_DAYS, (date.max - start).days))
    if end < start or (end - start).days >= CALENDAR_MAX_DAYS:
        raise AppError("validation_failed", 422, errors=[
            FieldError(field="to", code="field.date_range", params={"max_days": CALENDAR_MAX_DAYS})])
    calendar = await working_calendar(rt)
    return CalendarOut(items=[CalendarDayOut.from_day(calendar.day(start + timedelta(days=offset)))
                              for offset in range((end - start).days + 1)])


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
    rt.estimates.forget(("open-windows", hall_code))
    return WindowOut.from_model(window)
