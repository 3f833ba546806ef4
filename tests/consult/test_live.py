"""Consulting live with real websocket clients (through the broker the server was built with: in-process
on SQLite, Redis on PostgreSQL), the offline-answer event, and WeChat content security."""
from __future__ import annotations

import json
import uuid

from websockets.asyncio.client import connect

from backend.consult.models import Conversation, ConversationMessage
from backend.kit.models import OutboxEvent
from tests.consult.conftest import answer, ask, citizen_id, conversation_count, msg_id
from tests.factories import bearer, login_citizen
from tests.sockets import closed_with, next_message, ws_url


class TestConversationSocket:
    async def test_a_conversation_end_to_end_between_a_citizen_and_a_clerk(self, client, server, desk, citizen):
        clerk = await desk.staff(client)
        async with connect(ws_url(server, "/ws/staff/inbox"), additional_headers=bearer(clerk)) as inbox:
            assert (await next_message(inbox, "snapshot"))["assigned"] == []
            opened = await ask(client, citizen, department=desk.code, text="营业执照怎么办？")
            conversation = opened["conversation"]["id"]
            assert opened["conversation"]["assignee"] == clerk["id"]
            assigned = await next_message(inbox, "conversation.assigned")
            assert assigned["conversation"]["id"] == conversation
            path = f"/ws/conversations/{conversation}"
            async with connect(ws_url(server, path), additional_headers=bearer(citizen)) as mine, \
                    connect(ws_url(server, path)) as theirs:
                await theirs.send(json.dumps({"type": "auth", "token": clerk["access_token"]}))  # a browser
                snapshot = await next_message(theirs, "snapshot")
                assert [m["text"] for m in snapshot["messages"]] == ["营业执照怎么办？"]
                await next_message(mine, "snapshot")
                await theirs.send(json.dumps({"type": "typing"}))
                typing = await next_message(mine, "typing")
                assert typing["by"] == "staff"
                reply = await answer(client, clerk, conversation, "带身份证和场地证明。")
                new = await next_message(mine, "message.new")
                assert new["message"]["text"] == "带身份证和场地证明。" and new["message"]["sender"] == "staff"
                await mine.send(json.dumps({"type": "read", "up_to": reply["id"]}))
                read = await next_message(theirs, "read")
                assert read == {"type": "read", "event": "read", "by": "citizen", "up_to": reply["id"]}
                sent = await client.post(f"/api/v1/conversations/{conversation}/messages", headers=bearer(citizen),
                                         json={"text": "谢谢", "client_msg_id": msg_id()})
                assert (await next_message(theirs, "message.new"))["message"]["id"] == sent.json()["id"]
                await client.post(f"/api/v1/staff/conversations/{conversation}/resolve", headers=bearer(clerk))
                resolved = await next_message(mine, "resolved")
                assert resolved["conversation"]["status"] == "resolved"
        stored = await Conversation.get(id=conversation)
        assert stored.citizen_read_up_to == reply["id"] and stored.status == "resolved"

    async def test_a_message_the_socket_missed_is_in_the_messages_list(self, client, server, desk, citizen):
        clerk = await desk.staff(client)
        conversation = (await ask(client, citizen, department=desk.code))["conversation"]["id"]
        async with connect(ws_url(server, f"/ws/conversations/{conversation}"),
                           additional_headers=bearer(citizen)) as mine:
            last = (await next_message(mine, "snapshot"))["messages"][-1]["id"]
        await answer(client, clerk, conversation, "您离线时的答复")
        caught_up = (await client.get(f"/api/v1/conversations/{conversation}/messages", headers=bearer(citizen),
                                      params={"after": last})).json()
        assert [m["text"] for m in caught_up["items"]] == ["您离线时的答复"]

    async def test_another_citizen_staff_of_another_department_and_no_token_are_refused(
            self, client, server, capsys, desk, citizen):
        from backend.kit.auth import Grant
        from tests.factories import staff_tokens
        from tests.rows import make_department
        conversation = (await ask(client, citizen, department=desk.code))["conversation"]["id"]
        path = ws_url(server, f"/ws/conversations/{conversation}")
        other = await login_citizen(client, capsys)
        async with connect(path, additional_headers=bearer(other)) as socket:
            error, code = await closed_with(socket)
        assert error["code"] == "conversation_not_found" and code == 4404
        elsewhere = await make_department(desk.hall.code)
        stranger = await staff_tokens(client, Grant("window_clerk", hall=desk.hall.code, department=elsewhere.code))
        async with connect(path, additional_headers=bearer(stranger)) as socket:
            error, code = await closed_with(socket)
        assert error["code"] == "out_of_scope" and code == 4403
        async with connect(path) as socket:
            await socket.send(json.dumps({"type": "hello"}))
            error, code = await closed_with(socket)
        assert code == 4401

    async def test_a_bad_read_message_is_answered_with_an_error_and_the_socket_stays(self, client, server, desk,
                                                                                      citizen):
        conversation = (await ask(client, citizen, department=desk.code))["conversation"]["id"]
        async with connect(ws_url(server, f"/ws/conversations/{conversation}"),
                           additional_headers=bearer(citizen)) as mine:
            await next_message(mine, "snapshot")
            await mine.send(json.dumps({"type": "read", "up_to": "all"}))
            assert (await next_message(mine, "error"))["code"] == "validation_failed"
            await mine.send(json.dumps({"type": "refresh"}))
            assert (await next_message(mine))["type"] == "snapshot"


class TestInboxSocket:
    async def test_the_queue_of_my_department_reaches_my_inbox_and_others_do_not(self, client, server, capsys,
                                                                                 desk, citizen):
        from backend.kit.auth import Grant
        from tests.factories import staff_tokens
        from tests.rows import make_department
        supervisor = await staff_tokens(client, Grant("supervisor", hall=desk.hall.code, department=desk.code))
        async with connect(ws_url(server, "/ws/staff/inbox"), additional_headers=bearer(supervisor)) as inbox:
            await next_message(inbox, "snapshot")
            elsewhere = await make_department(desk.hall.code)
            await ask(client, await login_citizen(client, capsys), department=elsewhere.code)
            mine = await ask(client, citizen, department=desk.code)
            # a supervisor is online too, so it is assigned to them, or queued if over the limit
            event = await next_message(inbox)
            assert event["conversation"]["id"] == mine["conversation"]["id"]
            assert event["conversation"]["department"] == desk.code

    async def test_a_citizen_cannot_open_a_staff_inbox(self, server, citizen):
        async with connect(ws_url(server, "/ws/staff/inbox"), additional_headers=bearer(citizen)) as socket:
            error, code = await closed_with(socket)
        assert error["code"] == "forbidden_role" and code == 4403


class TestOfflineAnswer:
    async def test_an_answer_to_a_citizen_without_an_open_socket_is_an_event_for_notify(self, client, desk, citizen):
        clerk = await desk.staff(client)
        conversation = (await ask(client, citizen, department=desk.code))["conversation"]["id"]
        await answer(client, clerk, conversation)
        events = await OutboxEvent.filter(kind="consult.answered", aggregate=f"conversation:{conversation}")
        assert len(events) == 1
        assert events[0].payload == {"citizen": citizen_id(client, citizen), "department": desk.code,
                                     "hall": desk.hall.code, "conversation": conversation}

    async def test_an_answer_to_a_citizen_watching_the_conversation_records_none(self, client, server, desk, citizen):
        clerk = await desk.staff(client)
        conversation = (await ask(client, citizen, department=desk.code))["conversation"]["id"]
        async with connect(ws_url(server, f"/ws/conversations/{conversation}"),
                           additional_headers=bearer(citizen)) as mine:
            await next_message(mine, "snapshot")
            await answer(client, clerk, conversation)
            await next_message(mine, "message.new")
        assert not await OutboxEvent.filter(kind="consult.answered", aggregate=f"conversation:{conversation}").exists()

    async def test_the_notify_rule_says_the_department_by_its_name_in_three_languages(self, client, desk):
        from notify.templates import NotificationRules
        rules = NotificationRules.load(client.rt.settings.resolved_config_dir())
        rule = rules.for_event("consult.answered")
        assert rule is not None and rule.to == "citizen"
        texts = {language: rules.body(rule.template, language, {"department": "公安局"})
                 for language in ("zh", "mn", "en")}
        assert all("公安局" in text for text in texts.values()) and len(set(texts.values())) == 3
        assert any("\u1800" <= ch <= "\u18af" for ch in texts["mn"]) and "answer" in texts["en"]
        assert rule.template.wechat is not None and rule.template.wechat.data["thing1"] == "{department}"


class TestContentSecurity:
    async def _wechat_citizen(self, client, fake_wechat) -> dict:
        openid = f"o-consult-{uuid.uuid4().hex[:12]}"
        login = await client.post("/mp/v1/auth/login", json={"code": fake_wechat.issue_login_code(openid=openid)})
        assert login.status_code == 200, login.text
        return {**login.json(), "openid": openid}

    async def test_a_risky_message_is_refused_and_nothing_is_stored(self, client, fake_wechat, desk, business_time):
        wechat_user = await self._wechat_citizen(client, fake_wechat)
        word = f"违禁{uuid.uuid4().hex[:6]}"
        fake_wechat.banned_words.append(word)
        refused = await client.post("/api/v1/conversations", headers=bearer(wechat_user), json={
            "department": desk.code, "text": f"我要买{word}", "client_msg_id": msg_id()})
        assert refused.status_code == 422 and refused.json()["code"] == "consult_message_refused"
        assert await conversation_count(citizen_id(client, wechat_user)) == (0, 0)
        checked = [c for c in fake_wechat.sec_checks if c["openid"] == wechat_user["openid"]]
        assert checked and checked[0]["version"] == 2 and checked[0]["scene"] == 4
        opened = await ask(client, wechat_user, department=desk.code, text="正常的问题")
        later = await client.post(f"/api/v1/conversations/{opened['conversation']['id']}/messages",
                                  headers=bearer(wechat_user), json={"text": f"又是{word}", "client_msg_id": msg_id()})
        assert later.status_code == 422 and later.json()["code"] == "consult_message_refused"
        assert await ConversationMessage.filter(conversation_id=opened["conversation"]["id"]).count() == 1

    async def test_a_message_for_review_is_stored_and_flagged_for_staff(self, client, fake_wechat, desk, business_time):
        wechat_user = await self._wechat_citizen(client, fake_wechat)
        word = f"存疑{uuid.uuid4().hex[:6]}"
        fake_wechat.review_words.append(word)
        opened = await ask(client, wechat_user, department=desk.code, text=f"关于{word}的问题")
        assert opened["message"]["review"] is True and opened["conversation"]["flagged"] is True
        clerk = await desk.staff(client)
        listed = (await client.get("/api/v1/staff/conversations", headers=bearer(clerk))).json()["items"]
        assert [c["flagged"] for c in listed if c["id"] == opened["conversation"]["id"]] == [True]

    async def test_a_citizen_without_wechat_is_not_checked(self, client, fake_wechat, desk, citizen):
        text = f"没有微信的牧民问：{uuid.uuid4().hex}"
        opened = await ask(client, citizen, department=desk.code, text=text)
        assert opened["message"]["review"] is False
        assert not [c for c in fake_wechat.sec_checks if c["content"] == text]

    async def test_staff_messages_are_not_checked(self, client, fake_wechat, desk, business_time):
        wechat_user = await self._wechat_citizen(client, fake_wechat)
        conversation = (await ask(client, wechat_user, department=desk.code))["conversation"]["id"]
        clerk = await desk.staff(client)
        checks = len([c for c in fake_wechat.sec_checks if c["openid"] == wechat_user["openid"]])
        await answer(client, clerk, conversation, "工作人员的答复")
        assert len([c for c in fake_wechat.sec_checks if c["openid"] == wechat_user["openid"]]) == checks


class TestInboxReassignment:
    async def test_a_transfer_reaches_the_new_assignees_inbox(self, client, server, desk, citizen):
        clerk, colleague = await desk.staff(client), await desk.staff(client)
        conversation = (await ask(client, citizen, department=desk.code))["conversation"]["id"]
        async with connect(ws_url(server, "/ws/staff/inbox"), additional_headers=bearer(colleague)) as inbox:
            await next_message(inbox, "snapshot")
            moved = await client.post(f"/api/v1/staff/conversations/{conversation}/transfer", headers=bearer(clerk),
                                      json={"staff": colleague["id"]})
            assert moved.status_code == 200
            event = await next_message(inbox, "conversation.transferred")
        assert event["conversation"]["id"] == conversation and event["conversation"]["assignee"] == colleague["id"]
        assert "hall_path" not in event and event["id"]


class TestContentSecurityUnreachable:
    async def test_a_message_wechat_could_not_check_is_kept_and_flagged(self, client, fake_wechat, desk, business_time):
        openid = f"o-consult-{uuid.uuid4().hex[:12]}"
        login = await client.post("/mp/v1/auth/login", json={"code": fake_wechat.issue_login_code(openid=openid)})
        fake_wechat.fail_next("wxa/msg_sec_check", -1)
        opened = await ask(client, login.json(), department=desk.code, text="微信繁忙时的问题")
        assert opened["message"]["review"] is True and opened["conversation"]["flagged"] is True
