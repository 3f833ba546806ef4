"""Working days (工作日) for time limits: the statutory calendar with make-up working days (调休).

chinese-calendar knows the State Council's schedule for the years it was released with and raises
for later ones; config/catalog/holidays.toml (loaded into HolidayOverride) covers those years and
may correct any day. Overrides win; without either, Saturday and Sunday are rest days.

OpeningHours says whether a hall is open at an instant and when it next opens: its working-day
hours ("08:30-12:00", "14:30-17:30", in the halls' zone) on the days the calendar says are working days.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import chinese_calendar

__all__ = ["WorkingCalendar", "CalendarDay", "DayKind", "OpeningHours"]

DayKind = Literal["workday", "weekend", "holiday", "makeup_workday"]

# chinese-calendar names its holidays in English; the centre's calendar speaks Chinese
_HOLIDAY_NAMES = {holiday.value: holiday.chinese for holiday in chinese_calendar.Holiday}
_MAKEUP_SUFFIX = "调休上班"


@dataclass(frozen=True)
class CalendarDay:
    date: date
    workday: bool
    kind: DayKind
    name: str


class WorkingCalendar:
    # days whose answer is remembered; a kept calendar is asked about the same few weeks all day
    _REMEMBERED_DAYS = 4096

    def __init__(self, overrides: dict[date, bool], names: dict[date, str] | None = None):
        self._overrides = overrides            # date -> is a working day
        self._names = names or {}              # date -> the override's name (国庆节, 国庆节调休上班)
        # chinese-calendar validates and looks up each date anew: a twentieth of a booking's CPU
        self._workdays: dict[date, bool] = {}

    def is_workday(self, day: date) -> bool:
        known = self._workdays.get(day)
        if known is None:
            known = self._workdays[day] = self._look_up(day)
            if len(self._workdays) > self._REMEMBERED_DAYS:
                self._workdays.clear()
        return known

    def _look_up(self, day: date) -> bool:
        if day in self._overrides:
            return self._overrides[day]
        try:
            return chinese_calendar.is_workday(day)
        except NotImplementedError:            # a year the package does not know
            return day.weekday() < 5

    def day(self, day: date) -> CalendarDay:
        """The day as a calendar shows it: a working day, an ordinary weekend, a holiday (法定节假日 or a
        day off in a holiday block), or a Saturday/Sunday made a working day (调休上班)."""
        weekend = day.weekday() >= 5
        if day in self._overrides:
            workday, name, named = self._overrides[day], self._names.get(day, ""), True
        else:
            try:
                resting, holiday = chinese_calendar.get_holiday_detail(day)
            except NotImplementedError:
                resting, holiday = weekend, None
            workday, named = not resting, holiday is not None
            name = _HOLIDAY_NAMES.get(holiday, holiday or "")
            if name and workday:
                name += _MAKEUP_SUFFIX
        if workday:
            kind: DayKind = "makeup_workday" if weekend else "workday"
        else:
            kind = "holiday" if named or not weekend else "weekend"
        return CalendarDay(date=day, workday=workday, kind=kind, name=name)

    def add_working_days(self, start: date, days: int) -> date:
        """The date `days` working days after `start` (start itself not counted): a deadline."""
        current = start
        remaining = days
        while remaining > 0:
            current += timedelta(days=1)
            if self.is_workday(current):
                remaining -= 1
        return current

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after `start` up to and including `end` (0 if end <= start)."""
        count = 0
        current = start
        while current < end:
            current += timedelta(days=1)
            count += self.is_workday(current)
        return count


_PERIOD = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$", re.ASCII)
# the longest run of rest days a calendar has (春节 with its weekends) is far shorter than this
_LOOKAHEAD_DAYS = 31


class OpeningHours:
    """A hall's opening periods on working days, in `zone`."""

    def __init__(self, periods: list[str], zone: ZoneInfo):
        self.zone = zone
        self.periods = [self.parse(period) for period in periods]

    @staticmethod
    def parse(period: str) -> tuple[time, time]:
        """"08:30-12:00" -> (08:30, 12:00); ValueError for anything else or an empty period."""
        match = _PERIOD.match(period) if isinstance(period, str) else None
        if match is None:
            raise ValueError(f"opening period {period!r} is not HH:MM-HH:MM")
        start = time(int(match[1]), int(match[2]))
        end = time(int(match[3]), int(match[4]))
        if end <= start:
            raise ValueError(f"opening period {period!r} ends before it starts")
        return start, end

    def current_period_end(self, calendar: WorkingCalendar, at: datetime) -> datetime | None:
        """When the period the hall is open in at `at` ends; None if it is closed then."""
        local = at.astimezone(self.zone)
        if not calendar.is_workday(local.date()):
            return None
        for start, end in self.periods:
            if start <= local.time() < end:
                return datetime.combine(local.date(), end, tzinfo=self.zone)
        return None

    def next_opening(self, calendar: WorkingCalendar, at: datetime) -> datetime | None:
        """The start of the first opening period after `at` (later today, or a later working day)."""
        local = at.astimezone(self.zone)
        for offset in range(_LOOKAHEAD_DAYS + 1):
            day = local.date() + timedelta(days=offset)
            if not calendar.is_workday(day):
                continue
            for start, _ in sorted(self.periods):
                opening = datetime.combine(day, start, tzinfo=self.zone)
                if opening > local:
                    return opening
        return None
