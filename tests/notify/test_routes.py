"""The notification endpoints: the mini-program's consent report, the citizen's inbox, and the
admins' dead letters with their retry.

Events recorded here by hand name negative aggregate ids ("case:-31"): the database is shared by the
whole session, and a real case or ticket with that number would find this test's event among its own
(tests/cases and tests/queueing list a row's events by aggregate)."""
from __future__ import annotations

import uuid
from datetime import timedelta

from pydantic import SecretStr
from websockets.asyncio.client import connect

from backend.kit import clock
from backend.kit.auth import Grant
from notify.models import Delivery, SubscriptionCredit
from tests.factories import bearer, login_citizen, staff_tokens
from tests.notify.conftest import (UNLIMITED_SMS, aliyun_settings, consent, drain, record, tencent_settings,
                                   wechat_citizen)
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
            await record(client.rt, "ticket.called", "ticket:-1", citizen=person.citizen_id, hall="150900",
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
        await record(client.rt, "ticket.called", "ticket:-1", citizen=owner.citizen_id, hall="150900",
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
            aliyun.fail_next("isp.SYSTEM_ERROR", to=person.phone)
            event = await record(running.rt, "ticket.called", "ticket:-1", citizen=person.citizen_id,
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
        first = await record(running.rt, "ticket.called", "ticket:-1", citizen=person.citizen_id, hall="150900",
                             number="A001", window="01")
        second = await record(running.rt, "ticket.called", "ticket:-2", citizen=person.citizen_id, hall="150900",
                              number="A002", window="02")
        await drain(running.rt)
        # both were sent at once: whichever reached the limiter first went, the other waits its turn
        deliveries = await Delivery.filter(event_id__in=[first, second], channel="sms").order_by("status")
        assert [d.status for d in deliveries] == ["pending", "sent"]
        waiting = deliveries[0]
        assert waiting.attempts == 0
        assert timedelta(seconds=1) <= waiting.next_attempt_at - clock.now() <= timedelta(seconds=30)
        assert len([m for m in aliyun.sent if m["phone_numbers"] == person.phone]) == 1


class TestLiveInbox:
    async def test_an_open_app_hears_each_new_notification(self, client, server, fake_wechat):
        person = await wechat_citizen(client, fake_wechat)
        async with connect(ws_url(server, "/ws/me/notifications"), additional_headers=person.headers) as app:
            snapshot = await next_message(app, "snapshot")
            assert (snapshot["items"], snapshot["unread"]) == ([], 0)
            await record(client.rt, "ticket.called", "ticket:-1", citizen=person.citizen_id, hall="150900",
                         number="A009", window="02")
            await drain(client.rt)
            heard = await next_message(app, "notification.new")
            assert (heard["kind"], heard["title"]) == ("ticket.called", "请到窗口办理")

    async def test_a_staff_token_is_refused(self, client, server):
        staff = await staff_tokens(client, Grant("admin"))
        async with connect(ws_url(server, "/ws/me/notifications"), additional_headers=bearer(staff)) as socket:
            error, code = await closed_with(socket)
        assert (error["code"], code) == ("forbidden_role", 4403)


RECEIPT_TOKEN = "receipt-token-for-the-tests"


async def _sent_sms(app_with, sms: dict, fake_wechat) -> tuple:
    """A server taking receipts with RECEIPT_TOKEN, and one SMS sent by it (its delivery)."""
    running = await app_with(sms=sms, notify=UNLIMITED_SMS | {"receipt_token": SecretStr(RECEIPT_TOKEN)})
    async with running.client() as http:
        person = await wechat_citizen(http, fake_wechat)
    event = await record(running.rt, "ticket.called", "ticket:-1", citizen=person.citizen_id, hall="150900",
                         number="A001", window="01")
    await drain(running.rt)
    return running, person, await Delivery.get(event_id=event, channel="sms")


def _aliyun_report(delivery: Delivery, person, *, success: bool = True, code: str = "DELIVERED") -> dict:
    return {"phone_number": person.phone, "send_time": "2026-11-25 10:00:01", "report_time": "2026-11-25 10:00:05",
            "success": success, "err_code": code, "err_msg": "用户接收成功" if success else "失败", "sms_size": "1",
            "biz_id": delivery.provider_message_id, "out_id": f"ehall-d{delivery.id}"}


class TestReceipts:
    async def test_an_alibaba_cloud_receipt_marks_the_sms_delivered_once(self, app_with, aliyun, fake_wechat, morning):
        running, person, delivery = await _sent_sms(app_with, aliyun_settings(aliyun), fake_wechat)
        async with running.client() as http:
            for _ in range(2):   # Alibaba Cloud pushes again when unsure we took it
                answer = await http.post("/api/v1/notify/receipts/aliyun", params={"token": RECEIPT_TOKEN},
                                         json=[_aliyun_report(delivery, person)])
                assert answer.status_code == 200 and answer.json() == {"code": 0, "msg": "接收成功"}
        settled = await Delivery.get(id=delivery.id)
        assert (settled.status, settled.delivered_at) == ("delivered", clock.now())

    async def test_a_failed_receipt_makes_the_delivery_dead_with_the_carriers_reason(self, app_with, aliyun,
                                                                                    fake_wechat, morning):
        running, person, delivery = await _sent_sms(app_with, aliyun_settings(aliyun), fake_wechat)
        async with running.client() as http:
            answer = await http.post("/api/v1/notify/receipts/aliyun", params={"token": RECEIPT_TOKEN},
                                     json=[_aliyun_report(delivery, person, success=False, code="MK:0001")])
        assert answer.status_code == 200
        settled = await Delivery.get(id=delivery.id)
        assert (settled.status, settled.last_error) == ("dead", "receipt: aliyun MK:0001")

    async def test_a_tencent_cloud_receipt_is_matched_by_its_serial_number(self, app_with, tencent, fake_wechat,
                                                                          morning):
        running, person, delivery = await _sent_sms(app_with, tencent_settings(tencent), fake_wechat)
        report = {"user_receive_time": "2026-11-25 10:00:05", "nationcode": "86", "mobile": person.phone,
                  "report_status": "SUCCESS", "errmsg": "DELIVRD", "description": "用户短信送达成功",
                  "sid": delivery.provider_message_id}
        async with running.client() as http:
            answer = await http.post("/api/v1/notify/receipts/tencent", params={"token": RECEIPT_TOKEN}, json=[report])
        assert answer.status_code == 200 and answer.json() == {"result": 0, "errmsg": "OK"}
        assert (await Delivery.get(id=delivery.id)).status == "delivered"

    async def test_without_the_token_or_with_a_wrong_one_nothing_changes(self, app_with, aliyun, fake_wechat, morning):
        running, person, delivery = await _sent_sms(app_with, aliyun_settings(aliyun), fake_wechat)
        async with running.client() as http:
            for params in ({}, {"token": "guessed"}, {"token": RECEIPT_TOKEN + "x"}):
                answer = await http.post("/api/v1/notify/receipts/aliyun", params=params,
                                         json=[_aliyun_report(delivery, person)])
                assert answer.status_code == 401 and answer.json()["code"] == "receipt_unauthenticated", params
        assert (await Delivery.get(id=delivery.id)).status == "sent"

    async def test_a_receipt_about_messages_we_never_sent_is_404(self, app_with, aliyun, fake_wechat, morning):
        running, person, delivery = await _sent_sms(app_with, aliyun_settings(aliyun), fake_wechat)
        stranger = {**_aliyun_report(delivery, person), "biz_id": "999999^0000000000", "out_id": "someone-else"}
        async with running.client() as http:
            answer = await http.post("/api/v1/notify/receipts/aliyun", params={"token": RECEIPT_TOKEN}, json=[stranger])
        assert answer.status_code == 404 and answer.json()["code"] == "receipt_unknown"

    async def test_a_malformed_receipt_is_a_field_error_and_changes_nothing(self, app_with, aliyun, fake_wechat,
                                                                           morning):
        running, person, delivery = await _sent_sms(app_with, aliyun_settings(aliyun), fake_wechat)
        async with running.client() as http:
            for body in ({"biz_id": delivery.provider_message_id}, [], [{"success": True}],
                         [{**_aliyun_report(delivery, person), "success": "perhaps"}]):
                answer = await http.post("/api/v1/notify/receipts/aliyun", params={"token": RECEIPT_TOKEN}, json=body)
                assert answer.status_code == 422, body
        assert (await Delivery.get(id=delivery.id)).status == "sent"

    async def test_not_configured_every_receipt_is_refused(self, client):
        answer = await client.post("/api/v1/notify/receipts/tencent", params={"token": ""},
                                   json=[{"sid": "x", "report_status": "SUCCESS", "mobile": "13800000000"}])
        assert answer.status_code == 401


class TestJoinedRecords:
    async def test_consents_given_before_binding_the_phone_of_an_existing_citizen_follow_the_person(
            self, client, capsys, fake_wechat):
        app_user = await login_citizen(client, capsys)
        openid = f"o-{uuid.uuid4().hex[:20]}"
        wechat = (await client.post("/mp/v1/auth/login",
                                    json={"code": fake_wechat.issue_login_code(openid=openid)})).json()
        answer = await client.post("/mp/v1/subscriptions", headers=bearer(wechat),
                                   json={"results": {TICKET_CALLED: "accept"}})
        assert answer.json()["credits"] == {TICKET_CALLED: 1}
        bound = await client.post("/mp/v1/auth/phone", headers=bearer(wechat),
                                  json={"code": fake_wechat.issue_phone_code(app_user["phone"])})
        assert bound.status_code == 200 and bound.json()["merged"] is True
        joined = bound.json()["citizen_id"]
        assert (await SubscriptionCredit.get(citizen_id=joined, template_id=TICKET_CALLED)).remaining == 1
        await record(client.rt, "ticket.called", "ticket:-1", citizen=joined, hall="150900", number="A003", window="02")
        await drain(client.rt)
        assert [m["touser"] for m in fake_wechat.sent_messages if m["touser"] == openid] == [openid]
