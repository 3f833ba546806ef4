"""The life of an application (办件) through the HTTP API of the running server: declaring online and at
the window, intake, the parallel review of three departments (并联审批) in any order, the lead's
decision, the certificate and its collection, and every way a case ends early. Each move leaves one
history row and, when the status changes, one domain event; a refused move leaves nothing."""
from __future__ import annotations

import itertools

import pytest

from backend.cases.models import Case, CaseHistory, CaseStep, ReceiptCounter
from backend.cases.receipts import parse_receipt
from backend.kit.auth import Grant
from backend.kit.identity import mod11_2_check_char
from backend.kit.models import OutboxEvent
from tests.cases.conftest import (
    CITY, PERMIT, PERMIT_DEPARTMENTS, act, declare, declare_permit, enterprise, event_kinds, events, history,
    make_office, moved, new_uscc, permit_form, problem,
)
from tests.factories import bearer, login_citizen, new_id_number, new_phone, real_name_citizen, staff_tokens

LABEL = {"zh": "牲畜头数", "mn": "ᠮᠠᠯ", "en": "Head of livestock"}
HERD_FORM = [
    {"name": "herd_size", "type": "integer", "label": LABEL, "required": True, "min": 1, "max": 100000},
    {"name": "contact_phone", "type": "phone", "label": LABEL, "required": True},
]


async def identified_citizen(client, capsys, name: str = "乌云其木格") -> dict:
    """A real-name citizen whose clear name, ID number and phone the test knows (to look for them)."""
    tokens = await login_citizen(client, capsys)
    id_number = new_id_number()
    patched = await client.patch("/api/v1/me", headers=bearer(tokens), json={"name": name, "id_number": id_number})
    assert patched.status_code == 200, patched.text
    return {**tokens, "name": name, "id_number": id_number}


def _payload_names(event: OutboxEvent, case: dict, citizen_id: int) -> None:
    assert event.payload["case"] == case["id"] and event.payload["citizen"] == citizen_id
    assert event.payload["receipt"] == case["receipt"] and event.payload["item"] == case["service_item"]["code"]


class TestDeclare:
    async def test_a_real_name_citizen_gets_a_receipt_one_timeline_row_and_everything_personal_masked(
            self, client, capsys):
        citizen = await identified_citizen(client, capsys)
        office = await make_office(reviewers=0, form=HERD_FORM)
        response = await client.post("/api/v1/cases", headers=bearer(citizen), json={
            "service_item": office.item.code, "form": {"herd_size": 120, "contact_phone": "13904745678"}})
        assert response.status_code == 201, response.text
        case = response.json()
        assert parse_receipt(case["receipt"]) == case["receipt"]
        assert case["receipt"].startswith(office.hall.code)
        assert case["status"] == "submitted" and case["deadline"] is None and case["steps"] == []
        assert case["clock"]["state"] == "not_started"
        assert [(row["action"], row["from_status"], row["to_status"]) for row in case["timeline"]] == [
            ("submit", None, "submitted")]
        assert case["timeline"][0]["actor"] is None          # who did what is for staff answers
        assert case["applicant"] == {"kind": "person", "name": "乌****",
                                     "id_number": citizen["id_number"][:3] + "*" * 11 + citizen["id_number"][-4:],
                                     "enterprise_name": None, "enterprise_uscc": None}
        assert case["form"] == {"herd_size": 120, "contact_phone": "139****5678"}
        for clear in (citizen["name"], citizen["id_number"], citizen["phone"], "13904745678"):
            assert clear not in response.text
        stored = await Case.get(id=case["id"])
        assert "13904745678" not in str(stored.form) and citizen["name"] not in stored.applicant_name_enc
        (event,) = await events(case["id"])
        assert event.kind == "case.submitted" and event.payload["to"] == "submitted"

    async def test_a_citizen_without_a_real_name_is_refused_403(self, client, capsys):
        citizen = await login_citizen(client, capsys)
        office = await make_office(reviewers=0)
        response = await client.post("/api/v1/cases", headers=bearer(citizen), json={"service_item": office.item.code})
        problem(response, 403, "real_name_required")

    async def test_an_item_not_offered_online_is_422(self, client, capsys):
        citizen = await real_name_citizen(client, capsys)
        office = await make_office(reviewers=0, online=False)
        response = await client.post("/api/v1/cases", headers=bearer(citizen), json={"service_item": office.item.code})
        problem(response, 422, "online_declaration_not_offered")
        assert not await Case.exists(item_code=office.item.code)

    @pytest.mark.parametrize(("form", "errors"), [
        ({"herd_size": 12, "contact_phone": "13904745678", "colour": "white"}, {("form.colour", "form_field_unknown")}),
        ({"herd_size": 12}, {("form.contact_phone", "form_field_required")}),
        ({}, {("form.herd_size", "form_field_required"), ("form.contact_phone", "form_field_required")}),
        ({"herd_size": 0, "contact_phone": "12345"}, {("form.herd_size", "field.range"),
                                                      ("form.contact_phone", "field.phone")}),
    ])
    async def test_unknown_or_missing_form_fields_are_422_invalid_form_and_nothing_is_written(
            self, client, capsys, form, errors):
        citizen = await real_name_citizen(client, capsys)
        office = await make_office(reviewers=0, form=HERD_FORM)
        events_before = await OutboxEvent.filter(kind="case.submitted").count()
        response = await client.post("/api/v1/cases", headers=bearer(citizen),
                                     json={"service_item": office.item.code, "form": form})
        body = problem(response, 422, "invalid_form")
        assert {(e["field"], e["code"]) for e in body["errors"]} == errors
        assert not await Case.exists(hall_code=office.hall.code)
        assert not await ReceiptCounter.exists(hall_code=office.hall.code)
        assert await OutboxEvent.filter(kind="case.submitted").count() == events_before
        # the same citizen's right form then gets the hall's first number of the day
        good = await declare(client, citizen, office.item.code, form={"herd_size": 12, "contact_phone": "13904745678"})
        assert good["receipt"][len(office.hall.code) + 6:-1] == "00001"

    @pytest.mark.parametrize(("mistake", "code"), [("check", "field.uscc_check"), ("short", "field.uscc"),
                                                    ("letter_i", "field.uscc")])
    async def test_an_enterprise_with_a_bad_credit_code_is_422(self, client, capsys, mistake, code):
        right = new_uscc()
        uscc = {"check": right[:17] + ("0" if right[17] != "0" else "1"), "short": right[:17] + " ",
                "letter_i": right[:16] + "I" + right[17]}[mistake]
        citizen = await real_name_citizen(client, capsys)
        response = await client.post("/api/v1/cases", headers=bearer(citizen), json={
            "service_item": PERMIT, "form": permit_form(), "applicant": enterprise(uscc)})
        body = problem(response, 422, "validation_failed")
        assert [(e["field"], e["code"]) for e in body["errors"]] == [("applicant.uscc", code)]
        mine = await client.get("/api/v1/cases", headers=bearer(citizen))
        assert mine.json()["total"] == 0

    async def test_an_enterprise_applicant_is_offered_again_in_my_enterprises(self, client, capsys):
        citizen = await real_name_citizen(client, capsys)
        uscc = new_uscc()
        case = await declare(client, citizen, PERMIT, form=permit_form(), applicant=enterprise(uscc, "草原测试建筑公司"))
        assert case["applicant"]["kind"] == "enterprise" and case["applicant"]["enterprise_uscc"] == uscc
        offered = await client.get("/api/v1/me/enterprises", headers=bearer(citizen))
        assert offered.status_code == 200, offered.text
        assert [(e["name"], e["uscc"]) for e in offered.json()["items"]] == [("草原测试建筑公司", uscc)]
        stranger = await real_name_citizen(client, capsys)
        assert (await client.get("/api/v1/me/enterprises", headers=bearer(stranger))).json()["items"] == []

    async def test_an_enterprise_only_item_refuses_a_person_applicant(self, client, capsys):
        citizen = await real_name_citizen(client, capsys)
        response = await client.post("/api/v1/cases", headers=bearer(citizen),
                                     json={"service_item": PERMIT, "form": permit_form()})
        problem(response, 422, "enterprise_required")

    async def test_the_daily_declaration_limit_counts_each_declaration(self, app_with, capsys):
        tight = await app_with(cases={"declarations_per_citizen_per_day": 2})
        office = await make_office(reviewers=0)
        async with tight.client() as client:
            citizen = await real_name_citizen(client, capsys)
            for _ in range(2):
                await declare(client, citizen, office.item.code)
            third = await client.post("/api/v1/cases", headers=bearer(citizen),
                                      json={"service_item": office.item.code})
            problem(third, 429, "rate_limited")
            assert await Case.filter(item_code=office.item.code).count() == 2


class TestMyCases:
    async def test_my_cases_newest_first_and_one_by_id(self, client, capsys):
        citizen = await real_name_citizen(client, capsys)
        office = await make_office(reviewers=0)
        made = [await declare(client, citizen, office.item.code) for _ in range(3)]
        listed = await client.get("/api/v1/cases", headers=bearer(citizen))
        assert listed.status_code == 200
        assert [c["id"] for c in listed.json()["items"]] == [c["id"] for c in reversed(made)]
        assert listed.json()["total"] == 3
        one = await client.get(f"/api/v1/cases/{made[1]['id']}", headers=bearer(citizen))
        assert one.status_code == 200 and one.json()["receipt"] == made[1]["receipt"]

    async def test_another_citizens_case_is_404_as_if_it_did_not_exist(self, client, capsys):
        owner, other = await real_name_citizen(client, capsys), await real_name_citizen(client, capsys)
        office = await make_office(reviewers=0)
        case = await declare(client, owner, office.item.code)
        problem(await client.get(f"/api/v1/cases/{case['id']}", headers=bearer(other)), 404, "case_not_found")
        problem(await client.post(f"/api/v1/cases/{case['id']}/withdraw", headers=bearer(other), json={}),
                404, "case_not_found")
        assert (await client.get("/api/v1/cases", headers=bearer(other))).json()["items"] == []
        assert (await Case.get(id=case["id"])).status == "submitted"


class TestWindowRegistration:
    async def test_a_clerk_of_the_lead_department_registers_and_the_citizen_sees_it_after_login(
            self, client, capsys):
        office = await make_office(reviewers=1)
        clerk = await office.staff(client, "window_clerk")
        phone, id_number = new_phone(), new_id_number()
        response = await client.post("/api/v1/staff/cases", headers=bearer(clerk), json={
            "service_item": office.item.code, "citizen": {"name": "敖其尔", "id_number": id_number, "phone": phone}})
        assert response.status_code == 201, response.text
        case = response.json()
        assert case["channel"] == "window" and case["submitted_by"] == "window" and case["status"] == "submitted"
        assert [(r.actor, r.action) for r in await history(case["id"])] == [(f"staff:{clerk['id']}", "submit")]
        assert id_number not in response.text and phone not in response.text
        staff_view = await client.get(f"/api/v1/staff/cases/{case['id']}", headers=bearer(clerk))
        assert staff_view.status_code == 200 and staff_view.json()["applicant"]["name"] == "敖**"
        assert id_number not in staff_view.text and phone not in staff_view.text and "敖其尔" not in staff_view.text
        citizen = await login_citizen(client, capsys, phone=phone)
        mine = await client.get("/api/v1/cases", headers=bearer(citizen))
        assert [c["id"] for c in mine.json()["items"]] == [case["id"]]
        assert (await client.get(f"/api/v1/cases/{case['id']}", headers=bearer(citizen))).status_code == 200

    @pytest.mark.parametrize("where", ["another_hall", "another_department"])
    async def test_a_clerk_outside_the_lead_department_is_403(self, client, where):
        office = await make_office(reviewers=1)
        if where == "another_hall":
            clerk = await staff_tokens(client, Grant("window_clerk", hall="150921", department="150921-ga"))
        else:   # a reviewing department's clerk: intake is the lead's
            clerk = await office.staff(client, "window_clerk", office.others[0].code)
        response = await client.post("/api/v1/staff/cases", headers=bearer(clerk), json={
            "service_item": office.item.code,
            "citizen": {"name": "敖其尔", "id_number": new_id_number(), "phone": new_phone()}})
        problem(response, 403, "out_of_scope")
        assert not await Case.exists(item_code=office.item.code)


def _answer(field: dict):
    """What an applicant would type into a required field of a form the app renders from the catalogue."""
    kind = field["type"]
    if kind in ("choice", "multi_choice"):
        first = field["choices"][0]["value"]
        return first if kind == "choice" else [first]
    return {"text": "测试", "textarea": "测试内容", "integer": field.get("min", 1), "decimal": str(field.get("min", 1)),
            "date": "2099-01-01", "boolean": True, "phone": "13904741234"}[kind]


def _last(rows: list[CaseHistory]) -> tuple:
    row = rows[-1]
    return row.actor, row.action, row.from_status, row.to_status, row.department_code, row.comment


class TestParallelApproval:
    """并联审批 of 施工许可 (zjw.XK007): zjw leads, rfb and qxj review at the same time."""

    @pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
    async def test_three_departments_decide_in_any_order_then_approve_issue_and_collect(
            self, client, capsys, order):
        citizen = await real_name_citizen(client, capsys)
        me = (await client.get("/api/v1/me", headers=bearer(citizen))).json()["id"]
        case = await declare_permit(client, citizen)
        clerk = await staff_tokens(client, Grant("window_clerk", hall=CITY, department="zjw"))
        approvers = {code: await staff_tokens(client, Grant("approver", hall=CITY, department=code))
                     for code in PERMIT_DEPARTMENTS}
        lead = approvers["zjw"]

        accepted = await moved(client, clerk, case, "accept", comment="材料齐全")
        assert accepted["status"] == "accepted" and accepted["deadline"] is not None
        assert accepted["clock"]["state"] == "running"
        assert [(s["department"]["code"], s["lead"], s["status"]) for s in accepted["steps"]] == [
            ("zjw", True, "pending"), ("rfb", False, "pending"), ("qxj", False, "pending")]
        rows = await history(case["id"])
        assert len(rows) == 2 and _last(rows) == (f"staff:{clerk['id']}", "accept", "submitted", "accepted", None,
                                                  "材料齐全")
        assert await event_kinds(case["id"]) == ["case.submitted", "case.accepted"]

        for position, index in enumerate(order):
            code = PERMIT_DEPARTMENTS[index]
            decided = await moved(client, approvers[code], case, "decide-step", decision="approve",
                                  comment=f"{code} 同意")
            assert decided["status"] == "in_review"
            assert {s["department"]["code"]: s["status"] for s in decided["steps"]}[code] == "approved"
            rows = await history(case["id"])
            assert len(rows) == 3 + position
            assert _last(rows) == (f"staff:{approvers[code]['id']}", "decide_step",
                                   "accepted" if position == 0 else "in_review", "in_review", code, f"{code} 同意")
            # the status changes (and is told) once, on the first decided step
            assert await event_kinds(case["id"]) == ["case.submitted", "case.accepted", "case.in_review"]

        approved = await moved(client, lead, case, "decide", decision="approve", comment="准予许可")
        assert approved["status"] == "approved" and approved["decided_at"] is not None
        assert approved["clock"]["state"] == "stopped"
        issued = await moved(client, clerk, case, "issue-certificate")
        assert issued["status"] == "certificate_issued"
        collected = await moved(client, clerk, case, "deliver", method="collected", comment="本人领取")
        assert collected["status"] == "collected"

        rows = await history(case["id"])
        assert [(r.action, r.from_status, r.to_status) for r in rows[-3:]] == [
            ("decide", "in_review", "approved"), ("issue_certificate", "approved", "certificate_issued"),
            ("deliver", "certificate_issued", "collected")]
        assert len(rows) == 8 and all(r.at is not None for r in rows)
        told = await events(case["id"])
        assert [e.kind for e in told] == ["case.submitted", "case.accepted", "case.in_review", "case.approved",
                                          "case.certificate_ready", "case.collected"]
        for event in told:
            _payload_names(event, case, me)
        seen = (await client.get(f"/api/v1/cases/{case['id']}", headers=bearer(citizen))).json()
        assert seen["status"] == "collected" and seen["next_action"] == "none" and len(seen["timeline"]) == 8

    @pytest.mark.parametrize(("item", "departments"), [(PERMIT, ["zjw", "rfb", "qxj"]),
                                                       ("fgw.XK014", ["fgw", "gtj", "ghj", "hbj"])])
    async def test_a_form_filled_from_the_items_own_definition_is_accepted_into_a_step_per_department_lead_first(
            self, client, capsys, item, departments):
        detail = await client.get(f"/api/v1/service-items/{item}")
        assert detail.status_code == 200, detail.text
        form = {field["name"]: _answer(field) for field in detail.json()["form"] if field["required"]}
        citizen = await real_name_citizen(client, capsys)
        case = await declare(client, citizen, item, form=form, applicant=enterprise())
        clerk = await staff_tokens(client, Grant("window_clerk", hall=CITY, department=departments[0]))
        accepted = await moved(client, clerk, case, "accept")
        assert [(s["department"]["code"], s["lead"]) for s in accepted["steps"]] == [
            (code, code == departments[0]) for code in departments]
        assert accepted["review_kind"] == "并联审批"

    async def test_a_rejected_step_lets_the_lead_deny_at_once_and_closes_the_pending_steps(self, client, capsys):
        citizen = await real_name_citizen(client, capsys)
        case = await declare_permit(client, citizen)
        clerk = await staff_tokens(client, Grant("window_clerk", hall=CITY, department="zjw"))
        rfb = await staff_tokens(client, Grant("approver", hall=CITY, department="rfb"))
        lead = await staff_tokens(client, Grant("approver", hall=CITY, department="zjw"))
        await moved(client, clerk, case, "accept")
        await moved(client, rfb, case, "decide-step", decision="reject", comment="人防面积不足")
        denied = await moved(client, lead, case, "decide", decision="deny", comment="人防审查未通过")
        assert denied["status"] == "denied"
        assert {s["department"]["code"]: s["status"] for s in denied["steps"]} == {
            "zjw": "closed", "rfb": "rejected", "qxj": "closed"}
        assert (await event_kinds(case["id"]))[-1] == "case.denied"
        assert _last(await history(case["id"]))[1:4] == ("decide", "in_review", "denied")

    @pytest.mark.parametrize(("reject", "decision", "code"), [
        (True, "approve", "case_steps_not_approved"),     # a rejected step
        (False, "approve", "case_steps_not_approved"),    # steps still pending
        (False, "deny", "case_steps_pending"),            # nothing rejected and steps pending: not yet
    ])
    async def test_a_decision_the_steps_do_not_allow_is_409_and_changes_nothing(
            self, client, capsys, reject, decision, code):
        citizen = await real_name_citizen(client, capsys)
        case = await declare_permit(client, citizen)
        clerk = await staff_tokens(client, Grant("window_clerk", hall=CITY, department="zjw"))
        lead = await staff_tokens(client, Grant("approver", hall=CITY, department="zjw"))
        rfb = await staff_tokens(client, Grant("approver", hall=CITY, department="rfb"))
        await moved(client, clerk, case, "accept")
        await moved(client, lead, case, "decide-step", decision="approve")
        await moved(client, rfb, case, "decide-step", decision="reject" if reject else "approve")
        rows, told = len(await history(case["id"])), await event_kinds(case["id"])
        problem(await act(client, lead, case, "decide", decision=decision), 409, code)
        assert (await Case.get(id=case["id"])).status == "in_review"
        assert len(await history(case["id"])) == rows and await event_kinds(case["id"]) == told

    async def test_an_approver_of_a_department_not_in_the_case_gets_404_it_cannot_read_the_case(
            self, client, capsys):
        # 404, not 403: a department with no step in the case (gaj) may not even learn that the case exists
        citizen = await real_name_citizen(client, capsys)
        case = await declare_permit(client, citizen)
        clerk = await staff_tokens(client, Grant("window_clerk", hall=CITY, department="zjw"))
        await moved(client, clerk, case, "accept")
        outsider = await staff_tokens(client, Grant("approver", hall=CITY, department="gaj"))
        for body in ({"decision": "approve"}, {"decision": "approve", "department": "rfb"}):
            problem(await act(client, outsider, case, "decide-step", **body), 404, "case_not_found")
        problem(await client.get(f"/api/v1/staff/cases/{case['id']}", headers=bearer(outsider)), 404, "case_not_found")
        assert await CaseStep.filter(case_id=case["id"], status="pending").count() == 3

    async def test_an_approver_of_one_department_deciding_another_departments_step_is_403(self, client, capsys):
        citizen = await real_name_citizen(client, capsys)
        case = await declare_permit(client, citizen)
        clerk = await staff_tokens(client, Grant("window_clerk", hall=CITY, department="zjw"))
        await moved(client, clerk, case, "accept")
        rfb = await staff_tokens(client, Grant("approver", hall=CITY, department="rfb"))
        rows = len(await history(case["id"]))
        problem(await act(client, rfb, case, "decide-step", decision="approve", department="qxj"), 403, "out_of_scope")
        assert await CaseStep.filter(case_id=case["id"], status="pending").count() == 3
        assert len(await history(case["id"])) == rows

    async def test_deciding_a_step_already_decided_is_409_case_step_decided(self, client, capsys):
        citizen = await real_name_citizen(client, capsys)
        case = await declare_permit(client, citizen)
        clerk = await staff_tokens(client, Grant("window_clerk", hall=CITY, department="zjw"))
        await moved(client, clerk, case, "accept")
        first = await staff_tokens(client, Grant("approver", hall=CITY, department="qxj"))
        second = await staff_tokens(client, Grant("approver", hall=CITY, department="qxj"))
        await moved(client, first, case, "decide-step", decision="approve")
        rows = len(await history(case["id"]))
        for body in ({"decision": "reject"}, {"decision": "reject", "department": "qxj"}):
            problem(await act(client, second, case, "decide-step", **body), 409, "case_step_decided")
        assert (await CaseStep.get(case_id=case["id"], department_code="qxj")).status == "approved"
        assert len(await history(case["id"])) == rows


class TestIntake:
    async def test_refusing_at_intake_tells_the_reason(self, client, capsys):
        citizen = await real_name_citizen(client, capsys)
        office = await make_office(reviewers=1)
        case = await declare(client, citizen, office.item.code)
        clerk = await office.staff(client, "window_clerk")
        refused = await moved(client, clerk, case, "refuse", reason="不属于本部门受理范围")
        assert refused["status"] == "refused" and refused["steps"] == [] and refused["deadline"] is None
        seen = (await client.get(f"/api/v1/cases/{case['id']}", headers=bearer(citizen))).json()
        assert seen["timeline"][-1]["comment"] == "不属于本部门受理范围" and seen["next_action"] == "none"
        assert await event_kinds(case["id"]) == ["case.submitted", "case.refused"]
        problem(await act(client, clerk, case, "refuse", reason=""), 422, "validation_failed")

    async def test_a_supplement_at_intake_goes_to_the_citizen_who_resubmits(self, client, capsys):
        citizen = await real_name_citizen(client, capsys)
        office = await make_office(reviewers=1)
        case = await declare(client, citizen, office.item.code)
        clerk = await office.staff(client, "window_clerk")
        asked = await moved(client, clerk, case, "request-supplement", missing=["户口簿复印件"], comment="请补充")
        assert asked["status"] == "supplement_required" and asked["clock"]["state"] == "not_started"
        seen = (await client.get(f"/api/v1/cases/{case['id']}", headers=bearer(citizen))).json()
        assert seen["missing"] == ["户口簿复印件"] and seen["next_action"] == "upload_and_resubmit"
        resubmitted = await client.post(f"/api/v1/cases/{case['id']}/resubmit", headers=bearer(citizen), json={})
        assert resubmitted.status_code == 200, resubmitted.text
        assert resubmitted.json()["status"] == "submitted" and resubmitted.json()["missing"] == []
        assert await event_kinds(case["id"]) == ["case.submitted", "case.supplement_required", "case.submitted"]
        accepted = await moved(client, clerk, case, "accept")
        assert accepted["status"] == "accepted"

    async def test_an_instant_item_accepted_with_finish_is_approved_and_counts_as_finished_at_acceptance(
            self, client, capsys):
        citizen = await real_name_citizen(client, capsys)
        office = await make_office(reviewers=0, instant=True, promised_days=0)
        case = await declare(client, citizen, office.item.code)
        clerk = await office.staff(client, "window_clerk")
        finished = await moved(client, clerk, case, "accept", finish=True)
        assert finished["status"] == "approved" and finished["decided_at"] is not None
        assert [s["status"] for s in finished["steps"]] == ["approved"]
        assert (await Case.get(id=case["id"])).finished_at_acceptance is True
        assert [(r.action, r.to_status) for r in await history(case["id"])] == [
            ("submit", "submitted"), ("accept", "accepted"), ("decide", "approved")]
        assert await event_kinds(case["id"]) == ["case.submitted", "case.accepted", "case.approved"]

    async def test_finish_on_an_item_that_is_not_instant_is_422_and_changes_nothing(self, client, capsys):
        citizen = await real_name_citizen(client, capsys)
        office = await make_office(reviewers=1)
        case = await declare(client, citizen, office.item.code)
        clerk = await office.staff(client, "window_clerk")
        problem(await act(client, clerk, case, "accept", finish=True), 422, "not_instant_item")
        stored = await Case.get(id=case["id"])
        assert stored.status == "submitted" and stored.accepted_at is None and not stored.finished_at_acceptance
        assert not await CaseStep.exists(case_id=case["id"])
        assert len(await history(case["id"])) == 1 and await event_kinds(case["id"]) == ["case.submitted"]


class TestWithdraw:
    async def test_the_applicant_withdraws_before_a_decision_and_the_pending_steps_close(self, client, capsys):
        citizen = await real_name_citizen(client, capsys)
        office = await make_office(reviewers=2)
        case = await declare(client, citizen, office.item.code)
        await moved(client, await office.staff(client, "window_clerk"), case, "accept")
        await moved(client, await office.staff(client, "approver", office.others[0].code), case, "decide-step",
                    decision="approve")
        withdrawn = await client.post(f"/api/v1/cases/{case['id']}/withdraw", headers=bearer(citizen),
                                      json={"comment": "不办了"})
        assert withdrawn.status_code == 200, withdrawn.text
        assert withdrawn.json()["status"] == "withdrawn"
        assert sorted(s["status"] for s in withdrawn.json()["steps"]) == ["approved", "closed", "closed"]
        assert (await event_kinds(case["id"]))[-1] == "case.withdrawn"
        assert _last(await history(case["id"]))[1:] == ("withdraw", "in_review", "withdrawn", None, "不办了")

    async def test_withdrawing_after_the_decision_is_409_and_changes_nothing(self, client, capsys):
        citizen = await real_name_citizen(client, capsys)
        office = await make_office(reviewers=0)
        case = await declare(client, citizen, office.item.code)
        clerk, lead = await office.staff(client, "window_clerk"), await office.staff(client, "approver")
        await moved(client, clerk, case, "accept")
        await moved(client, lead, case, "decide-step", decision="approve")
        await moved(client, lead, case, "decide", decision="approve")
        rows, told = len(await history(case["id"])), await event_kinds(case["id"])
        refused = await client.post(f"/api/v1/cases/{case['id']}/withdraw", headers=bearer(citizen), json={})
        problem(refused, 409, "case_move_not_allowed")
        assert (await Case.get(id=case["id"])).status == "approved"
        assert len(await history(case["id"])) == rows and await event_kinds(case["id"]) == told


_APPROVE = {"decision": "approve"}
# the moves (all by the lead department's approver) that bring a one-department case to a status
ROAD_TO = {
    "submitted": [],
    "accepted": [("accept", {})],
    "in_review": [("accept", {}), ("decide-step", _APPROVE)],
    "approved": [("accept", {}), ("decide-step", _APPROVE), ("decide", _APPROVE)],
    "collected": [("accept", {}), ("decide-step", _APPROVE), ("decide", _APPROVE), ("issue-certificate", {}),
                  ("deliver", {"method": "collected"})],
}
# (the staff move, its body, the status the case is brought to first)
ILLEGAL_MOVES = [
    ("issue-certificate", {}, "submitted"),
    ("deliver", {"method": "collected"}, "submitted"),
    ("decide", {"decision": "approve"}, "accepted"),
    ("decide-step", {"decision": "approve"}, "submitted"),
    ("accept", {}, "accepted"),
    ("refuse", {"reason": "太晚了"}, "accepted"),
    ("issue-certificate", {}, "in_review"),
    ("deliver", {"method": "delivered"}, "approved"),
    ("decide-step", {"decision": "approve"}, "approved"),
    ("request-supplement", {"missing": ["x"]}, "approved"),
    ("accept", {}, "collected"),
]


class TestWhoMoves:
    @pytest.mark.parametrize(("action", "body", "status"), [
        ("accept", {}, "submitted"),
        ("refuse", {"reason": "不符合条件"}, "submitted"),
        ("decide", {"decision": "approve"}, "in_review"),
        ("pause", {"reason": "听证"}, "in_review"),
        ("issue-certificate", {}, "approved"),
        ("deliver", {"method": "delivered"}, "certificate_issued"),
    ])
    async def test_the_lead_departments_moves_are_403_to_a_reviewing_departments_approver(
            self, client, capsys, action, body, status):
        citizen = await real_name_citizen(client, capsys)
        office = await make_office(reviewers=1)
        case = await declare(client, citizen, office.item.code)
        lead = await office.staff(client, "approver")
        reviewer = await office.staff(client, "approver", office.others[0].code)
        road = {"submitted": [], "in_review": [("accept", {}), ("decide-step", _APPROVE)],
                "approved": [("accept", {}), ("decide-step", _APPROVE)]}
        for step, step_body in road.get(status, road["approved"]):
            await moved(client, lead, case, step, **step_body)
        if status in ("approved", "certificate_issued"):
            await moved(client, reviewer, case, "decide-step", decision="approve")
            await moved(client, lead, case, "decide", decision="approve")
        if status == "certificate_issued":
            await moved(client, lead, case, "issue-certificate")
        assert (await Case.get(id=case["id"])).status == status
        rows = len(await history(case["id"]))
        # before acceptance the reviewing department has no step: it cannot even read the case
        expected = (404, "case_not_found") if status == "submitted" else (403, "out_of_scope")
        problem(await act(client, reviewer, case, action, **body), *expected)
        assert (await Case.get(id=case["id"])).status == status and len(await history(case["id"])) == rows


class TestIllegalMoves:
    @pytest.mark.parametrize(("action", "body", "status"), ILLEGAL_MOVES)
    async def test_a_move_the_machine_does_not_allow_is_409_and_leaves_history_and_events_alone(
            self, client, capsys, action, body, status):
        citizen = await real_name_citizen(client, capsys)
        office = await make_office(reviewers=0)
        case = await declare(client, citizen, office.item.code)
        lead = await staff_tokens(client, Grant("approver", hall=office.hall.code, department=office.lead.code))
        path = ROAD_TO[status]
        for step, step_body in path:
            await moved(client, lead, case, step, **step_body)
        before = await Case.get(id=case["id"])
        assert before.status == status
        rows, told = len(await history(case["id"])), await event_kinds(case["id"])
        refused = problem(await act(client, lead, case, action, **body), 409, "case_move_not_allowed")
        assert refused["case_status"] == status and refused["action"] == action.replace("-", "_")
        after = await Case.get(id=case["id"])
        assert (after.status, after.updated_at) == (status, before.updated_at)
        assert len(await history(case["id"])) == rows and await event_kinds(case["id"]) == told

    async def test_resubmitting_without_a_supplement_request_is_409(self, client, capsys):
        citizen = await real_name_citizen(client, capsys)
        office = await make_office(reviewers=0)
        case = await declare(client, citizen, office.item.code)
        problem(await client.post(f"/api/v1/cases/{case['id']}/resubmit", headers=bearer(citizen), json={}),
                409, "case_move_not_allowed")
        assert len(await history(case["id"])) == 1


class TestStaffList:
    async def _cases(self, client, capsys, office, count: int) -> list[dict]:
        citizen = await real_name_citizen(client, capsys)
        return [await declare(client, citizen, office.item.code) for _ in range(count)]

    async def test_waiting_lists_exactly_the_cases_with_a_pending_step_of_my_department(self, client, capsys):
        office = await make_office(reviewers=2)
        citizen = await real_name_citizen(client, capsys)
        waiting, decided, submitted, withdrawn = [await declare(client, citizen, office.item.code) for _ in range(4)]
        clerk = await office.staff(client, "window_clerk")
        reviewer_code = office.others[0].code
        reviewer = await office.staff(client, "approver", reviewer_code)
        for case in (waiting, decided, withdrawn):
            await moved(client, clerk, case, "accept")
        await moved(client, reviewer, decided, "decide-step", decision="approve")
        taken_back = await client.post(f"/api/v1/cases/{withdrawn['id']}/withdraw", headers=bearer(citizen), json={})
        assert taken_back.status_code == 200, taken_back.text
        # a case of another hall's departments is not mine either
        elsewhere = await make_office(reviewers=1)
        await self._cases(client, capsys, elsewhere, 1)
        listed = await client.get("/api/v1/staff/cases", headers=bearer(reviewer), params={"waiting": "true"})
        assert listed.status_code == 200, listed.text
        assert [c["id"] for c in listed.json()["items"]] == [waiting["id"]] and listed.json()["total"] == 1
        everything = await client.get("/api/v1/staff/cases", headers=bearer(reviewer))
        assert [c["id"] for c in everything.json()["items"]] == [waiting["id"], decided["id"], withdrawn["id"]]
        intake = await client.get("/api/v1/staff/cases", headers=bearer(clerk))
        assert [c["id"] for c in intake.json()["items"]] == [waiting["id"], decided["id"], submitted["id"],
                                                             withdrawn["id"]]

    async def test_a_clerk_finds_a_case_by_its_receipt_as_typed(self, client, capsys):
        office = await make_office(reviewers=0)
        _, second = await self._cases(client, capsys, office, 2)
        clerk = await office.staff(client, "window_clerk")
        typed = " ".join([second["receipt"][:6], second["receipt"][6:12], second["receipt"][12:].lower()])
        found = await client.get("/api/v1/staff/cases", headers=bearer(clerk), params={"receipt": typed})
        assert found.status_code == 200, found.text
        assert [c["id"] for c in found.json()["items"]] == [second["id"]]
        body = second["receipt"][:-1]
        wrong = body + ("0" if mod11_2_check_char(body) != "0" else "1")
        problem(await client.get("/api/v1/staff/cases", headers=bearer(clerk), params={"receipt": wrong}),
                422, "receipt_mistyped")
        other = await staff_tokens(client, Grant("window_clerk", hall="150921", department="150921-ga"))
        assert (await client.get("/api/v1/staff/cases", headers=bearer(other),
                                 params={"receipt": second["receipt"]})).json()["items"] == []

    async def test_pages_of_a_departments_queue_oldest_first(self, client, capsys):
        office = await make_office(reviewers=0)
        made = await self._cases(client, capsys, office, 5)
        clerk = await office.staff(client, "window_clerk")
        pages = []
        for page in (1, 2, 3):
            listed = await client.get("/api/v1/staff/cases", headers=bearer(clerk),
                                      params={"page": page, "page_size": 2})
            assert listed.json()["total"] == 5 and listed.json()["page"] == page
            pages.append([c["id"] for c in listed.json()["items"]])
        assert pages == [[made[0]["id"], made[1]["id"]], [made[2]["id"], made[3]["id"]], [made[4]["id"]]]

    async def test_overdue_lists_the_running_cases_past_their_deadline(self, client, capsys, frozen_clock):
        # Monday 2036-06-02: 2 working days promised run out on Wednesday 06-04 at 17:30
        frozen_clock("2036-06-02T09:00:00+08:00")
        office = await make_office(reviewers=0, promised_days=2)
        late, decided = await self._cases(client, capsys, office, 2)
        clerk, lead = await office.staff(client, "window_clerk"), await office.staff(client, "approver")
        for case in (late, decided):
            assert (await moved(client, clerk, case, "accept"))["deadline"] == "2036-06-04T17:30:00+08:00"
        await moved(client, lead, decided, "decide-step", decision="approve")
        await moved(client, lead, decided, "decide", decision="approve")
        on_time = (await self._cases(client, capsys, office, 1))[0]
        frozen_clock("2036-06-04T17:31:00+08:00")
        clerk = await office.staff(client, "window_clerk")       # a token of the new time
        await moved(client, clerk, on_time, "accept")
        overdue = await client.get("/api/v1/staff/cases", headers=bearer(clerk), params={"overdue": "true"})
        assert [c["id"] for c in overdue.json()["items"]] == [late["id"]]
        not_overdue = await client.get("/api/v1/staff/cases", headers=bearer(clerk), params={"overdue": "false"})
        assert [c["id"] for c in not_overdue.json()["items"]] == [decided["id"], on_time["id"]]

    async def test_a_paused_case_is_not_overdue_while_its_clock_stands_still(self, client, capsys, frozen_clock):
        # Monday 2036-06-16: 2 working days run out on Wednesday 06-18 at 17:30, unless the clock stops
        frozen_clock("2036-06-16T09:00:00+08:00")
        office = await make_office(reviewers=0, promised_days=2)
        hearing, supplement = await self._cases(client, capsys, office, 2)
        clerk, lead = await office.staff(client, "window_clerk"), await office.staff(client, "approver")
        for case in (hearing, supplement):
            await moved(client, clerk, case, "accept")
        await moved(client, lead, hearing, "pause", reason="听证")
        await moved(client, lead, supplement, "request-supplement", missing=["四至界线图"])
        frozen_clock("2036-06-19T10:00:00+08:00")
        clerk = await office.staff(client, "window_clerk")
        overdue = await client.get("/api/v1/staff/cases", headers=bearer(clerk), params={"overdue": "true"})
        assert overdue.json()["items"] == []
        running = await client.get("/api/v1/staff/cases", headers=bearer(clerk), params={"overdue": "false"})
        assert [c["id"] for c in running.json()["items"]] == [hearing["id"], supplement["id"]]

