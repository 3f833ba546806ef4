"""Conversations over the real API: opening, idempotent sends, assignment and the queue, staff actions,
FAQ, canned answers and the supervision report."""
from __future__ import annotations

import asyncio

import pytest

from backend.consult.models import Conversation, ConversationMessage
from backend.kit.auth import Grant
from tests.consult.conftest import answer, ask, citizen_id, conversation_count, msg_id, online
from tests.factories import bearer, login_citizen, staff_tokens
from tests.rows import make_department, make_item


class TestOpenConversation:
    async def test_a_question_to_a_department_opens_a_conversation_listed_as_mine(self, client, desk, citizen):
        opened = await ask(client, citizen, department=desk.code, text="周六开门吗？")
        conversation = opened["conversation"]
        assert conversation["status"] == "open" and conversation["department"] == desk.code
        assert conversation["hall"] == desk.hall.code and conversation["channel"] == "app"
        assert opened["message"]["text"] == "周六开门吗？" and opened["message"]["sender"] == "citizen"
        assert "hours-weekend" in [entry["id"] for entry in opened["faq"]]
        mine = (await client.get("/api/v1/conversations", headers=bearer(citizen))).json()
        assert [c["id"] for c in mine["items"]] == [conversation["id"]] and mine["total"] == 1
        messages = (await client.get(f"/api/v1/conversations/{conversation['id']}/messages",
                                     headers=bearer(citizen))).json()
        assert [m["text"] for m in messages["items"]] == ["周六开门吗？"] and messages["has_more"] is False

    async def test_a_question_about_a_service_item_goes_to_its_department(self, client, desk, citizen):
        item = await make_item(desk.department)
        opened = await ask(client, citizen, service_item=item.code)
        assert opened["conversation"]["department"] == desk.code
        assert opened["conversation"]["service_item"] == item.code

    async def test_a_question_to_a_hall_alone_goes_to_its_comprehensive_desk(self, client, desk, citizen):
        opened = await ask(client, citizen, hall=desk.hall.code)
        assert opened["conversation"]["department"] == "" and opened["conversation"]["hall"] == desk.hall.code

    async def test_with_nobody_online_it_waits_in_the_queue_and_the_citizen_is_told_the_hours(
            self, client, desk, citizen):
        opened = await ask(client, citizen, department=desk.code)
        assert opened["conversation"]["assignee"] is None
        waiting = opened["waiting"]
        assert waiting["hall"] == desk.hall.code and waiting["open_now"] is True
        assert waiting["hours_workday"] == ["08:30-12:00", "14:30-17:30"]
        assert "08:30-12:00" in waiting["text"] and desk.department.name in waiting["text"]

    async def test_a_retried_opening_answers_the_first_conversation(self, client, desk, citizen):
        first_id = msg_id()
        first = await ask(client, citizen, department=desk.code, client_msg_id=first_id)
        again = await ask(client, citizen, department=desk.code, client_msg_id=first_id)
        assert again["conversation"]["id"] == first["conversation"]["id"]
        assert again["message"]["id"] == first["message"]["id"]
        assert await conversation_count(citizen_id(client, citizen)) == (1, 1)

    @pytest.mark.postgres_only
    async def test_concurrent_retries_of_an_opening_make_one_conversation(self, client, desk, citizen):
        same = msg_id()
        answers = await asyncio.gather(*(client.post(
            "/api/v1/conversations", headers=bearer(citizen),
            json={"department": desk.code, "text": "弱网重试", "client_msg_id": same}) for _ in range(8)))
        assert all(a.status_code == 201 for a in answers), [a.text for a in answers]
        assert len({a.json()["conversation"]["id"] for a in answers}) == 1
        assert await conversation_count(citizen_id(client, citizen)) == (1, 1)

    @pytest.mark.parametrize("body,field", [
        ({"text": ""}, "text"),
        ({"text": "   \n "}, "text"),
        ({"text": "长" * 2001}, "text"),
        ({"text": "bell\x07inside"}, "text"),
        ({"client_msg_id": "short"}, "client_msg_id"),
        ({"department": None, "hall": None}, "$"),
    ])
    async def test_bad_input_is_a_422_and_nothing_is_written(self, client, desk, citizen, body, field):
        response = await client.post("/api/v1/conversations", headers=bearer(citizen),
                                     json={"department": desk.code, "text": "正常的问题", "client_msg_id": msg_id()} | body)
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["code"] == "validation_failed"
        assert field in [e["field"] for e in problem["errors"]] or field == "$"
        assert await conversation_count(citizen_id(client, citizen)) == (0, 0)

    async def test_a_department_of_another_hall_than_the_one_named_is_refused(self, client, desk, citizen):
        response = await client.post("/api/v1/conversations", headers=bearer(citizen), json={
            "department": desk.code, "hall": "150900", "text": "问题", "client_msg_id": msg_id()})
        assert response.status_code == 422 and response.json()["code"] == "consult_department_not_in_hall"
        unknown = await client.post("/api/v1/conversations", headers=bearer(citizen), json={
            "department": "nosuchdept", "text": "问题", "client_msg_id": msg_id()})
        assert unknown.status_code == 404 and unknown.json()["code"] == "department_not_found"
        assert await conversation_count(citizen_id(client, citizen)) == (0, 0)

    async def test_staff_cannot_open_a_conversation(self, client, desk):
        clerk = await desk.staff(client)
        response = await client.post("/api/v1/conversations", headers=bearer(clerk), json={
            "department": desk.code, "text": "问题", "client_msg_id": msg_id()})
        assert response.status_code == 403


class TestSendMessage:
    async def test_a_retried_send_answers_the_first_message(self, client, desk, citizen):
        conversation = (await ask(client, citizen, department=desk.code))["conversation"]["id"]
        body = {"text": "补充一句", "client_msg_id": msg_id()}
        path = f"/api/v1/conversations/{conversation}/messages"
        first = await client.post(path, headers=bearer(citizen), json=body)
        again = await client.post(path, headers=bearer(citizen), json=body)
        assert first.status_code == again.status_code == 201
        assert first.json()["id"] == again.json()["id"]
        assert await ConversationMessage.filter(conversation_id=conversation).count() == 2

    @pytest.mark.postgres_only
    async def test_concurrent_retries_of_a_send_store_one_message(self, client, desk, citizen):
        conversation = (await ask(client, citizen, department=desk.code))["conversation"]["id"]
        body = {"text": "网络不好，重发了很多次", "client_msg_id": msg_id()}
        answers = await asyncio.gather(*(client.post(f"/api/v1/conversations/{conversation}/messages",
                                                     headers=bearer(citizen), json=body) for _ in range(10)))
        assert all(a.status_code == 201 for a in answers), [a.text for a in answers]
        assert len({a.json()["id"] for a in answers}) == 1
        assert await ConversationMessage.filter(conversation_id=conversation, client_msg_id=body["client_msg_id"]).count() == 1

    async def test_another_citizens_conversation_is_not_found(self, client, capsys, desk, citizen):
        conversation = (await ask(client, citizen, department=desk.code))["conversation"]["id"]
        other = await login_citizen(client, capsys)
        for response in (
                await client.get(f"/api/v1/conversations/{conversation}", headers=bearer(other)),
                await client.get(f"/api/v1/conversations/{conversation}/messages", headers=bearer(other)),
                await client.post(f"/api/v1/conversations/{conversation}/messages", headers=bearer(other),
                                  json={"text": "偷看", "client_msg_id": msg_id()})):
            assert response.status_code == 404 and response.json()["code"] == "conversation_not_found"
        assert await ConversationMessage.filter(conversation_id=conversation).count() == 1

    async def test_non_ascii_digits_and_huge_ids_name_no_conversation(self, client, citizen):
        for path in ("/api/v1/conversations/１２", "/api/v1/conversations/٣", f"/api/v1/conversations/{2**63}"):
            response = await client.get(path, headers=bearer(citizen))
            assert response.status_code == 404, (path, response.text)

    async def test_a_citizen_writing_again_reopens_a_resolved_conversation(self, client, desk, citizen):
        clerk = await desk.staff(client)
        conversation = (await ask(client, citizen, department=desk.code))["conversation"]["id"]
        await answer(client, clerk, conversation)
        resolved = await client.post(f"/api/v1/staff/conversations/{conversation}/resolve", headers=bearer(clerk))
        assert resolved.json()["status"] == "resolved" and resolved.json()["resolved_at"]
        again = await client.post(f"/api/v1/conversations/{conversation}/messages", headers=bearer(citizen),
                                  json={"text": "还有一个问题", "client_msg_id": msg_id()})
        assert again.status_code == 201
        now = (await client.get(f"/api/v1/conversations/{conversation}", headers=bearer(citizen))).json()
        assert now["status"] == "open" and now["resolved_at"] is None and now["assignee"] == clerk["id"]


class TestAssignment:
    async def test_a_new_conversation_goes_to_the_least_loaded_online_staff_member(self, client, server, capsys, desk):
        busy, free, offline = await desk.staff(client), await desk.staff(client), await desk.staff(client)
        first_asker = await login_citizen(client, capsys)
        async with online(server, busy):
            taken = await ask(client, first_asker, department=desk.code)
        assert taken["conversation"]["assignee"] == busy["id"] and taken["waiting"] is None
        asker = await login_citizen(client, capsys)
        async with online(server, busy, free):
            opened = await ask(client, asker, department=desk.code)
        assert opened["conversation"]["assignee"] == free["id"]
        assert offline["id"] not in (taken["conversation"]["assignee"], opened["conversation"]["assignee"])

    async def test_online_staff_of_another_department_are_not_given_it(self, client, server, capsys, desk):
        elsewhere = await make_department(desk.hall.code)
        stranger = await staff_tokens(client, Grant("window_clerk", hall=desk.hall.code, department=elsewhere.code))
        asker = await login_citizen(client, capsys)
        async with online(server, stranger):
            opened = await ask(client, asker, department=desk.code)
        assert opened["conversation"]["assignee"] is None and opened["waiting"] is not None

    async def test_a_staff_member_at_the_limit_is_passed_over_for_the_queue(self, client, capsys, app_with, desk):
        tight = await app_with(consult={"max_open_per_staff": 1})
        async with tight.client() as http:
            clerk = await desk.staff(http)
            async with online(tight, clerk):
                first = await ask(http, await login_citizen(http, capsys), department=desk.code)
                second = await ask(http, await login_citizen(http, capsys), department=desk.code)
        assert first["conversation"]["assignee"] == clerk["id"]
        assert second["conversation"]["assignee"] is None and second["waiting"] is not None

    @pytest.mark.postgres_only
    async def test_concurrent_openings_never_push_a_staff_member_past_the_limit(self, client, capsys, app_with, desk):
        tight = await app_with(consult={"max_open_per_staff": 2})
        async with tight.client() as http:
            clerk = await desk.staff(http)
            askers = [await login_citizen(http, capsys) for _ in range(6)]
            async with online(tight, clerk):
                opened = await asyncio.gather(*(ask(http, asker, department=desk.code) for asker in askers))
        assigned = [o for o in opened if o["conversation"]["assignee"] == clerk["id"]]
        assert len(assigned) == 2
        assert await Conversation.filter(assignee_id=clerk["id"]).count() == 2


class TestStaffConversations:
    async def test_staff_see_their_departments_conversations_and_not_others(self, client, desk, citizen):
        clerk = await desk.staff(client)
        elsewhere = await make_department(desk.hall.code)
        stranger = await staff_tokens(client, Grant("window_clerk", hall=desk.hall.code, department=elsewhere.code))
        conversation = (await ask(client, citizen, department=desk.code))["conversation"]["id"]
        listed = (await client.get("/api/v1/staff/conversations", headers=bearer(clerk),
                                   params={"assigned": "none", "status": "open"})).json()
        assert [c["id"] for c in listed["items"]] == [conversation]
        hidden = (await client.get("/api/v1/staff/conversations", headers=bearer(stranger))).json()
        assert conversation not in [c["id"] for c in hidden["items"]]
        for response in (
                await client.get(f"/api/v1/staff/conversations/{conversation}/messages", headers=bearer(stranger)),
                await client.post(f"/api/v1/staff/conversations/{conversation}/claim", headers=bearer(stranger)),
                await client.post(f"/api/v1/staff/conversations/{conversation}/messages", headers=bearer(stranger),
                                  json={"text": "越权", "client_msg_id": msg_id()})):
            assert response.status_code == 403 and response.json()["code"] == "out_of_scope"
        assert await ConversationMessage.filter(conversation_id=conversation).count() == 1

    async def test_a_county_supervisor_sees_the_townships_conversations(self, client, desk, citizen):
        supervisor = await staff_tokens(client, Grant("supervisor", hall="150921"))
        conversation = (await ask(client, citizen, department=desk.code))["conversation"]["id"]
        listed = (await client.get("/api/v1/staff/conversations", headers=bearer(supervisor),
                                   params={"department": desk.code})).json()
        assert [c["id"] for c in listed["items"]] == [conversation]

    async def test_a_citizen_cannot_use_the_staff_endpoints(self, client, citizen):
        assert (await client.get("/api/v1/staff/conversations", headers=bearer(citizen))).status_code == 403


class TestClaim:
    async def test_the_first_claimer_takes_it_and_the_second_is_told_who_has_it(self, client, desk, citizen):
        first, second = await desk.staff(client), await desk.staff(client)
        conversation = (await ask(client, citizen, department=desk.code))["conversation"]["id"]
        taken = await client.post(f"/api/v1/staff/conversations/{conversation}/claim", headers=bearer(first))
        assert taken.status_code == 200 and taken.json()["assignee"] == first["id"]
        again = await client.post(f"/api/v1/staff/conversations/{conversation}/claim", headers=bearer(first))
        assert again.status_code == 200
        late = await client.post(f"/api/v1/staff/conversations/{conversation}/claim", headers=bearer(second))
        assert late.status_code == 409 and late.json()["code"] == "conversation_claimed"

    @pytest.mark.postgres_only
    async def test_of_concurrent_claims_exactly_one_wins(self, client, desk, citizen):
        clerks = [await desk.staff(client) for _ in range(5)]
        conversation = (await ask(client, citizen, department=desk.code))["conversation"]["id"]
        answers = await asyncio.gather(*(client.post(f"/api/v1/staff/conversations/{conversation}/claim",
                                                     headers=bearer(clerk)) for clerk in clerks))
        assert sorted(a.status_code for a in answers) == [200, 409, 409, 409, 409]

    async def test_an_unknown_conversation_is_404(self, client, desk):
        clerk = await desk.staff(client)
        response = await client.post(f"/api/v1/staff/conversations/{2**62}/claim", headers=bearer(clerk))
        assert response.status_code == 404 and response.json()["code"] == "conversation_not_found"


class TestStaffAnswer:
    async def test_an_answer_makes_it_pending_and_the_sender_its_assignee(self, client, desk, citizen):
        clerk = await desk.staff(client)
        conversation = (await ask(client, citizen, department=desk.code))["conversation"]["id"]
        message = await answer(client, clerk, conversation, "请带户口簿。")
        assert message["sender"] == "staff" and message["sender_id"] == clerk["id"]
        now = (await client.get(f"/api/v1/conversations/{conversation}", headers=bearer(citizen))).json()
        assert now["status"] == "pending" and now["assignee"] == clerk["id"] and now["first_answered_at"]
        texts = [m["text"] for m in (await client.get(f"/api/v1/conversations/{conversation}/messages",
                                                      headers=bearer(citizen))).json()["items"]]
        assert texts[-1] == "请带户口簿。"

    async def test_a_resolved_conversation_takes_no_staff_answer(self, client, desk, citizen):
        clerk = await desk.staff(client)
        conversation = (await ask(client, citizen, department=desk.code))["conversation"]["id"]
        await client.post(f"/api/v1/staff/conversations/{conversation}/resolve", headers=bearer(clerk))
        late = await client.post(f"/api/v1/staff/conversations/{conversation}/messages", headers=bearer(clerk),
                                 json={"text": "补充", "client_msg_id": msg_id()})
        assert late.status_code == 409 and late.json()["code"] == "conversation_resolved"
        again = await client.post(f"/api/v1/staff/conversations/{conversation}/resolve", headers=bearer(clerk))
        assert again.status_code == 409


class TestTransfer:
    async def test_to_another_department_it_joins_that_departments_queue(self, client, desk, citizen):
        clerk = await desk.staff(client)
        other = await make_department(desk.hall.code)
        other_clerk = await staff_tokens(client, Grant("window_clerk", hall=desk.hall.code, department=other.code))
        conversation = (await ask(client, citizen, department=desk.code))["conversation"]["id"]
        await answer(client, clerk, conversation)
        moved = await client.post(f"/api/v1/staff/conversations/{conversation}/transfer", headers=bearer(clerk),
                                  json={"department": other.code})
        assert moved.status_code == 200, moved.text
        assert moved.json()["department"] == other.code and moved.json()["assignee"] is None
        assert moved.json()["status"] == "open"
        queue = (await client.get("/api/v1/staff/conversations", headers=bearer(other_clerk),
                                  params={"assigned": "none"})).json()
        assert conversation in [c["id"] for c in queue["items"]]
        gone = await client.post(f"/api/v1/staff/conversations/{conversation}/claim", headers=bearer(clerk))
        assert gone.status_code == 403

    async def test_to_a_staff_member_whose_grants_reach_it(self, client, desk, citizen):
        clerk, colleague = await desk.staff(client), await desk.staff(client)
        conversation = (await ask(client, citizen, department=desk.code))["conversation"]["id"]
        moved = await client.post(f"/api/v1/staff/conversations/{conversation}/transfer", headers=bearer(clerk),
                                  json={"staff": colleague["id"]})
        assert moved.status_code == 200 and moved.json()["assignee"] == colleague["id"]

    async def test_to_nobody_to_an_unknown_or_an_out_of_scope_target_is_refused(self, client, desk, citizen):
        clerk = await desk.staff(client)
        other = await make_department(desk.hall.code)
        stranger = await staff_tokens(client, Grant("window_clerk", hall=desk.hall.code, department=other.code))
        conversation = (await ask(client, citizen, department=desk.code))["conversation"]["id"]
        path = f"/api/v1/staff/conversations/{conversation}/transfer"
        nobody = await client.post(path, headers=bearer(clerk), json={})
        assert nobody.status_code == 422 and nobody.json()["errors"][0]["code"] == "field.transfer_target"
        both = await client.post(path, headers=bearer(clerk), json={"department": other.code, "staff": stranger["id"]})
        assert both.status_code == 422
        unknown = await client.post(path, headers=bearer(clerk), json={"department": "nosuchdept"})
        assert unknown.status_code == 404 and unknown.json()["code"] == "department_not_found"
        ghost = await client.post(path, headers=bearer(clerk), json={"staff": 2**62})
        assert ghost.status_code == 404 and ghost.json()["code"] == "staff_not_found"
        outside = await client.post(path, headers=bearer(clerk), json={"staff": stranger["id"]})
        assert outside.status_code == 422 and outside.json()["code"] == "consult_transfer_out_of_scope"
        unchanged = await Conversation.get(id=conversation)
        assert unchanged.department_code == desk.code and unchanged.assignee_id is None


class TestFaq:
    async def test_matching_entries_in_the_language_asked(self, client):
        found = (await client.get("/api/v1/faq", params={"q": "办身份证要带什么", "department": "gaj"},
                                  headers={"Accept-Language": "en"})).json()
        assert found["items"][0]["id"] == "gaj-id-card-materials"
        assert found["items"][0]["answer"].startswith("Bring your household register")

    async def test_a_departments_entries_and_the_general_ones_without_words(self, client):
        found = [e["id"] for e in (await client.get("/api/v1/faq", params={"department": "gsj"})).json()["items"]]
        assert "hours-weekend" in found and "gaj-id-card-materials" not in found

    async def test_a_bad_department_code_is_a_422(self, client):
        response = await client.get("/api/v1/faq", params={"department": "gaj; drop"})
        assert response.status_code == 422


class TestCannedAnswers:
    async def test_a_departments_own_and_the_common_ones_in_the_language_asked(self, client, desk):
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150900", department="gaj"))
        found = (await client.get("/api/v1/staff/canned-answers", params={"department": "gaj"},
                                  headers=bearer(clerk) | {"Accept-Language": "mn"})).json()["items"]
        ids = [answer["id"] for answer in found]
        assert "greeting" in ids and "gaj-id-card-same-day" in ids
        assert all(any("\u1800" <= ch <= "\u18af" for ch in answer["text"]) for answer in found)
        other = await client.get("/api/v1/staff/canned-answers", params={"department": desk.code}, headers=bearer(clerk))
        assert other.status_code == 403


class TestSupervision:
    async def test_first_answer_and_resolution_times_per_department_and_day(self, client, frozen_clock, desk,
                                                                            citizen):
        from datetime import timedelta

        from backend.kit import clock
        clerk = await desk.staff(client)
        conversation = (await ask(client, citizen, department=desk.code))["conversation"]["id"]
        await ask(client, citizen, department=desk.code)   # never answered
        clock.advance(timedelta(minutes=12))
        await answer(client, clerk, conversation)
        clock.advance(timedelta(minutes=30))
        # tokens live 15 minutes: staff log in again, as the console would refresh
        clerk = await staff_tokens(client, Grant("window_clerk", hall=desk.hall.code, department=desk.code))
        supervisor = await staff_tokens(client, Grant("supervisor", hall=desk.hall.code))
        await client.post(f"/api/v1/staff/conversations/{conversation}/resolve", headers=bearer(clerk))
        report = (await client.get("/api/v1/supervision/consulting", headers=bearer(supervisor),
                                   params={"from": "2026-11-25", "to": "2026-11-25", "department": desk.code})).json()
        assert report["items"] == [{
            "department": desk.code, "hall": desk.hall.code, "date": "2026-11-25", "opened": 2, "answered": 1,
            "answered_within_hour": 1, "first_answer_seconds_median": 720.0, "first_answer_seconds_max": 720.0,
            "resolved": 1, "resolution_seconds_median": 2520.0}]

    async def test_a_clerk_and_a_reversed_range_are_refused(self, client, desk):
        clerk = await desk.staff(client)
        assert (await client.get("/api/v1/supervision/consulting", headers=bearer(clerk),
                                 params={"from": "2026-11-01", "to": "2026-11-02"})).status_code == 403
        supervisor = await staff_tokens(client, Grant("supervisor", hall=desk.hall.code))
        reversed_range = await client.get("/api/v1/supervision/consulting", headers=bearer(supervisor),
                                          params={"from": "2026-11-05", "to": "2026-11-01"})
        assert reversed_range.status_code == 422
