"""A village agency point's agent (代办员): who, the posted line, which days; the next visits follow the
working calendar, so a holiday on a visiting day is not announced as a visit."""
from datetime import date

import pytest

from tests.rows import make_holiday_override

MAGAITU = "150921106202"   # 马盖图村代办点: the agent comes on Tuesdays and Thursdays (halls.toml)


@pytest.fixture
def monday_2033(frozen_clock) -> None:
    # a year no other test's calendar override touches
    frozen_clock("2033-03-07T10:00:00+08:00")


async def test_the_schedule_contact_and_items_of_an_agency_point(client):
    response = await client.get(f"/api/v1/halls/{MAGAITU}/agency")
    assert response.status_code == 200, response.text
    agency = response.json()
    assert agency["code"] == MAGAITU and agency["level"] == "village" and agency["parent"] == "150921106"
    assert agency["agent_name"] and agency["phone"] == "0474-5221106"
    assert agency["visit_weekdays"] == [2, 4] and agency["visit_hours"] == ["09:00-12:00"]
    assert agency["on_request"] is True
    assert {i["code"] for i in agency["accepted_items"]} == {"150921-rs.GG003", "150921-rs.GG002",
                                                             "150921-scjg.XK005"}
    assert response.headers["etag"]
    again = await client.get(f"/api/v1/halls/{MAGAITU}/agency", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304


async def test_the_next_visits_skip_a_holiday_that_falls_on_a_visiting_day(client, monday_2033):
    await make_holiday_override(date(2033, 3, 8), is_workday=False, name="测试假日")        # a Tuesday
    await make_holiday_override(date(2033, 3, 12), is_workday=True, name="测试调休上班")    # a Saturday
    visits = (await client.get(f"/api/v1/halls/{MAGAITU}/agency")).json()["next_visits"]
    # Tuesday the 8th is a holiday; the make-up Saturday is a working day but not a visiting day
    assert visits == [{"date": d, "hours": ["09:00-12:00"]}
                      for d in ("2033-03-10", "2033-03-15", "2033-03-17", "2033-03-22")]


@pytest.mark.parametrize("code, status, error", [
    ("150900", 404, "agency_not_found"),          # the city hall has departments, not an agent
    ("150921106", 404, "agency_not_found"),       # a township centre
    ("159999999999", 404, "hall_not_found"),
    ("15092110620x", 404, "hall_not_found"),
    ("１５０９２１１０６２０２", 404, "hall_not_found"),   # full-width digits are not a code
])
async def test_a_hall_without_an_agent_or_no_hall(client, code, status, error):
    response = await client.get(f"/api/v1/halls/{code}/agency", headers={"Accept-Language": "en"})
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == error
