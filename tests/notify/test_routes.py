"""The notification endpoints: the mini-program's consent report, the citizen's inbox, and the
admins' dead letters with their retry."""
from __future__ import annotations

from datetime import timedelta

from websockets.asyncio.client import connect

from backend.kit import clock
from backend.kit.auth import Grant
from notify.models import Delivery, SubscriptionCredit
from tests.factories import bearer, staff_tokens
from tests.notify.conftest import UNLIMITED_SMS, aliyun_settings, consent, drain, record, wechat_citizen
from tests.sockets import closed_with, next_message, ws_url

TICKET_CALLED = "PLACEHOLDER-ticket-called-000000000000000000"
CASE = "PLACEHOLDER-case-progress-0000000000000000000"


class TestReportSubscriptions:
    async def test_each_accept_is_one_send_and_a_reject_voids_them(self, client, fake_wechat):
        person = await wechat_citizen(client, fake_wechat)
        assert await consent(client, person, TICKET_CALLED) == {TICKET_CALLED: 1}
        assert await consent(client, person, TICKET_CALLED, CASE) == {TICKET_CALLED: 2, CASE: 1}
        answer = await client.post("/mp/v1/subscriptions", headers=person.headers,
                                   json={"results": {TICKET_CALLED: "reject", CASE: "filter"}})
        assert answer.json()["credits"] == {TICKET_CALLED: 0, CASE: 1}

    async def test_an_unknown_template_is_refused_and_changes_nothing(self, client, fake_wechat):
        person = await wechat_citizen(client, fake_wechat)
        answer = await client.post("/mp/v1/subscriptions", headers=person.headers,
                                   json={"results": {TICKET_CALLED: "accept", "made-up-template": "accept"}})
        assert answer.status_code == 422 and answer.json()["code"] == "subscription_template_unknown"
        assert "made-up-template" in answer.json()["detail"]
        assert not await SubscriptionCredit.filter(citizen_id=person.citizen_id).exists()

    async def test_what_wechat_never_answers_is_a_field_error(self, client, fake_wechat):
        person = await wechat_citizen(client, fake_wechat)
        for body in ({"results": {TICKET_CALLED: "yes"}}, {"results": {}},
                     {"results": {f"t{n}": "accept" for n in range(4)}}, {}):
            answer = await client.post("/mp/v1/subscriptions", headers=person.headers, json=body)
            assert answer.status_code == 422, body

    async def test_staff_cannot_report_a_citizens_consent(self, client):
        staff = await staff_tokens(client, Grant("admin"))
        answer = await client.post("/mp/v1/subscriptions", headers=bearer(staff),
                                   json={"results": {TICKET_CALLED: "accept"}})
        assert answer.status_code == 403


class TestInbox:
    async def test_my_notifications_newest_first_and_one_marked_read(self, client, fake_wechat):
        person = await wechat_citizen(client, fake_wechat)
        for number in ("A001", "A002"):
            await record(client.rt, "ticket.called", "ticket:1", citizen=person.citizen_id, hall="150900",
                         number=number, window="01")
        await drain(client.rt)
        inbox = (await client.get("/api/v1/me/notifications", headers=person.headers)).json()
        assert [("A002" in e["body"], "A001" in e["body"]) for e in inbox["items"]] == [(True, False), (False, True)]
        assert (inbox["total"], inbox["unread"]) == (2, 2)
        newest = inbox["items"][0]["id"]
        read = await client.post(f"/api/v1/me/notifications/{newest}/read", headers=person.headers)
        assert read.status_code == 200 and read.json()["read_at"] is not None
        unread = (await client.get("/api/v1/me/notifications", headers=person.headers,
                                   params={"unread": "true"})).json()
        assert [e["id"] for e in unread["items"]] != [newest] and unread["unread"] == 1

    async def test_another_citizens_notification_is_not_found(self, client, fake_wechat):
        owner, other = await wechat_citizen(client, fake_wechat), await wechat_citizen(client, fake_wechat)
        await record(client.rt, "ticket.called", "ticket:1", citizen=owner.citizen_id, hall="150900",
                     number="A001", window="01")
        await drain(client.rt)
        mine = (await client.get("/api/v1/me/notifications", headers=owner.headers)).json()["items"][0]["id"]
        answer = await client.post(f"/api/v1/me/notifications/{mine}/read", headers=other.headers)
        assert answer.status_code == 404 and answer.json()["code"] == "notification_not_found"
        again = (await client.get("/api/v1/me/notifications", headers=owner.headers)).json()["items"][0]
        assert again["read_at"] is None


class TestDeadLetters:
    async def test_an_admin_sees_a_dead_delivery_and_a_retry_sends_it(self, app_with, aliyun, fake_wechat, morning):
        running = await app_with(sms=aliyun_settings(aliyun), notify=UNLIMITED_SMS | {"max_attempts": 1})
        async with running.client() as http:
            person = await wechat_citizen(http, fake_wechat)
            admin = bearer(await staff_tokens(http, Grant("admin")))
            aliyun.fail_next("isp.SYSTEM_ERROR")
            event = await record(running.rt, "ticket.called", "ticket:1", citizen=person.citizen_id,
                                 hall="150900", number="A001", window="01")
            await drain(running.rt)
            dead = (await http.get("/api/v1/admin/notifications", headers=admin, params={"status": "dead"})).json()
            mine = [d for d in dead["items"] if d["event_id"] == event]
            assert [(d["channel"], d["last_error"]) for d in mine] == [("sms", "aliyun isp.SYSTEM_ERROR")]
            assert str(person.phone) not in str(dead)
            retried = await http.post(f"/api/v1/admin/notifications/{mine[0]['id']}/retry", headers=admin)
            assert retried.status_code == 200 and retried.json()["status"] == "pending"
            await drain(running.rt)
            assert (await Delivery.get(id=mine[0]["id"])).status == "sent"
            again = await http.post(f"/api/v1/admin/notifications/{mine[0]['id']}/retry", headers=admin)
            assert again.status_code == 409 and again.json()["code"] == "delivery_not_retryable"
        assert len([m for m in aliyun.sent if m["phone_numbers"] == person.phone]) == 1

    async def test_only_a_prefecture_wide_admin_may_look(self, client):
        for grant in (Grant("admin", hall="150921"), Grant("supervisor"), Grant("window_clerk", hall="150900")):
            staff = bearer(await staff_tokens(client, grant))
            assert (await client.get("/api/v1/admin/notifications", headers=staff)).status_code == 403
            assert (await client.post("/api/v1/admin/notifications/1/retry", headers=staff)).status_code == 403

    async def test_retrying_what_does_not_exist_is_404(self, client):
        admin = bearer(await staff_tokens(client, Grant("admin")))
        answer = await client.post("/api/v1/admin/notifications/999999999/retry", headers=admin)
        assert answer.status_code == 404 and answer.json()["code"] == "delivery_not_found"


class TestProviderLimits:
    async def test_a_second_sms_of_one_template_to_one_phone_within_30_seconds_waits(self, app_with, aliyun,
                                                                                      fake_wechat, morning):
        running = await app_with(sms=aliyun_settings(aliyun))
        async with running.client() as http:
            person = await wechat_citizen(http, fake_wechat)
        first = await record(running.rt, "ticket.called", "ticket:1", citizen=person.citizen_id, hall="150900",
                             number="A001", window="01")
        second = await record(running.rt, "ticket.called", "ticket:2", citizen=person.citizen_id, hall="150900",
                              number="A002", window="02")
        await drain(running.rt)
        assert (await Delivery.get(event_id=first, channel="sms")).status == "sent"
        waiting = await Delivery.get(event_id=second, channel="sms")
        assert (waiting.status, waiting.attempts) == ("pending", 0)
        assert timedelta(seconds=1) <= waiting.next_attempt_at - clock.now() <= timedelta(seconds=30)
        assert len([m for m in aliyun.sent if m["phone_numbers"] == person.phone]) == 1


class TestLiveInbox:
    async def test_an_open_app_hears_each_new_notification(self, client, server, fake_wechat):
        person = await wechat_citizen(client, fake_wechat)
        async with connect(ws_url(server, "/ws/me/notifications"), additional_headers=person.headers) as app:
            snapshot = await next_message(app, "snapshot")
            assert (snapshot["items"], snapshot["unread"]) == ([], 0)
            await record(client.rt, "ticket.called", "ticket:1", citizen=person.citizen_id, hall="150900",
                         number="A009", window="02")
            await drain(client.rt)
            heard = await next_message(app, "notification.new")
            assert (heard["kind"], heard["title"]) == ("ticket.called", "请到窗口办理")

    async def test_a_staff_token_is_refused(self, client, server):
        staff = await staff_tokens(client, Grant("admin"))
        async with connect(ws_url(server, "/ws/me/notifications"), additional_headers=bearer(staff)) as socket:
            error, code = await closed_with(socket)
        assert (error["code"], code) == ("forbidden_role", 4403)
