"""Working days (工作日) for time limits: the statutory calendar with make-up working days (调休).

chinese-calendar knows the State Council's schedule for the years it was released with and raises
for later ones; config/catalog/holidays.toml (loaded into HolidayOverride) covers those years and
may correct any day. Overrides win; without either, Saturday and Sunday are rest days.
"""
from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar

__all__ = ["WorkingCalendar"]


class WorkingCalendar:
    def __init__(self, overrides: dict[date, bool]):
        self._overrides = overrides            # date -> is a working day

    def is_workday(self, day: date) -> bool:
        if day in self._overrides:
            return self._overrides[day]
        try:
            return chinese_calendar.is_workday(day)
        except NotImplementedError:            # a year the package does not know
            return day.weekday() < 5

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
