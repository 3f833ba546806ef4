"""The time limit of an application (承诺时限), counted in working days on the working calendar.

The count starts the day after acceptance (受理) and runs `promised_days` working days: holidays do not
count, make-up working days (调休上班) do. It runs out at `cases.deadline_time` of its last working day.
A pause (补正 after acceptance, 特别程序) stops it: when the case resumes, every working day the pause
touched after the day it began is added, so the applicant's or the procedure's time is never the
department's. The 黄牌 comes `yellow_working_days` working days before the deadline, the 红牌 when it
passes (backend/cases/supervision.py).
"""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from backend.catalog.calendar import WorkingCalendar
from backend.kit import clock

__all__ = ["deadline_at", "yellow_at", "paused_working_days", "working_days_before"]


def _close(at: str) -> time:
    hour, minute = (int(part) for part in at.split(":"))
    return time(hour, minute)


def _local_day(instant: datetime) -> date:
    return instant.astimezone(clock.business_zone()).date()


def deadline_at(calendar: WorkingCalendar, *, accepted_at: datetime, working_days: int, close: str) -> datetime:
    """When `working_days` working days counted from the day after `accepted_at` run out, in UTC like every
    instant at rest: SQLite keeps datetimes as text, so a +08:00 one would not compare with clock.now()."""
    day = calendar.add_working_days(_local_day(accepted_at), working_days)
    return datetime.combine(day, _close(close), tzinfo=clock.business_zone()).astimezone(UTC)


def working_days_before(calendar: WorkingCalendar, day: date, count: int) -> date:
    """The working day `count` working days before `day` (`day` itself when count is 0)."""
    current = day
    while count > 0:
        current -= timedelta(days=1)
        if calendar.is_workday(current):
            count -= 1
    return current


def yellow_at(calendar: WorkingCalendar, *, deadline: datetime, working_days: int, close: str) -> datetime:
    """When the 黄牌 is due: the close of the working day `working_days` before the deadline's day."""
    day = working_days_before(calendar, _local_day(deadline), working_days)
    return datetime.combine(day, _close(close), tzinfo=clock.business_zone())


def paused_working_days(calendar: WorkingCalendar, *, since: datetime, until: datetime) -> int:
    """Working days a pause from `since` to `until` took from the count: those after the day it began,
    up to and including the day it ended."""
    return calendar.working_days_between(_local_day(since), _local_day(until))
