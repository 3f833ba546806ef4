"""Electronic supervision (电子监察) of time limits: the 黄牌 before a deadline, the 红牌 when it passes.

A periodic job (backend/jobs.py) raises each running case's warning level with a conditional UPDATE,
so a level is given once whichever process runs the job, and records the warning as a domain event
naming the staff responsible (the approvers of the departments whose steps are still pending, or of
the lead department): notify tells them by SMS. Supervisors list the warned cases of the halls they
oversee.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta

from tortoise.expressions import F, Q
from tortoise.functions import Count

from backend.accounts.staff import staff_responsible
from backend.cases import deadlines
from backend.cases.models import CLOCK_STATUSES, Case, CaseStep
from backend.cases.permissions import SUPERVISION_ROLES
from backend.cases.schemas import (
    STATS_MAX_DAYS, CaseStats, CaseStatsQuery, DepartmentCaseStats, WarningOut, WarningPage, WarningQuery,
)
from backend.cases.service import case_summary
from backend.catalog.calendar import WorkingCalendar
from backend.catalog.service import hall_lineage, halls_under, load_working_calendar
from backend.kit import clock
from backend.kit.auth import Principal
from backend.kit.errors import AppError, FieldError
from backend.kit.uow import unit_of_work
from backend.runtime import Runtime

__all__ = ["watch_deadlines", "list_warnings", "case_stats"]

_BATCH = 500
YELLOW, RED = 1, 2


def _yellow_due(rt: Runtime, calendar: WorkingCalendar, case: Case, now: datetime) -> bool:
    settings = rt.settings.cases
    return now >= deadlines.yellow_at(calendar, deadline=case.deadline_at, working_days=settings.yellow_working_days,
                                      close=settings.deadline_time)


async def _responsible(rt: Runtime, case: Case) -> list[int]:
    """The approvers of the departments still holding the case: its pending steps, else the lead."""
    pending = await CaseStep.filter(case_id=case.id, status="pending").values_list("department_code", "hall_code")
    holders = pending or [(case.department_code, case.hall_code)]
    staff: set[int] = set()
    for department, hall in holders:
        staff.update(await staff_responsible(rt, role="approver", hall_lineage=await hall_lineage(rt, code=hall),
                                             department=department))
    return sorted(staff)


async def _warn(rt: Runtime, case: Case, level: int) -> bool:
    """Raise the case to `level` unless it is there already, paused or no longer running; the event in
    the same transaction."""
    async with unit_of_work(rt) as uow:
        raised = await Case.filter(id=case.id, warning_level__lt=level, status__in=CLOCK_STATUSES,
                                   paused_since__isnull=True).using_db(uow.tx).update(warning_level=level)
        if not raised:
            return False
        kind = "case.deadline_warning" if level == YELLOW else "case.overdue"
        await uow.record(kind, f"case:{case.id}", case=case.id, receipt=case.receipt, item=case.item_code,
                         hall=case.hall_code, department=case.department_code,
                         deadline=case.deadline_at.isoformat(), staff=await _responsible(rt, case))
    return True


async def watch_deadlines(rt: Runtime) -> int:
    """Give every running case the warning it is due; returns how many were given. Idempotent."""
    now, given = clock.now(), 0
    calendar = await load_working_calendar(rt)
    settings = rt.settings.cases
    # no case whose deadline is later than this can be in its yellow period yet
    horizon = deadlines.deadline_at(calendar, accepted_at=now, working_days=settings.yellow_working_days + 1,
                                    close=settings.deadline_time)
    running = Case.filter(status__in=CLOCK_STATUSES, paused_since__isnull=True, deadline_at__isnull=False)
    for level, query in ((RED, running.filter(warning_level__lt=RED, deadline_at__lte=now)),
                         (YELLOW, running.filter(warning_level__lt=YELLOW, deadline_at__lte=horizon))):
        after = 0
        while True:
            batch = await query.filter(id__gt=after).order_by("id").limit(_BATCH)
            for case in batch:
                if level == YELLOW and not _yellow_due(rt, calendar, case, now):
                    continue
                given += await _warn(rt, case, level)
            if len(batch) < _BATCH:
                break
            after = batch[-1].id
    return given


async def _supervised(rt: Runtime, principal: Principal) -> Q:
    """The cases the caller's supervision grants reach: their halls and those below, their department."""
    reach = None
    for grant in principal.grants:
        if grant.role not in SUPERVISION_ROLES:
            continue
        clause = Q()
        if grant.hall is not None:
            clause &= Q(hall_code__in=await halls_under(rt, code=grant.hall))
        if grant.department is not None:
            clause &= Q(department_code=grant.department)
        reach = clause if reach is None else reach | clause
    if reach is None:
        raise AppError("forbidden_role", 403)
    return reach


async def list_warnings(rt: Runtime, *, principal: Principal, query: WarningQuery) -> WarningPage:
    """The running cases with a 黄牌 or 红牌 in the halls (and departments) the supervisor oversees,
    the most urgent deadline first."""
    reach = await _supervised(rt, principal)
    warned = Case.filter(reach, status__in=CLOCK_STATUSES,
                         warning_level__gte=RED if query.level == "red" else YELLOW)
    if query.level == "yellow":
        warned = warned.filter(warning_level=YELLOW)
    if query.hall:
        warned = warned.filter(hall_code=query.hall)
    if query.department:
        warned = warned.filter(department_code=query.department)
    total = await warned.count()
    rows = await warned.order_by("deadline_at", "id").offset(query.offset).limit(query.page_size)
    pending: dict[int, list[str]] = {}
    for case_id, department in await CaseStep.filter(case_id__in=[case.id for case in rows], status="pending") \
            .values_list("case_id", "department_code"):   # the page's pending steps in one query
        pending.setdefault(case_id, []).append(department)
    items = [WarningOut(case=await case_summary(rt, case), level="red" if case.warning_level == RED else "yellow",
                        hall=case.hall_code, department=case.department_code,
                        pending_departments=sorted(pending.get(case.id, [])))
             for case in rows]
    return WarningPage(items=items, page=query.page, page_size=query.page_size, total=total)


async def case_stats(rt: Runtime, *, principal: Principal, query: CaseStatsQuery) -> CaseStats:
    """Per department of the supervisor's halls, for applications accepted in the period: how many,
    how many decided and how many of them late, how many running past their deadline, and the
    instant-completion rate (即时办结率) the centre reports."""
    to = query.to or clock.today()
    start = query.from_ or to - timedelta(days=30)
    if start > to or (to - start).days >= STATS_MAX_DAYS:
        raise AppError("validation_failed", 422, errors=[
            FieldError(field="to", code="field.date_range", params={"max_days": STATS_MAX_DAYS})])
    zone = clock.business_zone()
    accepted = Case.filter(await _supervised(rt, principal),
                           accepted_at__gte=datetime.combine(start, time(0), tzinfo=zone),
                           accepted_at__lt=datetime.combine(to + timedelta(days=1), time(0), tzinfo=zone))
    if query.hall:
        accepted = accepted.filter(hall_code=query.hall)
    now = clock.now()
    counts: dict[tuple[str, str], dict[str, int]] = {}

    async def count(name: str, cases) -> None:
        rows = await cases.annotate(n=Count("id")).group_by("department_code", "hall_code") \
            .values_list("department_code", "hall_code", "n")
        for department, hall, n in rows:
            counts.setdefault((department, hall), {})[name] = n

    await count("accepted", accepted)
    await count("finished", accepted.filter(decided_at__isnull=False))
    await count("finished_late", accepted.filter(decided_at__gt=F("deadline_at")))
    await count("overdue_running", accepted.filter(status__in=CLOCK_STATUSES, deadline_at__lt=now))
    await count("instant_accepted", accepted.filter(instant=True))
    await count("instant_finished_at_acceptance", accepted.filter(finished_at_acceptance=True))
    items = []
    for (department, hall), found in sorted(counts.items()):
        instant = found.get("instant_accepted", 0)
        items.append(DepartmentCaseStats(
            department=department, hall=hall, **{key: found.get(key, 0) for key in (
                "accepted", "finished", "finished_late", "overdue_running", "instant_accepted",
                "instant_finished_at_acceptance")},
            instant_completion_rate=round(found.get("instant_finished_at_acceptance", 0) / instant, 4)
            if instant else None))
    return CaseStats(first_day=start, last_day=to, items=items)
