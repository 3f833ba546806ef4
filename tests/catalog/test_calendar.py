from datetime import date

from backend.catalog.calendar import WorkingCalendar
from backend.catalog.service import load_working_calendar


class TestWorkingCalendar:
    def test_statutory_holidays_and_make_up_days_from_the_calendar_package(self):
        calendar = WorkingCalendar({})
        assert not calendar.is_workday(date(2026, 10, 1))      # 国庆
        assert calendar.is_workday(date(2026, 9, 30))
        assert not calendar.is_workday(date(2026, 2, 17))      # 春节

    def test_overrides_win_and_cover_years_the_package_does_not_know(self):
        calendar = WorkingCalendar({date(2027, 10, 1): False, date(2027, 9, 26): True})
        assert not calendar.is_workday(date(2027, 10, 1))
        assert calendar.is_workday(date(2027, 9, 26))          # a Sunday made a working day (调休)
        assert not calendar.is_workday(date(2027, 10, 9))      # an ordinary Saturday
        assert calendar.is_workday(date(2027, 10, 11))         # an ordinary Monday

    def test_a_deadline_skips_rest_days(self):
        calendar = WorkingCalendar({})
        # Thursday 2026-09-24 + 3 working days: 中秋 takes Fri 25 to Sun 27, so Mon 28, Tue 29, Wed 30
        assert calendar.add_working_days(date(2026, 9, 24), 3) == date(2026, 9, 30)
        # then 国庆 takes Oct 1 to 7: the next working day is Thursday Oct 8, and Saturday Oct 10 is 调休
        assert calendar.add_working_days(date(2026, 9, 30), 1) == date(2026, 10, 8)
        assert calendar.add_working_days(date(2026, 10, 8), 2) == date(2026, 10, 10)
        assert calendar.working_days_between(date(2026, 9, 24), date(2026, 9, 30)) == 3
        assert calendar.add_working_days(date(2026, 9, 24), 0) == date(2026, 9, 24)


async def test_the_loaded_catalogue_carries_the_next_years_schedule(server):
    calendar = await load_working_calendar(server.app.ctx.rt)
    assert not calendar.is_workday(date(2027, 1, 1))           # 元旦, from config/catalog/holidays.toml
    assert not calendar.is_workday(date(2027, 10, 1))          # 国庆
