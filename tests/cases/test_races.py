"""Moves of one application at the same moment, as truly concurrent requests to the running server. Only
PostgreSQL's row locks can show these (SQLite runs one writer at a time): the PostgreSQL run has them."""
from __future__ import annotations

import asyncio

import pytest

from backend.cases.models import Case, CaseHistory, CaseStep, ReceiptCounter
from backend.kit.auth import Grant
from backend.kit.identity import mod11_2_check_char
from tests.cases.conftest import CITY, act, declare, declare_permit, make_office, moved
from tests.factories import bearer, real_name_citizen, real_name_citizens, staff_tokens

pytestmark = pytest.mark.postgres_only


class TestDecideStepAtOnce:
    @pytest.mark.parametrize("named", [True, False])
    async def test_two_approvers_of_one_department_deciding_its_step_at_once_one_wins_one_is_told(
            self, client, capsys, named):
        citizen = await real_name_citizen(client, capsys)
        case = await declare_permit(client, citizen)
        clerk = await staff_tokens(client, Grant("window_clerk", hall=CITY, department="zjw"))
        await moved(client, clerk, case, "accept")
        approvers = [await staff_tokens(client, Grant("approver", hall=CITY, department="rfb")) for _ in range(2)]
        department = {"department": "rfb"} if named else {}
        answers = await asyncio.gather(
            act(client, approvers[0], case, "decide-step", decision="approve", **department),
            act(client, approvers[1], case, "decide-step", decision="reject", **department))
        assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
        (lost,) = [a for a in answers if a.status_code == 409]
        assert lost.json()["code"] == "case_step_decided"
        (won,) = [index for index, a in enumerate(answers) if a.status_code == 200]
        step = await CaseStep.get(case_id=case["id"], department_code="rfb")
        assert (step.status, step.decided_by) == (("approved", "rejected")[won], approvers[won]["id"])
        assert lost.json()["step_status"] == step.status
        assert await CaseHistory.filter(case_id=case["id"], action="decide_step").count() == 1


class TestReceiptsAtOnce:
    async def test_thirty_declarations_at_once_in_one_hall_get_thirty_gapless_numbers(self, client, capsys):
        office = await make_office(reviewers=0)
        citizens = await real_name_citizens(client, capsys, 30)
        answers = await asyncio.gather(*(client.post("/api/v1/cases", headers=bearer(citizen),
                                                     json={"service_item": office.item.code})
                                         for citizen in citizens))
        assert [a.status_code for a in answers] == [201] * 30, [a.text for a in answers if a.status_code != 201]
        receipts = [a.json()["receipt"] for a in answers]
        assert len(set(receipts)) == 30
        prefix = office.hall.code
        assert {r[:len(prefix)] for r in receipts} == {prefix}
        days = {r[len(prefix):len(prefix) + 6] for r in receipts}
        assert len(days) == 1                       # one business date (yymmdd)
        assert sorted(int(r[len(prefix) + 6:-1]) for r in receipts) == list(range(1, 31))
        assert all(mod11_2_check_char(r[:-1]) == r[-1] for r in receipts)
        (counter,) = await ReceiptCounter.filter(hall_code=prefix)
        assert counter.last_seq == 30
        assert sorted(await Case.filter(hall_code=prefix).values_list("receipt", flat=True)) == sorted(receipts)


class TestAcceptAtOnce:
    async def test_five_clerks_accepting_one_case_at_once_one_accepts_the_rest_are_told_409(self, client, capsys):
        office = await make_office(reviewers=2)
        citizen = await real_name_citizen(client, capsys)
        case = await declare(client, citizen, office.item.code)
        clerks = [await office.staff(client, "window_clerk") for _ in range(5)]
        answers = await asyncio.gather(*(act(client, clerk, case, "accept") for clerk in clerks))
        assert sorted(a.status_code for a in answers) == [200] + [409] * 4, [a.text for a in answers]
        assert {a.json()["code"] for a in answers if a.status_code == 409} == {"case_move_not_allowed"}
        assert await CaseStep.filter(case_id=case["id"]).count() == 3
        assert await CaseHistory.filter(case_id=case["id"], action="accept").count() == 1
        assert (await Case.get(id=case["id"])).status == "accepted"
