from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from backend.catalog.calendar import CalendarDay, OpeningHours, WorkingCalendar
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


class TestCalendarDay:
    def test_kinds_and_names_from_the_calendar_package(self):
        calendar = WorkingCalendar({})
        national_day = calendar.day(date(2026, 10, 1))          # a Thursday
        assert (national_day.workday, national_day.kind, national_day.name) == (False, "holiday", "国庆节")
        assert calendar.day(date(2026, 10, 3)).kind == "holiday"  # a Saturday inside the block
        makeup = calendar.day(date(2026, 10, 10))                # a Saturday made a working day
        assert (makeup.workday, makeup.kind, makeup.name) == (True, "makeup_workday", "国庆节调休上班")
        assert calendar.day(date(2026, 10, 17)).kind == "weekend"
        assert (calendar.day(date(2026, 10, 14)).kind, calendar.day(date(2026, 10, 14)).name) == ("workday", "")

    def test_overrides_give_their_names_and_unknown_years_fall_back_to_weekends(self):
        calendar = WorkingCalendar({date(2027, 10, 1): False, date(2027, 9, 26): True},
                                   {date(2027, 10, 1): "国庆节", date(2027, 9, 26): "国庆节调休上班"})
        assert calendar.day(date(2027, 10, 1)) == CalendarDay(date(2027, 10, 1), False, "holiday", "国庆节")
        assert calendar.day(date(2027, 9, 26)) == CalendarDay(date(2027, 9, 26), True, "makeup_workday",
                                                              "国庆节调休上班")
        assert calendar.day(date(2027, 10, 9)).kind == "weekend"
        assert calendar.day(date(2027, 10, 11)).kind == "workday"


SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


class TestOpeningHours:
    hours = OpeningHours(["08:30-12:00", "13:30-17:30"], SHANGHAI)
    calendar = WorkingCalendar({})

    def test_open_within_a_period_of_a_working_day(self):
        assert self.hours.current_period_end(self.calendar, at("2026-11-25T09:00:00+08:00")) == \
            at("2026-11-25T12:00:00+08:00")
        assert self.hours.next_opening(self.calendar, at("2026-11-25T09:00:00+08:00")) == \
            at("2026-11-25T13:30:00+08:00")

    def test_closed_in_the_lunch_break_and_open_again_after_it(self):
        assert self.hours.current_period_end(self.calendar, at("2026-11-25T12:30:00+08:00")) is None
        assert self.hours.next_opening(self.calendar, at("2026-11-25T12:30:00+08:00")) == \
            at("2026-11-25T13:30:00+08:00")

    def test_the_period_end_is_closed_and_utc_instants_are_read_in_the_halls_zone(self):
        assert self.hours.current_period_end(self.calendar, at("2026-11-25T17:30:00+08:00")) is None
        # 01:00 UTC is 09:00 in Ulanqab
        assert self.hours.current_period_end(self.calendar, at("2026-11-25T01:00:00+00:00")) is not None

    def test_after_friday_closing_the_next_opening_is_monday_morning(self):
        assert self.hours.next_opening(self.calendar, at("2026-11-27T18:00:00+08:00")) == \
            at("2026-11-30T08:30:00+08:00")

    def test_a_holiday_block_is_skipped_and_a_makeup_saturday_opens(self):
        assert self.hours.current_period_end(self.calendar, at("2026-10-01T10:00:00+08:00")) is None
        assert self.hours.next_opening(self.calendar, at("2026-10-01T10:00:00+08:00")) == \
            at("2026-10-08T08:30:00+08:00")
        assert self.hours.current_period_end(self.calendar, at("2026-10-10T10:00:00+08:00")) is not None

    def test_a_hall_without_hours_never_opens(self):
        hours = OpeningHours([], SHANGHAI)
        assert hours.current_period_end(self.calendar, at("2026-11-25T10:00:00+08:00")) is None
        assert hours.next_opening(self.calendar, at("2026-11-25T10:00:00+08:00")) is None

    @pytest.mark.parametrize("period", ["8:30-12:00", "08:30-24:00", "12:00-08:30", "12:00-12:00", "08:30",
                                        "０８:30-12:00", "1０:00-12:00"])
    def test_malformed_periods_are_refused(self, period):
        with pytest.raises(ValueError):
            OpeningHours.parse(period)
