"""Domain events -> notifications: the outbox is expanded into deliveries (one per event, channel and
person) and an inbox entry, then each delivery is claimed and sent, WeChat first, SMS when WeChat
cannot carry it.

Two steps, each in its own transaction, so that several dispatchers on several machines share the work:
- expand: outbox rows not yet processed are taken with FOR UPDATE SKIP LOCKED (PostgreSQL; SQLite has
  one writer at a time), turned into Delivery and InboxNotification rows by the rules of
  config/templates/notifications.toml, and marked processed, all in one commit. The unique
  (event, channel, recipient) key makes doing it twice harmless.
- claim and send: due deliveries are marked `sending` with a lease under the claimer's name, in one
  short transaction; the sends happen outside any transaction; each outcome is written only if the
  delivery is still this claimer's (a compare-and-swap), so a slow claimer whose lease ran out cannot
  overwrite the one that took over. A claimer that dies leaves `sending` rows whose lease runs out;
  the next round claims them again. Those writes (hand-over mark, outcome, consent spent) go through
  the round's Ledger (notify/ledger.py): each send still waits for its own row, but the rows of
  concurrent sends share one statement.
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

from tortoise.exceptions import ValidationError
from tortoise.expressions import F, Q

from backend.accounts.citizens import notification_contacts
from backend.accounts.staff import staff_contacts
from backend.catalog.service import get_department, get_hall_summary, get_service_item, kept
from backend.kit import clock
from backend.kit.auth import Principal
from backend.kit.contacts import NotificationContact
from backend.kit.errors import AppError
from backend.kit.gateways import SmsError
from backend.kit.identity import normalize_phone
from backend.kit.models import OutboxEvent
from backend.kit.pii import PHONE
from backend.kit.ratelimit import Window
from backend.kit.uow import UnitOfWork, unit_of_work
from backend.runtime import Runtime
from notify.ledger import Ledger, Outcome
from notify.models import Delivery, InboxNotification, SubscriptionCredit
from notify.permissions import require_delivery_admin
from notify.schemas import (AliyunReports, DeliveryOut, DeliveryPage, DeliveryQuery, InboxPage, InboxQuery,
                            NotificationOut, SubscriptionsOut, TencentReports)
from notify.templates import EventRule, NotificationRules, TemplateDataError, load_rules, wechat_values

__all__ = ["expand_events", "claim_deliveries", "send_delivery", "dispatch_once", "report_subscriptions",
           "list_inbox", "mark_read", "list_deliveries", "retry_delivery", "rules_of", "take_aliyun_receipts",
           "take_tencent_receipts", "ReceiptsTaken", "move_citizen"]

log = logging.getLogger("ehall.notify")

# a subscribe-message consent is a single send; a client reporting more than this many unspent
# consents of one template is not believed beyond it
_CREDITS_KEPT = 20
# people one event may name (a case's responsible staff); a payload naming more is cut, not obeyed
_MOST_RECIPIENTS = 50


def rules_of(rt: Runtime) -> NotificationRules:
    return load_rules(rt.settings.resolved_config_dir())


def _is_postgres(uow: UnitOfWork) -> bool:
    return uow.tx.capabilities.dialect == "postgres"


# --- expand: events -> deliveries and inbox entries -----------------------------------------------

async def _hall_name(rt: Runtime, code: str, language: str) -> str:
    try:
        hall = await get_hall_summary(rt, code=code)
    except (AppError, ValidationError):   # gone from the catalogue, or never a code: say it as it is
        return code
    return {"mn": hall.name_mn, "en": hall.name_en}.get(language) or hall.name


async def _item_name(rt: Runtime, code: str, language: str) -> str:
    try:
        item = await kept(rt, key=("notify.item", code), build=lambda: get_service_item(rt, code=code))
    except (AppError, ValidationError):
        return code
    return {"mn": item.name_mn, "en": item.name_en}.get(language) or item.name


async def _department_name(rt: Runtime, code: str, language: str) -> str:
    try:
        department = await kept(rt, key=("notify.department", code), build=lambda: get_department(rt, code=code))
    except (AppError, ValidationError):
        return code
    return {"mn": department.name_mn, "en": department.name_en}.get(language) or department.name


def _local_time(value: str, language: str) -> str:
    local = datetime.fromisoformat(value).astimezone(clock.business_zone())
    if language == "zh":
        return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"
    return f"{local:%Y-%m-%d %H:%M}"


async def _params(rt: Runtime, rules: NotificationRules, rule: EventRule, event: OutboxEvent,
                  language: str) -> dict[str, object]:
    """The template's values: the event's ids and numbers, names in the recipient's language, local times."""
    payload = event.payload or {}
    params: dict[str, object] = {key: value for key, value in payload.items()
                                 if isinstance(value, (str, int, float)) and not isinstance(value, bool)}
    aggregate, _, aggregate_id = event.aggregate.partition(":")
    params.setdefault(aggregate, aggregate_id)
    if isinstance(payload.get("hall"), str):
        params["hall"] = await _hall_name(rt, payload["hall"], language)
    if isinstance(payload.get("item"), str):
        params["item"] = await _item_name(rt, payload["item"], language)
    if isinstance(payload.get("department"), str):
        # "" is a hall's comprehensive desk: the hall's name says who answered
        params["department"] = await _department_name(rt, payload["department"], language) \
            if payload["department"] else params.get("hall", "")
    if isinstance(payload.get("starts_at"), str):
        params["time"] = _local_time(payload["starts_at"], language)
    if isinstance(payload.get("deadline"), str):
        params["deadline"] = _local_time(payload["deadline"], language)
    if isinstance(payload.get("until"), str):
        params["until"] = _local_time(payload["until"], language).split(" ")[0]
    return params | rules.extra_values(rule, language)


def _first_channel(rule: EventRule, contact: NotificationContact) -> str | None:
    if rule.template.wechat is not None and contact.wechat and contact.wechat_openid:
        return "wechat"
    if contact.sms and contact.phone:
        return "sms"
    return None


def _recipients(rule: EventRule, payload: dict) -> list[tuple[str, int]]:
    """Who the event names for the rule's `to`: the citizen (`citizen`: an id), or the responsible
    staff (`staff`: an id or a list of ids, as the domain that recorded it knows who holds the work)."""
    named = payload.get(rule.to)
    return [(rule.to, who) for who in _ids(named if isinstance(named, list) else [named])][:_MOST_RECIPIENTS]


async def _contacts(rt: Runtime, who: list[tuple[str, int]], *,
                    tx: UnitOfWork | None = None) -> dict[tuple[str, int], NotificationContact]:
    citizens = await notification_contacts(rt, citizen_ids=[i for kind, i in who if kind == "citizen"], tx=tx)
    staff = await staff_contacts(rt, staff_ids=[i for kind, i in who if kind == "staff"], tx=tx)
    return {(contact.kind, contact.id): contact for contact in [*citizens.values(), *staff.values()]}


async def expand_events(rt: Runtime, *, limit: int) -> int:
    """Turn up to `limit` unprocessed outbox events into deliveries; answers how many events were taken."""
    rules = rules_of(rt)
    now = clock.now()
    async with unit_of_work(rt) as uow:
        pending = OutboxEvent.filter(processed_at__isnull=True).order_by("id").limit(limit).using_db(uow.tx)
        if _is_postgres(uow):
            pending = pending.select_for_update(skip_locked=True)
        events = await pending
        if not events:
            return 0
        wanted = {event.id: rule for event in events if (rule := rules.for_event(event.kind)) is not None}
        recipients = {event.id: _recipients(wanted[event.id], event.payload or {})
                      for event in events if event.id in wanted}
        contacts = await _contacts(rt, [who for named in recipients.values() for who in named], tx=uow)
        deliveries, inbox = [], []
        for event in events:
            rule = wanted.get(event.id)
            if rule is None:
                continue   # nothing to tell of this kind: processed all the same
            for contact in (contacts[who] for who in recipients[event.id] if who in contacts):  # the ones left
                params = await _params(rt, rules, rule, event, contact.language)
                if contact.kind == "citizen":   # staff have no inbox: their work lists are their own
                    inbox.append(InboxNotification(
                        citizen_id=contact.id, event_id=event.id, kind=event.kind, created_at=now,
                        title=rules.title(rule.template, contact.language, params)[:120],
                        body=rules.body(rule.template, contact.language, params)[:500]))
                channel = _first_channel(rule, contact)
                if channel is not None:
                    deliveries.append(_delivery(event.id, event.kind, rule.template.name, rule.template.urgent,
                                                channel, contact, params, now))
        if deliveries:
            await Delivery.bulk_create(deliveries, ignore_conflicts=True, using_db=uow.tx)
        if inbox:
            await InboxNotification.bulk_create(inbox, ignore_conflicts=True, using_db=uow.tx)
        await OutboxEvent.filter(id__in=[event.id for event in events]).using_db(uow.tx) \
            .update(processed_at=now, attempts=F("attempts") + 1)
        for entry in inbox:  # the citizen's open app hears of it; the inbox list is the truth
            uow.publish(f"citizen:{entry.citizen_id}", {"event": "notification.new", "kind": entry.kind,
                                                        "title": entry.title})
    return len(events)


def _delivery(event_id: int, kind: str, template: str, urgent: bool, channel: str, contact: NotificationContact,
              params: dict[str, object], now: datetime) -> Delivery:
    return Delivery(event_id=event_id, kind=kind, channel=channel, recipient_kind=contact.kind,
                    recipient_id=contact.id, template=template, language=contact.language,
                    urgent=urgent, params=params, status="pending", next_attempt_at=now, created_at=now)


# --- claim and send ---------------------------------------------------------------------------------

async def claim_deliveries(rt: Runtime, *, holder: str, limit: int) -> list[Delivery]:
    """Take up to `limit` due deliveries for `holder`: urgent ones first (a ticket call never waits
    behind a burst of approvals), then the longest waiting; and those a dead claimer left behind."""
    now = clock.now()
    lease = timedelta(seconds=rt.settings.notify.lease_seconds)
    async with unit_of_work(rt) as uow:
        due = Delivery.filter(Q(status__in=("pending", "failed"), next_attempt_at__lte=now)
                              | Q(status="sending", lease_until__lt=now)) \
            .order_by("-urgent", "next_attempt_at", "id").limit(limit).using_db(uow.tx)
        if _is_postgres(uow):
            due = due.select_for_update(skip_locked=True)
        claimed = await due
        if claimed:
            await Delivery.filter(id__in=[d.id for d in claimed]).using_db(uow.tx).update(
                status="sending", claimed_by=holder, lease_until=now + lease, attempts=F("attempts") + 1)
    for delivery in claimed:
        delivery.status, delivery.claimed_by, delivery.attempts = "sending", holder, delivery.attempts + 1
    return claimed


def _backoff(rt: Runtime, attempts: int) -> timedelta:
    notify = rt.settings.notify
    seconds = min(notify.retry_cap_seconds, notify.retry_base_seconds * 2 ** max(0, attempts - 1))
    return timedelta(seconds=seconds * random.uniform(1 - notify.retry_jitter, 1 + notify.retry_jitter))


async def _fall_back_to_sms(rt: Runtime, delivery: Delivery, contact: NotificationContact | None) -> None:
    """WeChat cannot carry it: the same notification by SMS, once (the unique key sees to that)."""
    if contact is None or not (contact.sms and contact.phone):
        return
    now = clock.now()
    await Delivery.bulk_create([Delivery(
        event_id=delivery.event_id, kind=delivery.kind, channel="sms", recipient_kind=delivery.recipient_kind,
        recipient_id=delivery.recipient_id, template=delivery.template, language=delivery.language,
        urgent=delivery.urgent, params=delivery.params, status="pending", next_attempt_at=now,
        created_at=now)], ignore_conflicts=True)


async def _given_up(ledger: Ledger, delivery: Delivery, contact: NotificationContact | None, *,
                    status: str, error: str) -> str:
    # the SMS is made only once the WeChat delivery's end is written: a claimer that dies in between
    # leaves it `sending`, and whoever takes it over ends it the same way
    if await ledger.settle(delivery, Outcome(status, last_error=error[:300])) and delivery.channel == "wechat":
        await _fall_back_to_sms(ledger.rt, delivery, contact)
    return status


async def _failed(ledger: Ledger, delivery: Delivery, contact: NotificationContact | None, error: str) -> str:
    """A failure worth trying again later, until the tries run out."""
    if delivery.attempts >= ledger.rt.settings.notify.max_attempts:
        return await _given_up(ledger, delivery, contact, status="dead", error=error)
    await ledger.settle(delivery, Outcome("failed", last_error=error[:300],
                                          next_attempt_at=clock.now() + _backoff(ledger.rt, delivery.attempts)))
    return "failed"


async def _postpone(ledger: Ledger, delivery: Delivery, until: datetime) -> str:
    """Not a try: quiet hours, or a provider limit; it waits and keeps its tries. Rare (a night's
    bookings, a phone over its limit): one statement of its own, outside the ledger's batches."""
    await Delivery.filter(id=delivery.id, status="sending", claimed_by=ledger.holder).update(
        status="pending", next_attempt_at=until, attempts=F("attempts") - 1, lease_until=None, handed_at=None)
    return "pending"


async def send_delivery(rt: Runtime, delivery: Delivery, *, ledger: Ledger,
                        contact: NotificationContact | None = None) -> str:
    """Send one claimed delivery and record what happened in `ledger` (its claimer's); answers the
    status it ended in. `contact`: the recipient's, when the caller has read those of a whole batch at once."""
    if contact is None:
        who = (delivery.recipient_kind, delivery.recipient_id)
        contact = (await _contacts(rt, [who])).get(who)  # type: ignore[arg-type]
    if contact is None:
        return await _given_up(ledger, delivery, None, status="dead", error="recipient_gone")
    if rules_of(rt).template(delivery.template) is None:
        return await _given_up(ledger, delivery, contact, status="dead", error="template_unknown")
    if delivery.handed_at is not None:   # its last claimer died while the provider had it
        outcome = await _settle_unknown_outcome(rt, ledger, delivery, contact)
        if outcome is not None:
            return outcome
    if delivery.channel == "wechat":
        return await _send_wechat(rt, ledger, delivery, contact)
    return await _send_sms(rt, ledger, delivery, contact)


async def _settle_unknown_outcome(rt: Runtime, ledger: Ledger, delivery: Delivery,
                                  contact: NotificationContact) -> str | None:
    """The provider was called and nobody wrote what it answered. Sending again could tell the person
    twice, not sending could tell them nothing: ask the provider where it keeps a record (Alibaba
    Cloud: every message by OutId; Tencent Cloud: delivery reports), and answer None to send.
    WeChat keeps no record we can ask: the subscribe message is given up and SMS carries the news
    (the person may get both, never the same channel twice)."""
    if delivery.channel == "wechat":
        return await _given_up(ledger, delivery, contact, status="dead", error="wechat outcome unknown")
    if not contact.phone:
        return None
    try:
        sent = await rt.sms.was_sent(contact.phone, _reference(delivery), since=delivery.handed_at)
    except SmsError as error:
        return await _failed(ledger, delivery, contact, f"{error.provider} {error.code}")
    if sent:
        await ledger.settle(delivery, Outcome("sent", sent_at=clock.now()))
        return "sent"
    if sent is None:
        log.warning("notification outcome unknown, sent again", extra={"ehall": {"delivery": delivery.id}})
    return None


def _reference(delivery: Delivery) -> str:
    """What travels with the message and comes back in lookups and receipts (OutId, SessionContext)."""
    return f"ehall-d{delivery.id}"


async def _send_wechat(rt: Runtime, ledger: Ledger, delivery: Delivery, contact: NotificationContact) -> str:
    message = rules_of(rt).template(delivery.template).wechat  # type: ignore[union-attr]
    if message is None or not (contact.wechat and contact.wechat_openid):
        return await _given_up(ledger, delivery, contact, status="skipped", error="wechat_not_available")
    try:
        data = wechat_values(message, delivery.params)
    except TemplateDataError as error:
        return await _given_up(ledger, delivery, contact, status="dead",
                               error=f"template_data_invalid: {error.key} ({error.rule})")
    credit = SubscriptionCredit.filter(citizen_id=contact.id, template_id=message.template_id)
    if not await ledger.spend_credit(contact.id, message.template_id):
        return await _given_up(ledger, delivery, contact, status="skipped", error="no_subscription_credit")
    notify = rt.settings.notify
    if not await ledger.hand_over(delivery):
        await credit.update(remaining=F("remaining") + 1, updated_at=clock.now())
        return "lost"
    try:
        await rt.wechat.send_subscribe_message(
            contact.wechat_openid, message.template_id, data,
            page=message.page.format_map(_Blank(delivery.params)) if message.page else None,
            miniprogram_state=notify.miniprogram_state, lang=notify.wechat_lang.get(delivery.language, "zh_CN"))
    except AppError as error:
        if error.code == "wechat_subscription_refused":   # 43101: refused or unsubscribed; its credits are void
            await credit.update(remaining=0, updated_at=clock.now())
            return await _given_up(ledger, delivery, contact, status="dead", error="wechat 43101 refused")
        # not sent: the consent is still the user's to spend
        await credit.update(remaining=F("remaining") + 1, updated_at=clock.now())
        if error.status >= 500 and error.code == "wechat_unavailable":
            return await _failed(ledger, delivery, contact, f"wechat {error.code}")
        return await _given_up(ledger, delivery, contact, status="dead", error=f"wechat {error.code}")
    await ledger.settle(delivery, Outcome("sent", sent_at=clock.now()))
    return "sent"


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


def _quiet_until(rt: Runtime, now: datetime) -> datetime | None:
    """The end of quiet hours if `now` is inside them (local time of the halls), else None."""
    start, end = (time.fromisoformat(t) for t in rt.settings.notify.quiet_window())
    local = now.astimezone(clock.business_zone())
    moment = local.time()
    inside = (start <= moment or moment < end) if start > end else (start <= moment < end)
    if not inside:
        return None
    day = local.date() if moment < end else local.date() + timedelta(days=1)
    # in UTC, as every stored instant: SQLite compares them as text
    return datetime.combine(day, end, tzinfo=clock.business_zone()).astimezone(timezone.utc)


async def _send_sms(rt: Runtime, ledger: Ledger, delivery: Delivery, contact: NotificationContact) -> str:
    if not (contact.sms and contact.phone):
        return await _given_up(ledger, delivery, contact, status="skipped", error="sms_not_available")
    try:
        phone = normalize_phone(contact.phone)
    except ValueError:
        return await _given_up(ledger, delivery, contact, status="dead", error="phone_not_mainland_mobile")
    now = clock.now()
    if not delivery.urgent and (morning := _quiet_until(rt, now)) is not None:
        return await _postpone(ledger, delivery, morning)
    notify = rt.settings.notify
    phone_key = f"notify:sms:{rt.cipher.index(phone, purpose=PHONE)}"
    wait = await rt.limiter.hit_all({
        f"{phone_key}:{delivery.template}": [Window(notify.sms_per_phone_template_per_30_seconds, 30)],
        phone_key: [Window(notify.sms_per_phone_per_hour, 3600), Window(notify.sms_per_phone_per_day, 86400)]})
    if wait:
        return await _postpone(ledger, delivery, now + timedelta(seconds=wait))
    templates = rules_of(rt).sms
    params = {name: delivery.params.get(name, "") for name in templates.parameter_order(delivery.template)}
    if not await ledger.hand_over(delivery):
        return "lost"
    try:
        message_id = await rt.sms.send(phone, delivery.template, delivery.language,
                                       reference=_reference(delivery), **params)
    except SmsError as error:
        if error.retryable:
            return await _failed(ledger, delivery, contact, f"{error.provider} {error.code}")
        return await _given_up(ledger, delivery, contact, status="dead", error=f"{error.provider} {error.code}")
    await ledger.settle(delivery, Outcome("sent", sent_at=clock.now(), provider_message_id=message_id))
    return "sent"


async def dispatch_once(rt: Runtime, *, holder: str) -> int:
    """One round: expand a batch of events, claim a batch of deliveries, send them. Answers how much
    work it found (0: nothing to do, the dispatcher may rest)."""
    notify = rt.settings.notify
    expanded = await expand_events(rt, limit=notify.batch_size)
    claimed = await claim_deliveries(rt, holder=holder, limit=notify.batch_size)
    contacts = await _contacts(rt, [(d.recipient_kind, d.recipient_id) for d in claimed])
    room = asyncio.Semaphore(notify.concurrency)
    ledger = Ledger(rt, holder)

    async def send(delivery: Delivery) -> None:
        async with room:
            try:
                contact = contacts.get((delivery.recipient_kind, delivery.recipient_id))
                if contact is None:   # the account was closed since the delivery was made
                    await _given_up(ledger, delivery, None, status="dead", error="recipient_gone")
                    return
                await send_delivery(rt, delivery, ledger=ledger, contact=contact)
            except Exception as error:   # our own fault or the database's: try again later, never lose it
                log.exception("notification send failed", extra={"ehall": {"delivery": delivery.id}})
                await _failed(ledger, delivery, None, f"internal {type(error).__name__}")

    await asyncio.gather(*(send(delivery) for delivery in claimed))
    return expanded + len(claimed)


# --- the citizen's side: subscriptions and the inbox -----------------------------------------------

async def report_subscriptions(rt: Runtime, *, citizen_id: int, results: dict[str, str]) -> SubscriptionsOut:
    """What wx.requestSubscribeMessage answered: each "accept" is one send of that template; "reject"
    and "ban" void what was left (the user said no)."""
    known = rules_of(rt).wechat_template_ids()
    unknown = sorted(set(results) - known)
    if unknown:
        raise AppError("subscription_template_unknown", 422, templates=", ".join(unknown)[:200])
    now = clock.now()
    async with unit_of_work(rt) as uow:
        for template_id, result in sorted(results.items()):
            credit = await SubscriptionCredit.filter(citizen_id=citizen_id, template_id=template_id) \
                .using_db(uow.tx).select_for_update().first()
            if credit is None:
                credit = await SubscriptionCredit.create(citizen_id=citizen_id, template_id=template_id,
                                                         remaining=0, updated_at=now, using_db=uow.tx)
            remaining = min(_CREDITS_KEPT, credit.remaining + 1) if result == "accept" \
                else 0 if result in ("reject", "ban") else credit.remaining
            await SubscriptionCredit.filter(id=credit.id).using_db(uow.tx).update(remaining=remaining, updated_at=now)
        held = await SubscriptionCredit.filter(citizen_id=citizen_id).using_db(uow.tx).order_by("template_id")
    return SubscriptionsOut(credits={credit.template_id: credit.remaining for credit in held})


async def move_citizen(rt: Runtime, *, absorbed: int, into: int, tx: UnitOfWork | None = None) -> None:
    """One person's records joined (a WeChat-only login binding the phone of a citizen who already
    exists): the consents add up, the inbox and the deliveries follow the person."""
    async with unit_of_work(rt, tx) as uow:
        for credit in await SubscriptionCredit.filter(citizen_id=absorbed).using_db(uow.tx).select_for_update():
            kept = await SubscriptionCredit.filter(citizen_id=into, template_id=credit.template_id) \
                .using_db(uow.tx).select_for_update().first()
            if kept is None:
                await SubscriptionCredit.filter(id=credit.id).using_db(uow.tx).update(citizen_id=into)
                continue
            await SubscriptionCredit.filter(id=kept.id).using_db(uow.tx).update(
                remaining=min(_CREDITS_KEPT, kept.remaining + credit.remaining), updated_at=clock.now())
            await SubscriptionCredit.filter(id=credit.id).using_db(uow.tx).delete()
        await InboxNotification.filter(citizen_id=absorbed).using_db(uow.tx).update(citizen_id=into)
        await Delivery.filter(recipient_kind="citizen", recipient_id=absorbed).using_db(uow.tx) \
            .update(recipient_id=into)


async def list_inbox(rt: Runtime, *, citizen_id: int, query: InboxQuery) -> InboxPage:
    entries = InboxNotification.filter(citizen_id=citizen_id)
    if query.unread:
        entries = entries.filter(read_at__isnull=True)
    total = await entries.count()
    unread = await InboxNotification.filter(citizen_id=citizen_id, read_at__isnull=True).count()
    page = await entries.order_by("-id").offset(query.offset).limit(query.page_size)
    return InboxPage(items=[NotificationOut.model_validate(entry, from_attributes=True) for entry in page],
                     page=query.page, page_size=query.page_size, total=total, unread=unread)


async def mark_read(rt: Runtime, *, citizen_id: int, notification_id: int) -> NotificationOut:
    async with unit_of_work(rt) as uow:
        await InboxNotification.filter(id=notification_id, citizen_id=citizen_id, read_at__isnull=True) \
            .using_db(uow.tx).update(read_at=clock.now())
        entry = await InboxNotification.get_or_none(id=notification_id, citizen_id=citizen_id).using_db(uow.tx)
    if entry is None:
        raise AppError("notification_not_found", 404)
    return NotificationOut.model_validate(entry, from_attributes=True)


# --- the admins' side --------------------------------------------------------------------------------

async def list_deliveries(rt: Runtime, *, principal: Principal, query: DeliveryQuery) -> DeliveryPage:
    require_delivery_admin(principal)
    deliveries = Delivery.all()
    if query.status:
        deliveries = deliveries.filter(status=query.status)
    total = await deliveries.count()
    page = await deliveries.order_by("-id").offset(query.offset).limit(query.page_size)
    return DeliveryPage(items=[DeliveryOut.model_validate(d, from_attributes=True) for d in page],
                        page=query.page, page_size=query.page_size, total=total)


async def retry_delivery(rt: Runtime, *, principal: Principal, delivery_id: int) -> DeliveryOut:
    """A dead (or failed) delivery is tried again now, with its tries counted afresh."""
    require_delivery_admin(principal)
    async with unit_of_work(rt) as uow:
        delivery = await Delivery.get_or_none(id=delivery_id).using_db(uow.tx).select_for_update()
        if delivery is None:
            raise AppError("delivery_not_found", 404)
        if delivery.status not in ("dead", "failed"):
            raise AppError("delivery_not_retryable", 409, delivery_status=delivery.status)
        await Delivery.filter(id=delivery.id).using_db(uow.tx).update(
            status="pending", attempts=0, next_attempt_at=clock.now(), claimed_by=None, lease_until=None)
        delivery = await Delivery.get(id=delivery.id).using_db(uow.tx)
    return DeliveryOut.model_validate(delivery, from_attributes=True)


def _ids(values: Iterable[object]) -> list[int]:
    # a payload's ids are JSON: an int, never a bool (which is an int to Python)
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool)]


# --- delivery receipts from the SMS providers -------------------------------------------------------

_REFERENCE = re.compile(r"^ehall-d([0-9]{1,18})$")


@dataclass(frozen=True)
class _Receipt:
    """A provider's word on one message, in our terms."""
    delivery_id: int | None          # from the reference it was sent with (Alibaba Cloud's OutId)
    provider_message_id: str         # BizId, SerialNo
    delivered: bool
    error: str


@dataclass
class ReceiptsTaken:
    delivered: int = 0
    failed: int = 0
    repeated: int = 0                # already settled by an earlier push of the same receipt
    unknown: int = 0


def _check_receipt_token(rt: Runtime, token: str) -> None:
    expected = rt.settings.notify.receipt_token.get_secret_value()
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        raise AppError("receipt_unauthenticated", 401)


async def take_aliyun_receipts(rt: Runtime, *, token: str, reports: AliyunReports) -> ReceiptsTaken:
    _check_receipt_token(rt, token)
    return await _take_receipts(rt, [_Receipt(
        delivery_id=int(found[1]) if (found := _REFERENCE.match(report.out_id or "")) else None,
        provider_message_id=report.biz_id, delivered=report.success,
        error=f"aliyun {report.err_code}".strip()) for report in reports.root])


async def take_tencent_receipts(rt: Runtime, *, token: str, reports: TencentReports) -> ReceiptsTaken:
    _check_receipt_token(rt, token)
    return await _take_receipts(rt, [_Receipt(
        delivery_id=None, provider_message_id=report.sid, delivered=report.report_status == "SUCCESS",
        error=f"tencent {report.errmsg}".strip()) for report in reports.root])


async def _take_receipts(rt: Runtime, receipts: list[_Receipt]) -> ReceiptsTaken:
    """Each receipt settles its delivery once: delivered, or dead with the carrier's reason (the provider
    has tried for hours already; an admin may retry it). A push repeated later changes nothing."""
    taken = ReceiptsTaken()
    now = clock.now()
    async with unit_of_work(rt) as uow:
        for receipt in receipts:
            found = Delivery.filter(channel="sms").using_db(uow.tx)
            found = found.filter(id=receipt.delivery_id) if receipt.delivery_id is not None \
                else found.filter(provider_message_id=receipt.provider_message_id)
            delivery = await found.first()
            if delivery is None:
                taken.unknown += 1
                continue
            changes = {"status": "delivered", "delivered_at": now} if receipt.delivered \
                else {"status": "dead", "last_error": f"receipt: {receipt.error}"[:300]}
            if await Delivery.filter(id=delivery.id, status__in=("sent", "sending")).using_db(uow.tx) \
                    .update(**changes):
                taken.delivered += receipt.delivered
                taken.failed += not receipt.delivered
            else:
                taken.repeated += 1
    if taken.unknown == len(receipts):
        raise AppError("receipt_unknown", 404)
    return taken
