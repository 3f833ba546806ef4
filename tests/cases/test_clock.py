"""The promised time (承诺时限) of an application: working days on the working calendar from the day after
acceptance, pushed back by pauses (特别程序, 补正 after acceptance), with a 黄牌 one working day before the
deadline at 17:30 and a 红牌 when it passes.

Every expected date below is counted by hand from a calendar written out in the test. The years are
far ones no other test touches (2035, 2036): chinese-calendar does not know them, so Saturday and
Sunday rest and every other day works, except the overrides each test makes for days of its own."""
from __future__ import annotations

from datetime import date, datetime

import pytest

from backend.cases import deadlines
from backend.cases.supervision import watch_deadlines
from backend.catalog.calendar import WorkingCalendar
from backend.kit.auth import Grant
from backend.kit.models import OutboxEvent
from tests.cases.conftest import declare, event_kinds, make_office, moved, problem
from tests.factories import bearer, real_name_citizen, staff_tokens
from tests.rows import make_holiday_override

# Late September 2035, as a holiday block with a make-up working day would lay it out:
#   Wed 09-26  Thu 27  Fri 28  Sat 29 (调休上班, works)  Sun 30
#   Mon 10-01  Tue 02  Wed 03 (holidays)  Thu 04  Fri 05  Sat 06  Sun 07  Mon 08
NATIONAL_DAY_2035 = {date(2035, 10, 1): False, date(2035, 10, 2): False, date(2035, 10, 3): False,
                     date(2035, 9, 29): True}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


class TestDeadlineArithmetic:
    calendar = WorkingCalendar(NATIONAL_DAY_2035)

    def test_five_working_days_from_a_wednesday_count_the_makeup_saturday_and_skip_the_holidays(self):
        # Thu 27 (1), Fri 28 (2), Sat 29 (3, 调休), Thu 10-04 (4), Fri 10-05 (5)
        deadline = deadlines.deadline_at(self.calendar, accepted_at=at("2035-09-26T10:00:00+08:00"),
                                         working_days=5, close="17:30")
        assert deadline == at("2035-10-05T17:30:00+08:00")
        assert deadline.utcoffset().total_seconds() == 0         # kept in UTC, like every instant at rest

    def test_the_count_starts_the_day_after_the_local_day_of_acceptance(self):
        # 20:00 UTC on the 26th is 04:00 on Thursday the 27th in Ulanqab: Fri 28 (1), Sat 29 (2), Thu 04 (3),
        # Fri 05 (4), Mon 08 (5)
        deadline = deadlines.deadline_at(self.calendar, accepted_at=at("2035-09-26T20:00:00+00:00"),
                                         working_days=5, close="17:30")
        assert deadline == at("2035-10-08T17:30:00+08:00")

    def test_zero_working_days_run_out_at_the_close_of_the_day_of_acceptance(self):
        assert deadlines.deadline_at(self.calendar, accepted_at=at("2035-09-28T09:00:00+08:00"), working_days=0,
                                     close="17:30") == at("2035-09-28T17:30:00+08:00")

    @pytest.mark.parametrize(("deadline", "yellow"), [
        ("2035-10-05T17:30:00+08:00", "2035-10-04T17:30:00+08:00"),   # the working day before
        ("2035-10-04T17:30:00+08:00", "2035-09-29T17:30:00+08:00"),   # back over the holidays to the 调休 Saturday
        ("2035-10-08T17:30:00+08:00", "2035-10-05T17:30:00+08:00"),   # back over an ordinary weekend
    ])
    def test_the_yellow_card_is_due_at_the_close_of_the_working_day_before_the_deadline(self, deadline, yellow):
        assert deadlines.yellow_at(self.calendar, deadline=at(deadline), working_days=1, close="17:30") == at(yellow)

    def test_working_days_before_a_day(self):
        assert deadlines.working_days_before(self.calendar, date(2035, 10, 4), 0) == date(2035, 10, 4)
        assert deadlines.working_days_before(self.calendar, date(2035, 10, 4), 2) == date(2035, 9, 28)
        # from Mon 10-08: Fri 05 (1), Thu 04 (2), then back over the holidays and Sunday to Sat 09-29 (3)
        assert deadlines.working_days_before(self.calendar, date(2035, 10, 8), 3) == date(2035, 9, 29)

    @pytest.mark.parametrize(("since", "until", "days"), [
        # after Fri 28 up to and including Thu 04: Sat 29 and Thu 04
        ("2035-09-28T11:00:00+08:00", "2035-10-04T09:00:00+08:00", 2),
        ("2035-09-28T09:00:00+08:00", "2035-09-28T16:00:00+08:00", 0),     # within a day: nothing
        ("2035-09-30T09:00:00+08:00", "2035-10-03T16:00:00+08:00", 0),     # a rest day to a holiday
        # 23:00 UTC on the 27th is already Friday the 28th in Ulanqab
        ("2035-09-27T23:00:00+00:00", "2035-10-01T10:00:00+08:00", 1),
    ])
    def test_a_pause_takes_the_working_days_after_the_day_it_began_up_to_the_day_it_ended(self, since, until, days):
        assert deadlines.paused_working_days(self.calendar, since=at(since), until=at(until)) == days


async def refreshed(client, citizen: dict) -> dict:
    """The citizen's tokens at the frozen time: an access token of an earlier business day has expired."""
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": citizen["refresh_token"]})
    assert response.status_code == 200, response.text
    citizen.update(response.json())
    return citizen


async def _citizen_view(client, citizen: dict, case: dict) -> dict:
    response = await client.get(f"/api/v1/cases/{case['id']}", headers=bearer(await refreshed(client, citizen)))
    assert response.status_code == 200, response.text
    return response.json()


class TestDeadline:
    async def test_a_deadline_across_a_holiday_and_a_makeup_working_day_is_the_calendars(
            self, client, capsys, frozen_clock):
        for day, workday in NATIONAL_DAY_2035.items():
            await make_holiday_override(day, is_workday=workday, name="测试调休上班" if workday else "测试假日")
        frozen_clock("2035-09-26T10:00:00+08:00")
        office = await make_office(reviewers=1, promised_days=5)
        citizen = await real_name_citizen(client, capsys)
        case = await declare(client, citizen, office.item.code)
        accepted = await moved(client, await office.staff(client, "window_clerk"), case, "accept")
        assert accepted["deadline"] == "2035-10-05T17:30:00+08:00"
        assert accepted["clock"] == {**accepted["clock"], "state": "running", "promised_days": 5,
                                     "deadline": "2035-10-05T17:30:00+08:00", "paused_working_days": 0}
        assert accepted["accepted_at"] == "2035-09-26T10:00:00+08:00"


class TestSpecialProcedure:
    async def test_a_pause_is_shown_while_it_lasts_and_moves_the_deadline_by_the_working_days_it_covered(
            self, client, capsys, frozen_clock):
        # November 2035: Mon 11-05 .. Fri 11-09, with Friday 11-09 made a rest day; Mon 11-12 ..
        await make_holiday_override(date(2035, 11, 9), is_workday=False, name="测试停工日")
        frozen_clock("2035-11-05T10:00:00+08:00")
        office = await make_office(reviewers=1, promised_days=5)
        citizen = await real_name_citizen(client, capsys)
        case = await declare(client, citizen, office.item.code)
        accepted = await moved(client, await office.staff(client, "window_clerk"), case, "accept")
        # Tue 06 (1), Wed 07 (2), Thu 08 (3), Mon 12 (4), Tue 13 (5)
        assert accepted["deadline"] == "2035-11-13T17:30:00+08:00"

        frozen_clock("2035-11-07T15:00:00+08:00")
        lead = await office.staff(client, "approver")
        paused = await moved(client, lead, case, "pause", reason="组织专家评审")
        assert paused["status"] == "accepted"
        assert paused["clock"] == {"state": "paused", "promised_days": 5, "deadline": "2035-11-13T17:30:00+08:00",
                                   "paused_since": "2035-11-07T15:00:00+08:00", "pause_kind": "special_procedure",
                                   "pause_reason": "组织专家评审", "paused_working_days": 0, "warning": "none"}
        seen = await _citizen_view(client, citizen, case)
        assert seen["clock"]["state"] == "paused" and seen["clock"]["pause_reason"] == "组织专家评审"
        assert {k: seen["timeline"][-1][k] for k in ("at", "action", "from_status", "to_status", "comment")} == {
            "at": "2035-11-07T15:00:00+08:00", "action": "pause", "from_status": "accepted", "to_status": "accepted",
            "comment": "组织专家评审"}
        problem(await client.post(f"/api/v1/staff/cases/{case['id']}/pause", headers=bearer(lead),
                                  json={"reason": "又一次"}), 409, "case_paused")

        frozen_clock("2035-11-12T09:00:00+08:00")
        lead = await office.staff(client, "approver")
        resumed = await moved(client, lead, case, "resume", comment="评审结束")
        # the pause covered Thu 08 and Mon 12 (Fri 09 and the weekend rest): 5 + 2 working days,
        # Tue 06, Wed 07, Thu 08, Mon 12, Tue 13, Wed 14, Thu 15
        assert resumed["deadline"] == "2035-11-15T17:30:00+08:00"
        assert resumed["clock"]["state"] == "running" and resumed["clock"]["paused_working_days"] == 2
        assert resumed["clock"]["pause_kind"] is None and resumed["clock"]["pause_reason"] is None
        assert [e.kind for e in await OutboxEvent.filter(aggregate=f"case:{case['id']}").order_by("id")] == [
            "case.submitted", "case.accepted", "case.paused", "case.resumed"]
        problem(await client.post(f"/api/v1/staff/cases/{case['id']}/resume", headers=bearer(lead), json={}),
                409, "case_not_paused")

    async def test_only_the_lead_departments_approver_pauses(self, client, capsys, frozen_clock):
        frozen_clock("2035-11-20T10:00:00+08:00")
        office = await make_office(reviewers=1)
        citizen = await real_name_citizen(client, capsys)
        case = await declare(client, citizen, office.item.code)
        await moved(client, await office.staff(client, "window_clerk"), case, "accept")
        reviewer = await office.staff(client, "approver", office.others[0].code)
        problem(await client.post(f"/api/v1/staff/cases/{case['id']}/pause", headers=bearer(reviewer),
                                  json={"reason": "现场勘验"}), 403, "out_of_scope")


class TestSupplementInReview:
    async def test_a_supplement_after_acceptance_pauses_the_clock_until_the_applicant_resubmits(
            self, client, capsys, frozen_clock):
        # December 2035: Mon 12-03 .. Fri 12-07, Mon 12-10 .. Fri 12-14, no holidays
        frozen_clock("2035-12-03T10:00:00+08:00")
        office = await make_office(reviewers=1, promised_days=3)
        citizen = await real_name_citizen(client, capsys)
        case = await declare(client, citizen, office.item.code)
        accepted = await moved(client, await office.staff(client, "window_clerk"), case, "accept")
        assert accepted["deadline"] == "2035-12-06T17:30:00+08:00"     # Tue 04, Wed 05, Thu 06

        frozen_clock("2035-12-04T11:00:00+08:00")
        reviewer = await office.staff(client, "approver", office.others[0].code)
        asked = await moved(client, reviewer, case, "request-supplement", missing=["消防验收意见书"])
        assert asked["status"] == "supplement_required"
        assert asked["clock"]["state"] == "paused" and asked["clock"]["pause_kind"] == "supplement"
        assert asked["clock"]["paused_since"] == "2035-12-04T11:00:00+08:00"

        frozen_clock("2035-12-10T16:00:00+08:00")
        resubmitted = await client.post(f"/api/v1/cases/{case['id']}/resubmit",
                                        headers=bearer(await refreshed(client, citizen)), json={})
        assert resubmitted.status_code == 200, resubmitted.text
        body = resubmitted.json()
        # the wait covered Wed 05, Thu 06, Fri 07 and Mon 10: 3 + 4 working days from Mon 12-03 end Wed 12-12
        assert body["status"] == "accepted" and body["deadline"] == "2035-12-12T17:30:00+08:00"
        assert body["clock"]["state"] == "running" and body["clock"]["paused_working_days"] == 4
        assert await event_kinds(case["id"]) == ["case.submitted", "case.accepted", "case.supplement_required",
                                                 "case.accepted"]


# March 2036: Mon 03-03 accepted with 5 working days: Tue 04, Wed 05, Thu 06, Fri 07, Mon 10. The deadline
# is Mon 03-10 17:30; the 黄牌 is due one working day before, at Fri 03-07 17:30 (over the weekend).
ACCEPTED = "2036-03-03T10:00:00+08:00"
DEADLINE = "2036-03-10T17:30:00+08:00"


async def _warnings(case_id: int) -> list[OutboxEvent]:
    return await OutboxEvent.filter(aggregate=f"case:{case_id}", kind__in=("case.deadline_warning", "case.overdue")) \
        .order_by("id")


class TestWarnings:
    async def test_the_yellow_card_comes_once_at_its_point_and_the_red_card_once_after_the_deadline(
            self, client, capsys, frozen_clock):
        frozen_clock(ACCEPTED)
        office = await make_office(reviewers=2, promised_days=5)
        citizen = await real_name_citizen(client, capsys)
        case = await declare(client, citizen, office.item.code)
        resting = await declare(client, citizen, office.item.code)
        clerk = await office.staff(client, "window_clerk")
        lead = await office.staff(client, "approver")
        pending = [await office.staff(client, "approver", d.code) for d in office.others]
        reviewer_clerk = await office.staff(client, "window_clerk", office.others[0].code)
        for made in (case, resting):
            assert (await moved(client, clerk, made, "accept"))["deadline"] == DEADLINE
        await moved(client, lead, case, "decide-step", decision="approve")     # the lead's step is done
        await moved(client, lead, resting, "pause", reason="听证")             # its clock stands still
        rt = client.rt

        frozen_clock("2036-03-07T17:29:00+08:00")
        await watch_deadlines(rt)
        assert await _warnings(case["id"]) == []

        frozen_clock("2036-03-07T17:30:00+08:00")
        await watch_deadlines(rt)
        (yellow,) = await _warnings(case["id"])
        assert yellow.kind == "case.deadline_warning"
        assert yellow.payload["receipt"] == case["receipt"] and yellow.payload["item"] == office.item.code
        assert at(yellow.payload["deadline"]) == at(DEADLINE)
        # whom it concerns: the approvers of the departments still to decide, not the lead's (done) nor a clerk
        assert {p["id"] for p in pending} <= set(yellow.payload["staff"])
        assert lead["id"] not in yellow.payload["staff"] and reviewer_clerk["id"] not in yellow.payload["staff"]
        await watch_deadlines(rt)
        frozen_clock("2036-03-10T17:29:00+08:00")
        await watch_deadlines(rt)
        assert [e.id for e in await _warnings(case["id"])] == [yellow.id]

        frozen_clock("2036-03-10T17:31:00+08:00")
        await watch_deadlines(rt)
        await watch_deadlines(rt)
        warned = await _warnings(case["id"])
        assert [e.kind for e in warned] == ["case.deadline_warning", "case.overdue"]
        assert {p["id"] for p in pending} <= set(warned[1].payload["staff"])
        assert await _warnings(resting["id"]) == []
        staff_view = await client.get(f"/api/v1/staff/cases/{case['id']}",
                                      headers=bearer(await office.staff(client, "window_clerk")))
        assert staff_view.json()["clock"]["warning"] == "red"

    async def test_a_case_paused_at_the_yellow_point_gets_no_card_and_its_resume_moves_the_point(
            self, client, capsys, frozen_clock):
        # April 2036: Tue 04-01 accepted, 2 working days: Wed 02, Thu 03; the yellow point Wed 04-02 17:30
        frozen_clock("2036-04-01T10:00:00+08:00")
        office = await make_office(reviewers=0, promised_days=2)
        citizen = await real_name_citizen(client, capsys)
        case = await declare(client, citizen, office.item.code)
        await moved(client, await office.staff(client, "window_clerk"), case, "accept")
        await moved(client, await office.staff(client, "approver"), case, "pause", reason="现场勘验")
        frozen_clock("2036-04-03T17:31:00+08:00")
        await watch_deadlines(client.rt)
        assert await _warnings(case["id"]) == []
        # resumed on Thu 04-03: Wed 02 and Thu 03 were paused, so the deadline is Mon 04-07 (Fri 04, Mon 07)
        resumed = await moved(client, await office.staff(client, "approver"), case, "resume")
        assert resumed["deadline"] == "2036-04-07T17:30:00+08:00"
        await watch_deadlines(client.rt)
        assert await _warnings(case["id"]) == []
        frozen_clock("2036-04-04T17:30:00+08:00")
        await watch_deadlines(client.rt)
        assert [e.kind for e in await _warnings(case["id"])] == ["case.deadline_warning"]

    async def test_a_yellow_card_is_taken_back_when_a_pause_moves_the_deadline_away_and_comes_again_later(
            self, client, capsys, frozen_clock):
        # July 2036: Tue 07-01 accepted, 2 working days: the deadline Thu 07-03 17:30, yellow Wed 07-02 17:30
        frozen_clock("2036-07-01T10:00:00+08:00")
        office = await make_office(reviewers=0, promised_days=2)
        citizen = await real_name_citizen(client, capsys)
        case = await declare(client, citizen, office.item.code)
        await moved(client, await office.staff(client, "window_clerk"), case, "accept")
        frozen_clock("2036-07-02T17:45:00+08:00")
        await watch_deadlines(client.rt)
        assert [e.kind for e in await _warnings(case["id"])] == ["case.deadline_warning"]
        lead = await office.staff(client, "approver")
        assert (await moved(client, lead, case, "pause", reason="听证"))["clock"]["warning"] == "yellow"
        # resumed Mon 07-07 09:00: Thu 03, Fri 04 and Mon 07 were paused, 2 + 3 working days end Tue 07-08
        frozen_clock("2036-07-07T09:00:00+08:00")
        resumed = await moved(client, await office.staff(client, "approver"), case, "resume")
        assert resumed["deadline"] == "2036-07-08T17:30:00+08:00" and resumed["clock"]["warning"] == "none"
        await watch_deadlines(client.rt)
        assert len(await _warnings(case["id"])) == 1
        frozen_clock("2036-07-07T17:30:00+08:00")
        await watch_deadlines(client.rt)
        warned = await _warnings(case["id"])
        assert [e.kind for e in warned] == ["case.deadline_warning"] * 2
        assert at(warned[1].payload["deadline"]) == at("2036-07-08T17:30:00+08:00")

    async def test_supervisors_of_the_hall_list_the_warned_cases_and_no_one_else_does(
            self, client, capsys, frozen_clock):
        # May 2036: Mon 05-05 accepted, 1 working day: the deadline Tue 05-06 17:30, yellow Mon 05-05 17:30
        frozen_clock("2036-05-05T10:00:00+08:00")
        office = await make_office(reviewers=1, promised_days=1)
        citizen = await real_name_citizen(client, capsys)
        case = await declare(client, citizen, office.item.code)
        quiet = await declare(client, citizen, office.item.code)
        clerk = await office.staff(client, "window_clerk")
        await moved(client, clerk, case, "accept")
        frozen_clock("2036-05-05T17:45:00+08:00")
        await watch_deadlines(client.rt)
        supervisor = await staff_tokens(client, Grant("supervisor", hall=office.hall.code))
        county = await staff_tokens(client, Grant("supervisor", hall="150921"))    # the county above the hall
        elsewhere = await staff_tokens(client, Grant("supervisor", hall="150922"))   # another county
        listed = await client.get("/api/v1/supervision/warnings", headers=bearer(supervisor))
        assert listed.status_code == 200, listed.text
        (item,) = listed.json()["items"]
        assert item["case"]["id"] == case["id"] and item["level"] == "yellow"
        assert item["pending_departments"] == sorted(office.departments)
        assert quiet["id"] not in [i["case"]["id"] for i in listed.json()["items"]]
        above = await client.get("/api/v1/supervision/warnings", headers=bearer(county))
        assert case["id"] in [i["case"]["id"] for i in above.json()["items"]]
        other = await client.get("/api/v1/supervision/warnings", headers=bearer(elsewhere))
        assert case["id"] not in [i["case"]["id"] for i in other.json()["items"]]
        clerk = await office.staff(client, "window_clerk")
        problem(await client.get("/api/v1/supervision/warnings", headers=bearer(clerk)), 403, "forbidden_role")

        frozen_clock("2036-05-06T17:31:00+08:00")
        await watch_deadlines(client.rt)
        supervisor = await staff_tokens(client, Grant("supervisor", hall=office.hall.code))
        red = await client.get("/api/v1/supervision/warnings", headers=bearer(supervisor), params={"level": "red"})
        assert [(i["case"]["id"], i["level"]) for i in red.json()["items"]] == [(case["id"], "red")]
        yellow = await client.get("/api/v1/supervision/warnings", headers=bearer(supervisor),
                                  params={"level": "yellow"})
        assert yellow.json()["items"] == []
