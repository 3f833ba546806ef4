"""The notification pipeline on a real server's runtime: events recorded in the outbox (as the domains
record them) become deliveries and inbox entries, go out through wechatpy to the WeChat fake and
through Alibaba Cloud's SDK to its fake, once; retries run on the frozen clock.

Events recorded here by hand name negative aggregate ids ("case:-31"): the database is shared by the
whole session, and a real case or ticket with that number would find this test's event among its own
(tests/cases and tests/queueing list a row's events by aggregate)."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from backend.accounts.staff import disable_staff
from backend.kit import clock
from backend.kit.auth import Grant
from backend.kit.models import OutboxEvent
from backend.kit.uow import unit_of_work
from notify.models import Delivery, InboxNotification, SubscriptionCredit
from notify.service import claim_deliveries, expand_events
from notify.templates import NotificationRules
from tests.factories import new_phone, staff_tokens
from tests.notify.conftest import (UNLIMITED_SMS, Person, aliyun_settings, consent, drain, record, tencent_settings,
                                   wechat_citizen)

TICKET_CALLED = "PLACEHOLDER-ticket-called-000000000000000000"
BOOKED = "PLACEHOLDER-appointment-booked-00000000000000"


def _sms_to(fake, phone: str) -> list[dict]:
    return [message for message in fake.sent if message["phone_numbers"] == phone]


def _wechat_to(fake, openid: str) -> list[dict]:
    return [message for message in fake.sent_messages if message["touser"] == openid]


async def _called(rt, person, *, number: str = "A007", window: str = "03") -> int:
    return await record(rt, "ticket.called", "ticket:-9001", citizen=person.citizen_id, hall="150900",
                        number=number, window=window)


class TestOutbox:
    async def test_an_event_whose_transaction_rolled_back_is_never_sent(self, notifying, aliyun, fake_wechat):
        async with notifying.client() as http:
            person = await wechat_citizen(http, fake_wechat)
        with pytest.raises(RuntimeError):
            async with unit_of_work(notifying.rt) as uow:
                await uow.record("ticket.called", "ticket:-1", citizen=person.citizen_id, hall="150900",
                                 number="A001", window="01")
                raise RuntimeError("the change failed after recording its event")
        await drain(notifying.rt)
        assert await Delivery.filter(recipient_id=person.citizen_id).count() == 0
        assert await InboxNotification.filter(citizen_id=person.citizen_id).count() == 0
        assert _sms_to(aliyun, person.phone) == []

    async def test_an_event_becomes_one_inbox_entry_and_one_sms(self, notifying, aliyun, fake_wechat):
        async with notifying.client() as http:
            person = await wechat_citizen(http, fake_wechat)
        event = await _called(notifying.rt, person)
        await drain(notifying.rt)
        (sms,) = _sms_to(aliyun, person.phone)
        assert sms["template_code"] == "SMS_000000111"
        assert sms["template_param"] == {"hall": "乌兰察布市政务服务中心", "number": "A007", "window": "03"}
        assert sms["out_id"].startswith("ehall-d")
        delivery = await Delivery.get(event_id=event, channel="sms")
        assert (delivery.channel, delivery.status, delivery.attempts) == ("sms", "sent", 1)
        assert delivery.provider_message_id == sms["biz_id"]
        (entry,) = await InboxNotification.filter(citizen_id=person.citizen_id)
        assert entry.title == "请到窗口办理" and "A007" in entry.body and "03" in entry.body
        assert (await OutboxEvent.get(id=event)).processed_at is not None

    async def test_expanding_and_sending_again_sends_nothing_twice(self, notifying, aliyun, fake_wechat):
        async with notifying.client() as http:
            person = await wechat_citizen(http, fake_wechat)
        event = await _called(notifying.rt, person)
        await drain(notifying.rt)
        # as if a dispatcher died after sending but before the event was marked processed
        await OutboxEvent.filter(id=event).update(processed_at=None)
        await drain(notifying.rt)
        assert len(_sms_to(aliyun, person.phone)) == 1
        deliveries = await Delivery.filter(event_id=event).order_by("channel")
        assert [(d.channel, d.status) for d in deliveries] == [("sms", "sent"), ("wechat", "skipped")]
        assert await InboxNotification.filter(event_id=event).count() == 1

    async def test_an_event_without_a_rule_or_a_recipient_is_processed_and_sends_nothing(self, notifying):
        quiet = await record(notifying.rt, "window.status_changed", "window:1", hall="150900", status="open")
        nobody = await record(notifying.rt, "ticket.called", "ticket:-2", hall="150900", number="A002", window="01",
                              citizen=None)
        await drain(notifying.rt)
        for event in (quiet, nobody):
            assert (await OutboxEvent.get(id=event)).processed_at is not None
            assert await Delivery.filter(event_id=event).count() == 0


class TestWechatFirst:
    async def test_a_consent_carries_one_subscribe_message_and_no_sms(self, notifying, aliyun, fake_wechat):
        async with notifying.client() as http:
            person = await wechat_citizen(http, fake_wechat)
            assert await consent(http, person, TICKET_CALLED) == {TICKET_CALLED: 1}
        await _called(notifying.rt, person)
        await drain(notifying.rt)
        (message,) = _wechat_to(fake_wechat, person.openid)
        assert message["template_id"] == TICKET_CALLED
        assert message["data"] == {"character_string1": {"value": "A007"}, "character_string2": {"value": "03"},
                                   "thing3": {"value": "乌兰察布市政务服务中心"}}
        assert message["page"] == "pages/tickets/detail?id=-9001"
        assert _sms_to(aliyun, person.phone) == []
        credit = await SubscriptionCredit.get(citizen_id=person.citizen_id, template_id=TICKET_CALLED)
        assert credit.remaining == 0

    async def test_calls_sent_together_spend_one_consent_each_and_the_one_without_goes_by_sms(
            self, notifying, aliyun, fake_wechat):
        async with notifying.client() as http:
            person = await wechat_citizen(http, fake_wechat)
            await consent(http, person, TICKET_CALLED)
            assert await consent(http, person, TICKET_CALLED) == {TICKET_CALLED: 2}
        for number in ("A001", "A002", "A003"):   # one dispatcher round sends the three at once
            await _called(notifying.rt, person, number=number)
        await drain(notifying.rt)
        assert len(_wechat_to(fake_wechat, person.openid)) == 2
        assert len(_sms_to(aliyun, person.phone)) == 1
        assert (await SubscriptionCredit.get(citizen_id=person.citizen_id, template_id=TICKET_CALLED)).remaining == 0

    async def test_without_a_consent_sms_carries_it(self, notifying, aliyun, fake_wechat):
        async with notifying.client() as http:
            person = await wechat_citizen(http, fake_wechat)
        event = await _called(notifying.rt, person)
        await drain(notifying.rt)
        assert _wechat_to(fake_wechat, person.openid) == []
        assert len(_sms_to(aliyun, person.phone)) == 1
        wechat = await Delivery.get(event_id=event, channel="wechat")
        assert (wechat.status, wechat.last_error) == ("skipped", "no_subscription_credit")

    async def test_a_refusal_43101_voids_the_consents_and_sms_takes_over(self, notifying, aliyun, fake_wechat):
        async with notifying.client() as http:
            person = await wechat_citizen(http, fake_wechat)
            await consent(http, person, TICKET_CALLED)
            await consent(http, person, TICKET_CALLED)
        fake_wechat.refused_openids.add(person.openid)
        event = await _called(notifying.rt, person)
        await drain(notifying.rt)
        wechat = await Delivery.get(event_id=event, channel="wechat")
        assert wechat.status == "dead" and "43101" in wechat.last_error
        assert (await SubscriptionCredit.get(citizen_id=person.citizen_id, template_id=TICKET_CALLED)).remaining == 0
        assert len(_sms_to(aliyun, person.phone)) == 1

    async def test_wechat_down_is_retried_and_keeps_the_consent_until_sent(self, notifying, aliyun, fake_wechat):
        async with notifying.client() as http:
            person = await wechat_citizen(http, fake_wechat)
            await consent(http, person, TICKET_CALLED)
        fake_wechat.fail_next("cgi-bin/message/subscribe/send", -1, touser=person.openid)
        event = await _called(notifying.rt, person)
        await drain(notifying.rt)
        wechat = await Delivery.get(event_id=event, channel="wechat")
        assert wechat.status == "failed" and wechat.attempts == 1
        # retry 1 waits 60 s +-25 %
        assert timedelta(seconds=45) <= wechat.next_attempt_at - clock.now() <= timedelta(seconds=75)
        assert (await SubscriptionCredit.get(citizen_id=person.citizen_id, template_id=TICKET_CALLED)).remaining == 1
        await drain(notifying.rt)
        assert _wechat_to(fake_wechat, person.openid) == []          # not due yet
        clock.advance(timedelta(seconds=76))
        await drain(notifying.rt)
        assert len(_wechat_to(fake_wechat, person.openid)) == 1
        assert (await Delivery.get(id=wechat.id)).status == "sent"
        assert _sms_to(aliyun, person.phone) == []

    async def test_a_value_too_long_for_its_key_is_shortened_so_wechat_takes_it(self, notifying, fake_wechat):
        async with notifying.client() as http:
            person = await wechat_citizen(http, fake_wechat)
            await consent(http, person, BOOKED)
        await record(notifying.rt, "appointment.booked", "appointment:-77", appointment=77, citizen=person.citizen_id,
                     hall="150900", item="no-such-item-" + "x" * 40, starts_at="2026-11-26T01:30:00+00:00")
        await drain(notifying.rt)
        (message,) = _wechat_to(fake_wechat, person.openid)
        thing = message["data"]["thing1"]["value"]
        assert len(thing) == 20 and thing.endswith("…")
        assert message["data"]["time2"]["value"] == "2026年11月26日 09:30"


class TestRetries:
    async def test_a_provider_refusal_to_try_later_backs_off_then_sends(self, notifying, aliyun, fake_wechat):
        async with notifying.client() as http:
            person = await wechat_citizen(http, fake_wechat)
        aliyun.fail_next("isv.BUSINESS_LIMIT_CONTROL", to=person.phone)
        event = await _called(notifying.rt, person)
        await drain(notifying.rt)
        sms = await Delivery.get(event_id=event, channel="sms")
        assert (sms.status, sms.attempts, sms.last_error) == ("failed", 1, "aliyun isv.BUSINESS_LIMIT_CONTROL")
        clock.advance(timedelta(seconds=76))
        await drain(notifying.rt)
        assert (await Delivery.get(id=sms.id)).status == "sent"
        assert len(_sms_to(aliyun, person.phone)) == 1

    async def test_after_the_last_try_a_delivery_is_dead_with_its_reason(self, app_with, aliyun, fake_wechat, morning):
        running = await app_with(sms=aliyun_settings(aliyun), notify=UNLIMITED_SMS | {"max_attempts": 2, "retry_base_seconds": 10})
        async with running.client() as http:
            person = await wechat_citizen(http, fake_wechat)
        aliyun.fail_next("isp.SYSTEM_ERROR", times=2, to=person.phone)
        event = await _called(running.rt, person)
        await drain(running.rt)
        clock.advance(timedelta(seconds=20))
        await drain(running.rt)
        sms = await Delivery.get(event_id=event, channel="sms")
        assert (sms.status, sms.attempts, sms.last_error) == ("dead", 2, "aliyun isp.SYSTEM_ERROR")

    async def test_a_number_the_provider_refuses_is_dead_at_once(self, notifying, aliyun, fake_wechat):
        async with notifying.client() as http:
            person = await wechat_citizen(http, fake_wechat)
        aliyun.fail_next("isv.MOBILE_NUMBER_ILLEGAL", to=person.phone)
        event = await _called(notifying.rt, person)
        await drain(notifying.rt)
        sms = await Delivery.get(event_id=event, channel="sms")
        assert (sms.status, sms.attempts) == ("dead", 1)


class TestLanguages:
    async def test_a_mongolian_reader_gets_the_mongolian_template_and_inbox(self, notifying, aliyun, fake_wechat):
        async with notifying.client() as http:
            person = await wechat_citizen(http, fake_wechat, language="mn")
        await _called(notifying.rt, person)
        await drain(notifying.rt)
        (sms,) = _sms_to(aliyun, person.phone)
        assert sms["template_code"] == "SMS_000000112"
        assert sms["template_param"]["hall"] == "ᠤᠯᠠᠭᠠᠨᠴᠠᠪ ᠬᠣᠲᠠ ᠶᠢᠨ ᠵᠠᠰᠠᠭ ᠤᠨ ᠬᠡᠷᠡᠭ ᠦᠢᠯᠡᠴᠢᠯᠡᠭᠡ ᠶᠢᠨ ᠲᠥᠪ"
        (entry,) = await InboxNotification.filter(citizen_id=person.citizen_id)
        assert any("\u1800" <= ch <= "\u18af" for ch in entry.title + entry.body)

    async def test_english_where_a_text_has_it(self, notifying, aliyun, fake_wechat):
        async with notifying.client() as http:
            person = await wechat_citizen(http, fake_wechat, language="en")
        await _called(notifying.rt, person)
        await drain(notifying.rt)
        (entry,) = await InboxNotification.filter(citizen_id=person.citizen_id)
        assert entry.title == "Please go to the window" and "window 03" in entry.body


class TestQuietHours:
    async def test_a_booking_sms_at_night_waits_for_morning_and_a_call_does_not(self, notifying, aliyun, fake_wechat):
        async with notifying.client() as http:
            person = await wechat_citizen(http, fake_wechat)
        clock.advance(timedelta(hours=12))                      # 22:00 in Ulanqab
        booked = await record(notifying.rt, "appointment.booked", "appointment:-5", appointment=5,
                              citizen=person.citizen_id, hall="150900", item="x", starts_at="2026-11-26T01:30:00+00:00")
        called = await _called(notifying.rt, person)
        await drain(notifying.rt)
        assert [m["template_code"] for m in _sms_to(aliyun, person.phone)] == ["SMS_000000111"]
        waiting = await Delivery.get(event_id=booked, channel="sms")
        assert (waiting.status, waiting.attempts) == ("pending", 0)
        assert waiting.next_attempt_at == clock.now() + timedelta(hours=10)   # 08:00
        assert (await Delivery.get(event_id=called, channel="sms")).status == "sent"
        clock.advance(timedelta(hours=10))
        await drain(notifying.rt)
        assert len(_sms_to(aliyun, person.phone)) == 2


class TestPreferences:
    async def test_a_citizen_who_turns_sms_off_gets_the_inbox_only(self, notifying, aliyun, fake_wechat):
        async with notifying.client() as http:
            person = await wechat_citizen(http, fake_wechat)
            changed = await http.patch("/api/v1/me", headers=person.headers, json={"notifications": {"sms": False}})
            assert changed.json()["notifications"] == {"wechat": True, "sms": False}
        event = await _called(notifying.rt, person)
        await drain(notifying.rt)
        assert _sms_to(aliyun, person.phone) == []
        assert await InboxNotification.filter(event_id=event).count() == 1
        assert (await Delivery.get(event_id=event, channel="wechat")).status == "skipped"
        assert await Delivery.filter(event_id=event, channel="sms").count() == 0


class TestSharing:
    async def test_two_dispatchers_at_once_send_each_delivery_once(self, notifying, aliyun, fake_wechat):
        async with notifying.client() as http:
            people = [await wechat_citizen(http, fake_wechat) for _ in range(12)]
        for person in people:
            await _called(notifying.rt, person)
        await asyncio.gather(drain(notifying.rt, "dispatcher-a"), drain(notifying.rt, "dispatcher-b"),
                             drain(notifying.rt, "dispatcher-c"))
        for person in people:
            assert len(_sms_to(aliyun, person.phone)) == 1

    async def test_a_delivery_left_by_a_dead_claimer_is_sent_after_its_lease(self, notifying, aliyun, fake_wechat):
        async with notifying.client() as http:
            person = await wechat_citizen(http, fake_wechat)
        event = await _called(notifying.rt, person)
        while await expand_events(notifying.rt, limit=500):
            pass
        claimed = [d for d in await claim_deliveries(notifying.rt, holder="dies", limit=10_000) if d.event_id == event]
        assert [d.channel for d in claimed] == ["wechat"], "claimed by the dispatcher that dies"
        await drain(notifying.rt, "survivor")
        assert await Delivery.filter(event_id=event, channel="sms").count() == 0   # its lease still runs
        clock.advance(timedelta(seconds=61))
        await drain(notifying.rt, "survivor")
        taken_over = await Delivery.get(id=claimed[0].id)
        assert (taken_over.status, taken_over.claimed_by, taken_over.attempts) == ("skipped", "survivor", 2)
        assert len(_sms_to(aliyun, person.phone)) == 1


def test_every_event_rule_names_a_template_with_texts_in_three_languages(settings):
    rules = NotificationRules.load(settings.resolved_config_dir())
    for kind in ("ticket.called", "ticket.turn_near", "appointment.booked", "appointment.reminder",
                 "appointment.cancelled", "appointment.no_show", "appointment.booking_suspended",
                 "case.submitted", "case.accepted", "case.refused", "case.supplement_required", "case.approved", "case.denied",
                 "case.certificate_ready", "case.deadline_warning", "case.overdue"):
        rule = rules.for_event(kind)
        assert rule is not None, kind
        assert set(rule.template.title) == {"zh", "mn", "en"}, kind
        assert rule.to in ("citizen", "staff"), kind
        assert set(rules.sms.texts(rule.template.name)) == {"zh", "mn", "en"}, kind



class TestWechatRefusesTheMessage:
    async def test_a_message_wechat_refuses_47003_is_dead_the_consent_kept_and_sms_takes_over(
            self, notifying, aliyun, fake_wechat):
        async with notifying.client() as http:
            person = await wechat_citizen(http, fake_wechat)
            await consent(http, person, TICKET_CALLED)
        fake_wechat.fail_next("cgi-bin/message/subscribe/send", 47003, touser=person.openid)
        event = await _called(notifying.rt, person)
        await drain(notifying.rt)
        wechat = await Delivery.get(event_id=event, channel="wechat")
        assert (wechat.status, wechat.attempts, wechat.last_error) == ("dead", 1, "wechat wechat_request_refused")
        assert (await SubscriptionCredit.get(citizen_id=person.citizen_id, template_id=TICKET_CALLED)).remaining == 1
        assert len(_sms_to(aliyun, person.phone)) == 1


async def _sms_only(http, fake_wechat) -> Person:
    person = await wechat_citizen(http, fake_wechat)
    changed = await http.patch("/api/v1/me", headers=person.headers, json={"notifications": {"wechat": False}})
    assert changed.status_code == 200, changed.text
    return person


async def _claimed_by_a_claimer_that_dies(rt, event: int) -> Delivery:
    """Expanded and claimed by "dies", which marks the delivery handed to the provider and stops there."""
    while await expand_events(rt, limit=500):
        pass
    (delivery,) = [d for d in await claim_deliveries(rt, holder="dies", limit=10_000) if d.event_id == event]
    await Delivery.filter(id=delivery.id).update(handed_at=clock.now())
    return delivery


class TestAClaimerDiesWhileTheProviderHasIt:
    async def test_what_alibaba_cloud_took_is_not_sent_again(self, notifying, aliyun, fake_wechat):
        async with notifying.client() as http:
            person = await _sms_only(http, fake_wechat)
        event = await _called(notifying.rt, person)
        delivery = await _claimed_by_a_claimer_that_dies(notifying.rt, event)
        # the provider took it; the claimer died before writing so
        await notifying.rt.sms.send(person.phone, "ticket_called", "zh", reference=f"ehall-d{delivery.id}",
                                    hall="乌兰察布市政务服务中心", number="A007", window="03")
        clock.advance(timedelta(seconds=61))
        await drain(notifying.rt, "survivor")
        assert len(_sms_to(aliyun, person.phone)) == 1
        settled = await Delivery.get(id=delivery.id)
        assert (settled.status, settled.claimed_by, settled.handed_at) == ("sent", "survivor", None)

    async def test_what_never_reached_alibaba_cloud_is_sent(self, notifying, aliyun, fake_wechat):
        async with notifying.client() as http:
            person = await _sms_only(http, fake_wechat)
        event = await _called(notifying.rt, person)
        delivery = await _claimed_by_a_claimer_that_dies(notifying.rt, event)
        clock.advance(timedelta(seconds=61))
        await drain(notifying.rt, "survivor")
        (sms,) = _sms_to(aliyun, person.phone)
        assert sms["out_id"] == f"ehall-d{delivery.id}"
        assert (await Delivery.get(id=delivery.id)).status == "sent"

    async def test_what_tencent_cloud_reported_delivered_is_not_sent_again(self, app_with, tencent, fake_wechat,
                                                                           morning):
        running = await app_with(sms=tencent_settings(tencent), notify=UNLIMITED_SMS)
        async with running.client() as http:
            person = await _sms_only(http, fake_wechat)
        event = await _called(running.rt, person)
        delivery = await _claimed_by_a_claimer_that_dies(running.rt, event)
        await running.rt.sms.send(person.phone, "ticket_called", "zh", reference=f"ehall-d{delivery.id}",
                                  hall="乌兰察布市政务服务中心", number="A007", window="03")
        clock.advance(timedelta(seconds=61))
        await drain(running.rt, "survivor")
        assert len([m for m in tencent.sent if m["phone"] == "+86" + person.phone]) == 1
        assert (await Delivery.get(id=delivery.id)).status == "sent"

    async def test_a_subscribe_message_of_unknown_outcome_gives_way_to_sms(self, notifying, aliyun, fake_wechat):
        async with notifying.client() as http:
            person = await wechat_citizen(http, fake_wechat)
            await consent(http, person, TICKET_CALLED)
        event = await _called(notifying.rt, person)
        delivery = await _claimed_by_a_claimer_that_dies(notifying.rt, event)
        clock.advance(timedelta(seconds=61))
        await drain(notifying.rt, "survivor")
        wechat = await Delivery.get(id=delivery.id)
        assert (wechat.channel, wechat.status, wechat.last_error) == ("wechat", "dead", "wechat outcome unknown")
        assert _wechat_to(fake_wechat, person.openid) == []     # never sent twice through WeChat
        assert len(_sms_to(aliyun, person.phone)) == 1


class TestAClosedAccount:
    async def test_a_citizen_who_closed_the_account_meanwhile_is_told_nothing(self, notifying, aliyun, fake_wechat):
        async with notifying.client() as http:
            person = await _sms_only(http, fake_wechat)
            event = await _called(notifying.rt, person)
            while await expand_events(notifying.rt, limit=500):
                pass
            closed = await http.delete("/api/v1/me", headers=person.headers, params={"confirm": "true"})
            assert closed.status_code in (200, 204), closed.text
        await drain(notifying.rt)
        delivery = await Delivery.get(event_id=event, channel="sms")
        assert (delivery.status, delivery.last_error) == ("dead", "recipient_gone")
        assert _sms_to(aliyun, person.phone) == []


class TestResponsibleStaff:
    async def test_a_yellow_card_reaches_the_responsible_staff_by_sms_and_nobody_else(self, notifying, aliyun):
        phone = new_phone()
        async with notifying.client() as http:
            approver = await staff_tokens(http, Grant("approver", hall="150900", department="gaj"), phone=phone)
            phoneless = await staff_tokens(http, Grant("approver", hall="150900", department="gaj"))
        event = await record(notifying.rt, "case.deadline_warning", "case:-31", staff=[approver["id"], phoneless["id"]],
                             receipt="1509002611250001X", item="gaj.QR001", deadline="2026-11-26T09:30:00+00:00")
        await drain(notifying.rt)
        (sms,) = _sms_to(aliyun, phone)
        assert sms["template_code"] == "SMS_000000181"
        assert sms["template_param"]["receipt"] == "1509002611250001X"
        assert sms["template_param"]["deadline"] == "2026年11月26日 17:30"
        deliveries = await Delivery.filter(event_id=event)
        assert [(d.recipient_kind, d.recipient_id, d.channel, d.status) for d in deliveries] == \
            [("staff", approver["id"], "sms", "sent")]
        assert await InboxNotification.filter(event_id=event).count() == 0

    async def test_a_disabled_staff_member_is_not_warned(self, notifying, aliyun):
        phone = new_phone()
        async with notifying.client() as http:
            approver = await staff_tokens(http, Grant("approver", hall="150900"), phone=phone)
        await disable_staff(notifying.rt, username=approver["username"], actor="system:test")
        await record(notifying.rt, "case.overdue", "case:-32", staff=approver["id"], receipt="1509002611250002X",
                     item="x", deadline="2026-11-24T09:30:00+00:00")
        await drain(notifying.rt)
        assert _sms_to(aliyun, phone) == []
