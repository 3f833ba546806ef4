"""Consulting (咨询): a citizen asks a department, its staff answer, live over websockets and later by
WeChat or SMS.

A conversation is about a department, a service item (its department) or a hall's comprehensive desk.
It is open while it waits for staff, pending while it waits for the citizen, resolved when staff close
it; the citizen's next message opens it again. A new conversation goes to the online staff member of
its department (kit.presence: one with an open staff socket) who has the fewest open and pending
conversations, below consult.max_open_per_staff; with nobody, it waits in the department's queue and
the citizen is told the hall's hours.

Every send is idempotent on the sender's `client_msg_id`: the unique index (conversation, sender,
client_msg_id) and, for a conversation's first message, (citizen, opening_client_msg_id) make a retry
find the first message instead of writing a second, even when both tries arrive at once.

Realtime channels: `conversation:{id}` (both sides' sockets), `consult:staff:{id}` (a staff member's
inbox) and `consult:hall:{code}` / `consult:hall:*` (the queues; an inbox filters by its grants).
"""
from __future__ import annotations

import logging
import statistics
import uuid
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.functions import Count

from backend.accounts.citizens import wechat_openid_of
from backend.accounts.staff import active_staff_grants
from backend.catalog import service as catalog
from backend.consult.faq import load_canned, load_faq, matching_faq
from backend.consult.models import ACTIVE_STATUSES, Conversation, ConversationMessage
from backend.consult.permissions import (
    CONSULT_ROLES, SUPERVISION_ROLES, covers_conversation, lineage_of, path_of, require_conversation_scope,
    scope_filter,
)
from backend.consult.schemas import (
    CannedAnswerList, CannedAnswerOut, ConsultingDayOut, ConsultingReport, ConversationList, ConversationOpened,
    IMAGE_TYPES, ConversationOut, ConversationQuery, ConversationSnapshot, FaqList, FaqOut, ImageOut, InboxSnapshot,
    MessageOut,
    MessagePage, MessagesQuery, StaffConversationQuery, SupervisionQuery, WaitingNotice,
)
from backend.kit import clock
from backend.kit.auth import Principal
from backend.kit.errors import AppError
from backend.kit.filetypes import check_upload
from backend.kit.i18n import MessageCatalogue
from backend.kit.storage import FileNotStored, StoredFile
from backend.kit.sockets import Feed
from backend.kit.uow import UnitOfWork, unit_of_work
from backend.runtime import Runtime

__all__ = [
    "open_conversation", "list_my_conversations", "get_my_conversation", "list_my_messages", "send_citizen_message",
    "list_staff_conversations", "list_staff_messages", "send_staff_message", "claim_conversation",
    "transfer_conversation", "resolve_conversation", "search_faq", "list_canned_answers", "consulting_report",
    "conversation_feed", "inbox_feed", "take_follower_message", "send_reply_to_follower", "send_image",
    "read_image", "mark_read", "consult_text",
]

log = logging.getLogger("ehall.consult")

_QUEUE_SHOWN = 50          # queued conversations an inbox snapshot lists
_SEEN_KEPT = 256           # event ids an inbox remembers to send each event once
_ANSWER_PROMISE = timedelta(hours=1)


# --- what is said and shown ---------------------------------------------------------------------

@cache
def _texts(path: Path) -> MessageCatalogue:
    return MessageCatalogue.load(path)


def consult_text(rt: Runtime, name: str, language: str, **params: object) -> str:
    return _texts(rt.settings.resolved_config_dir() / "consult" / "texts.toml").render(name, language, **params)


def _out(conversation: Conversation) -> ConversationOut:
    return ConversationOut(
        id=conversation.id, channel=conversation.channel, status=conversation.status,  # type: ignore[arg-type]
        hall=conversation.hall_code, department=conversation.department_code, service_item=conversation.item_code,
        assignee=conversation.assignee_id, flagged=conversation.flagged, created_at=conversation.created_at,
        last_message_at=conversation.last_message_at, first_answered_at=conversation.first_answered_at,
        resolved_at=conversation.resolved_at, citizen_read_up_to=conversation.citizen_read_up_to,
        staff_read_up_to=conversation.staff_read_up_to)


def _message_out(message: ConversationMessage) -> MessageOut:
    conversation_id = message.conversation_id  # type: ignore[attr-defined]
    image = ImageOut(content_type=message.image_type, size=message.image_size or 0,  # type: ignore[arg-type]
                     path=f"/api/v1/conversations/{conversation_id}/messages/{message.id}/image") \
        if message.image_key else None
    return MessageOut(id=message.id, conversation=conversation_id, sender=message.sender_kind,  # type: ignore[arg-type]
                      sender_id=message.sender_id if message.sender_kind == "staff" else None,
                      client_msg_id=message.client_msg_id, text=message.text, image=image, review=message.review,
                      created_at=message.created_at)


def _faq_out(entry, language: str) -> FaqOut:
    return FaqOut(id=entry.id, department=entry.department, service_item=entry.service_item,
                  question=entry.question.get(language) or entry.question["zh"],
                  answer=entry.answer.get(language) or entry.answer["zh"])


def _q(query, uow: UnitOfWork | None):
    return query.using_db(uow.tx) if uow is not None else query


# --- realtime -----------------------------------------------------------------------------------

def _conversation_channel(conversation_id: int) -> str:
    return f"conversation:{conversation_id}"


def _publish_to_inboxes(uow: UnitOfWork, conversation: Conversation, event: str, *,
                        queues: bool = False, also: tuple[int, ...] = ()) -> None:
    """Tell the assignee's inbox (and `also`: a previous assignee); with `queues`, every inbox whose
    grants reach the conversation (it joined or left a queue)."""
    # one event reaches an inbox on several of its channels (its own, each hall's): `id` lets it send it once
    body = {"event": event, "id": uuid.uuid4().hex, "conversation": _out(conversation).model_dump(mode="json"),
            "hall_path": conversation.hall_path, "department": conversation.department_code}
    for staff_id in {conversation.assignee_id, *also} - {None}:
        uow.publish(f"consult:staff:{staff_id}", body)
    if queues:
        for hall in [*lineage_of(conversation.hall_path), "*"]:
            uow.publish(f"consult:hall:{hall}", body)


def _publish_conversation(uow: UnitOfWork, conversation: Conversation, event: str, **extra: Any) -> None:
    uow.publish(_conversation_channel(conversation.id),
                {"event": event, "conversation": _out(conversation).model_dump(mode="json"), **extra})


# --- subjects, content security, assignment ------------------------------------------------------

@dataclass(frozen=True)
class _Subject:
    hall: str
    hall_path: str
    department: str
    item: str | None


async def _subject(rt: Runtime, *, department: str | None, service_item: str | None, hall: str | None) -> _Subject:
    if service_item is not None:
        department = (await catalog.get_service_item(rt, code=service_item)).department
    if department is not None:
        found = await catalog.get_department(rt, code=department)
        if hall is not None and hall != found.hall:
            raise AppError("consult_department_not_in_hall", 422)
        hall = found.hall
    assert hall is not None  # the schema asks for one of the three
    lineage = await catalog.hall_lineage(rt, code=hall)
    return _Subject(hall=hall, hall_path=path_of(lineage), department=department or "", item=service_item)


async def _screen(rt: Runtime, *, citizen_id: int | None, text: str) -> bool:
    """WeChat content security (msg_sec_check v2) for a citizen with a WeChat identity: `risky` is refused,
    `review` is taken and flagged for staff (answers True). A check WeChat could not make flags the message
    too: a herder's question must not wait for WeChat, and staff see what was not checked."""
    if citizen_id is None:
        return False
    openid = await wechat_openid_of(rt, citizen_id=citizen_id)
    if openid is None:
        return False
    try:
        suggest = await rt.wechat.msg_sec_check(openid, text, rt.settings.consult.security_scene)
    except AppError as error:
        log.warning("content security not reached; message flagged for review",
                    extra={"ehall": {"code": error.code}})
        return True
    if suggest == "risky":
        raise AppError("consult_message_refused", 422)
    return suggest != "pass"


async def _serialize_assignment(uow: UnitOfWork) -> None:
    """One assignment at a time, so two conversations opened at once cannot both take a staff member's
    last free place. PostgreSQL: a transaction-scoped advisory lock; SQLite writes one at a time anyway."""
    if uow.tx.capabilities.dialect == "postgres":
        await uow.tx.execute_query("SELECT pg_advisory_xact_lock(hashtext('ehall:consult:assign'))")


async def _pick_assignee(rt: Runtime, uow: UnitOfWork, *, hall_path: str, department: str,
                         excluding: int | None = None) -> int | None:
    """The online staff member whose grants reach the conversation, with the fewest open and pending
    conversations below the per-person limit (the lowest id among equals); None: the queue."""
    online = await rt.presence.online("staff")
    online.discard(excluding)  # type: ignore[arg-type]
    if not online:
        return None
    lineage = lineage_of(hall_path)
    grants = await active_staff_grants(rt, staff_ids=online, tx=uow)
    candidates = sorted(staff_id for staff_id, held in grants.items()
                        if Principal("staff", staff_id, held).covers(lineage, department, CONSULT_ROLES))
    if not candidates:
        return None
    await _serialize_assignment(uow)
    rows = await Conversation.filter(assignee_id__in=candidates, status__in=ACTIVE_STATUSES) \
        .using_db(uow.tx).annotate(load=Count("id")).group_by("assignee_id").values("assignee_id", "load")
    loads = {row["assignee_id"]: row["load"] for row in rows}
    limit = rt.settings.consult.max_open_per_staff
    free = [(loads.get(staff_id, 0), staff_id) for staff_id in candidates if loads.get(staff_id, 0) < limit]
    return min(free)[1] if free else None


async def _waiting_notice(rt: Runtime, conversation: Conversation, language: str) -> WaitingNotice:
    hall = await catalog.get_hall_detail(rt, code=conversation.hall_code)
    if conversation.department_code:
        department = await catalog.get_department(rt, code=conversation.department_code)
        name = {"mn": department.name_mn, "en": department.name_en}.get(language) or department.name
    else:
        name = {"mn": hall.name_mn, "en": hall.name_en}.get(language) or hall.name
    hours = "、".join(hall.hours_workday) if language == "zh" else ", ".join(hall.hours_workday)
    next_opening = ""
    if not hall.open_now and hall.next_opening_at is not None:
        local = hall.next_opening_at.astimezone(clock.business_zone())
        next_opening = consult_text(rt, "next_opening", language, time=f"{local:%Y-%m-%d %H:%M}")
    return WaitingNotice(hall=hall.code, hours_workday=hall.hours_workday, open_now=hall.open_now,
                         next_opening_at=hall.next_opening_at,
                         text=consult_text(rt, "waiting", language, department=name, hours=hours,
                                           next_opening=next_opening).strip())


# --- the citizen's side -------------------------------------------------------------------------

async def _opened_by(citizen_id: int, client_msg_id: str) -> Conversation | None:
    return await Conversation.get_or_none(citizen_id=citizen_id, opening_client_msg_id=client_msg_id)


async def _opened(rt: Runtime, conversation: Conversation, language: str) -> ConversationOpened:
    first = await ConversationMessage.filter(conversation_id=conversation.id).order_by("id").first()
    assert first is not None
    faq = matching_faq(load_faq(rt.settings.resolved_config_dir()), text=first.text,
                       department=conversation.department_code or None, service_item=conversation.item_code)
    waiting = await _waiting_notice(rt, conversation, language) if conversation.assignee_id is None else None
    return ConversationOpened(conversation=_out(conversation), message=_message_out(first),
                              faq=[_faq_out(entry, language) for entry in faq[:5]], waiting=waiting)


async def _add_message(uow: UnitOfWork, conversation: Conversation, *, sender_kind: str, sender_id: int,
                       client_msg_id: str, text: str, review: bool = False,
                       image: StoredFile | None = None) -> ConversationMessage:
    return await ConversationMessage.create(
        conversation_id=conversation.id, sender_kind=sender_kind, sender_id=sender_id, client_msg_id=client_msg_id,
        text=text, review=review, created_at=clock.now(), image_key=image.key if image else None,
        image_type=image.content_type if image else None, image_size=image.size if image else None,
        image_sha256=image.sha256 if image else None, using_db=uow.tx)


async def _start(rt: Runtime, uow: UnitOfWork, subject: _Subject, *, citizen_id: int | None, channel: str,
                 oa_openid: str | None, opening_client_msg_id: str | None) -> Conversation:
    """A new open conversation, given to an online staff member of its department or queued."""
    now = clock.now()
    assignee = await _pick_assignee(rt, uow, hall_path=subject.hall_path, department=subject.department)
    conversation = await Conversation.create(
        citizen_id=citizen_id, channel=channel, oa_openid=oa_openid, hall_code=subject.hall,
        hall_path=subject.hall_path, department_code=subject.department, item_code=subject.item, status="open",
        assignee_id=assignee, opening_client_msg_id=opening_client_msg_id, business_date=clock.today(),
        created_at=now, last_message_at=now, last_citizen_message_at=now, using_db=uow.tx)
    _publish_to_inboxes(uow, conversation, "conversation.assigned" if assignee else "conversation.queued",
                        queues=assignee is None)
    return conversation


async def open_conversation(rt: Runtime, *, citizen_id: int, department: str | None, service_item: str | None,
                            hall: str | None, text: str, client_msg_id: str, language: str) -> ConversationOpened:
    """A citizen's question opens a conversation. A retry with the same client_msg_id answers the
    conversation the first try opened."""
    existing = await _opened_by(citizen_id, client_msg_id)
    if existing is not None:
        return await _opened(rt, existing, language)
    subject = await _subject(rt, department=department, service_item=service_item, hall=hall)
    review = await _screen(rt, citizen_id=citizen_id, text=text)
    try:
        async with unit_of_work(rt) as uow:
            conversation = await _start(rt, uow, subject, citizen_id=citizen_id, channel="app", oa_openid=None,
                                        opening_client_msg_id=client_msg_id)
            message = await _add_message(uow, conversation, sender_kind="citizen", sender_id=citizen_id,
                                         client_msg_id=client_msg_id, text=text, review=review)
            if review:
                conversation.flagged = True
                await conversation.save(using_db=uow.tx, update_fields=["flagged"])
            _publish_conversation(uow, conversation, "message.new", message=_message_out(message).model_dump(mode="json"))
    except IntegrityError:
        # the same opening, sent twice at once: the other try made it
        existing = await _opened_by(citizen_id, client_msg_id)
        if existing is None:
            raise
        conversation = existing
    return await _opened(rt, conversation, language)


async def _own(citizen_id: int, conversation_id: int, uow: UnitOfWork | None = None, *,
               lock: bool = False) -> Conversation:
    query = _q(Conversation.filter(id=conversation_id, citizen_id=citizen_id), uow)
    conversation = await (query.select_for_update() if lock else query).first()
    if conversation is None:
        raise AppError("conversation_not_found", 404)
    return conversation


async def list_my_conversations(rt: Runtime, *, citizen_id: int, query: ConversationQuery) -> ConversationList:
    mine = Conversation.filter(citizen_id=citizen_id)
    rows = await mine.order_by("-last_message_at", "-id").offset((query.page - 1) * query.page_size).limit(query.page_size)
    return ConversationList(items=[_out(c) for c in rows], page=query.page, page_size=query.page_size,
                            total=await mine.count())


async def get_my_conversation(rt: Runtime, *, citizen_id: int, conversation_id: int) -> ConversationOut:
    return _out(await _own(citizen_id, conversation_id))


async def _messages(conversation_id: int, query: MessagesQuery) -> MessagePage:
    rows = await ConversationMessage.filter(conversation_id=conversation_id, id__gt=query.after) \
        .order_by("id").limit(query.limit + 1)
    return MessagePage(items=[_message_out(m) for m in rows[:query.limit]], has_more=len(rows) > query.limit)


async def list_my_messages(rt: Runtime, *, citizen_id: int, conversation_id: int, query: MessagesQuery) -> MessagePage:
    conversation = await _own(citizen_id, conversation_id)
    return await _messages(conversation.id, query)


async def _sent_before(conversation_id: int, sender_kind: str, sender_id: int, client_msg_id: str,
                       uow: UnitOfWork | None = None) -> ConversationMessage | None:
    return await _q(ConversationMessage.filter(conversation_id=conversation_id, sender_kind=sender_kind,
                                               sender_id=sender_id, client_msg_id=client_msg_id), uow).first()


async def _take_from_citizen(rt: Runtime, uow: UnitOfWork, conversation: Conversation, *, sender_kind: str,
                             sender_id: int, client_msg_id: str, text: str, review: bool,
                             image: StoredFile | None = None) -> ConversationMessage:
    """The citizen's (or follower's) message: the conversation waits for staff again, reopened if resolved."""
    message = await _add_message(uow, conversation, sender_kind=sender_kind, sender_id=sender_id,
                                 client_msg_id=client_msg_id, text=text, review=review, image=image)
    reopened = conversation.status == "resolved"
    changed = conversation.status != "open"
    conversation.status = "open"
    conversation.last_message_at = conversation.last_citizen_message_at = message.created_at
    conversation.flagged = conversation.flagged or review
    if reopened:
        conversation.resolved_at = None
    await conversation.save(using_db=uow.tx, update_fields=[
        "status", "last_message_at", "last_citizen_message_at", "flagged", "resolved_at"])
    _publish_conversation(uow, conversation, "message.new", message=_message_out(message).model_dump(mode="json"))
    if changed:
        _publish_conversation(uow, conversation, "status", status="open")
    # the queues hear of a conversation joining or leaving them, not of each message in it (their
    # snapshot has the latest): one publish per message to the assignee's inbox, whatever the hall's size
    _publish_to_inboxes(uow, conversation, "conversation.reopened" if reopened else "conversation.message",
                        queues=reopened and conversation.assignee_id is None)
    return message


async def send_citizen_message(rt: Runtime, *, citizen_id: int, conversation_id: int, text: str,
                               client_msg_id: str) -> MessageOut:
    """A citizen's message; the conversation waits for staff again. A retry with the same client_msg_id
    answers the first message: the unique index refuses the second insert, which rolls back, and the
    first is read back (a retry is rare, so the usual send does not look for one first)."""
    review = await _screen(rt, citizen_id=citizen_id, text=text)
    return await _citizen_send(rt, citizen_id=citizen_id, conversation_id=conversation_id, text=text,
                               client_msg_id=client_msg_id, review=review)


async def _citizen_send(rt: Runtime, *, citizen_id: int, conversation_id: int, text: str, client_msg_id: str,
                        review: bool, image: StoredFile | None = None) -> MessageOut:
    try:
        async with unit_of_work(rt) as uow:
            conversation = await _own(citizen_id, conversation_id, uow, lock=True)
            message = await _take_from_citizen(rt, uow, conversation, sender_kind="citizen", sender_id=citizen_id,
                                               client_msg_id=client_msg_id, text=text, review=review, image=image)
    except IntegrityError:
        before = await _sent_before(conversation_id, "citizen", citizen_id, client_msg_id)
        if before is None:
            raise
        return _message_out(before)
    return _message_out(message)


# --- the staff's side ---------------------------------------------------------------------------

async def _staff_conversation(principal: Principal, conversation_id: int, uow: UnitOfWork | None = None, *,
                              lock: bool = False) -> Conversation:
    query = _q(Conversation.filter(id=conversation_id), uow)
    conversation = await (query.select_for_update() if lock else query).first()
    if conversation is None:
        raise AppError("conversation_not_found", 404)
    require_conversation_scope(principal, hall_path=conversation.hall_path, department=conversation.department_code)
    return conversation


async def list_staff_conversations(rt: Runtime, *, principal: Principal,
                                   query: StaffConversationQuery) -> ConversationList:
    found = Conversation.filter(scope_filter(principal))
    if query.status is not None:
        found = found.filter(status=query.status)
    if query.department is not None:
        found = found.filter(department_code=query.department)
    if query.assigned == "me":
        found = found.filter(assignee_id=principal.id)
    elif query.assigned == "none":
        found = found.filter(assignee_id__isnull=True)
    rows = await found.order_by("-last_message_at", "-id").offset((query.page - 1) * query.page_size) \
        .limit(query.page_size)
    return ConversationList(items=[_out(c) for c in rows], page=query.page, page_size=query.page_size,
                            total=await found.count())


async def list_staff_messages(rt: Runtime, *, principal: Principal, conversation_id: int,
                              query: MessagesQuery) -> MessagePage:
    conversation = await _staff_conversation(principal, conversation_id)
    return await _messages(conversation.id, query)


def _not_resolved(conversation: Conversation) -> None:
    if conversation.status == "resolved":
        raise AppError("conversation_resolved", 409)


def _in_reply_window(rt: Runtime, conversation: Conversation) -> bool:
    window = timedelta(hours=rt.settings.official_account.reply_window_hours)
    return clock.now() - conversation.last_citizen_message_at < window


async def _record_answered(uow: UnitOfWork, conversation: Conversation) -> None:
    """The offline answer: notify tells the citizen (WeChat subscribe message or SMS) that there is one."""
    await uow.record("consult.answered", f"conversation:{conversation.id}", citizen=conversation.citizen_id,
                     department=conversation.department_code, hall=conversation.hall_code,
                     conversation=conversation.id)


async def send_staff_message(rt: Runtime, *, principal: Principal, conversation_id: int, text: str,
                             client_msg_id: str) -> MessageOut:
    """A staff answer. Unassigned, the conversation becomes the sender's. A citizen without an open
    socket hears of it through notify (event consult.answered); an official-account follower gets it as a
    customer-service message while WeChat's 48-hour window is open, else through notify as well."""
    return await _staff_send(rt, principal=principal, conversation_id=conversation_id, text=text,
                             client_msg_id=client_msg_id)


async def _staff_send(rt: Runtime, *, principal: Principal, conversation_id: int, text: str, client_msg_id: str,
                      image: StoredFile | None = None) -> MessageOut:
    reply_to_follower = False
    try:
        async with unit_of_work(rt) as uow:
            conversation = await _staff_conversation(principal, conversation_id, uow, lock=True)
            message = await _add_message(uow, conversation, sender_kind="staff", sender_id=principal.id,
                                         client_msg_id=client_msg_id, text=text, image=image)
            _not_resolved(conversation)   # after the insert: a retry of an answer sent before resolving finds it
            claimed = conversation.assignee_id is None
            conversation.assignee_id = conversation.assignee_id or principal.id
            conversation.status = "pending"
            conversation.last_message_at = message.created_at
            conversation.first_answered_at = conversation.first_answered_at or message.created_at
            conversation.staff_read_up_to = message.id
            await conversation.save(using_db=uow.tx, update_fields=[
                "assignee_id", "status", "last_message_at", "first_answered_at", "staff_read_up_to"])
            _publish_conversation(uow, conversation, "message.new", message=_message_out(message).model_dump(mode="json"))
            _publish_to_inboxes(uow, conversation, "conversation.assigned" if claimed else "conversation.message",
                                queues=claimed)
            if conversation.channel == "oa" and conversation.oa_openid and text and _in_reply_window(rt, conversation):
                reply_to_follower = True
            elif conversation.citizen_id is not None and not await rt.presence.is_online("citizen", conversation.citizen_id):
                await _record_answered(uow, conversation)
    except IntegrityError:
        before = await _sent_before(conversation_id, "staff", principal.id, client_msg_id)
        if before is None:
            raise
        return _message_out(before)
    if reply_to_follower:
        await send_reply_to_follower(rt, conversation=conversation, text=text)
    return _message_out(message)


async def send_image(rt: Runtime, *, principal: Principal, conversation_id: int, data: bytes, declared: str | None,
                     client_msg_id: str) -> MessageOut:
    """A photo (of a document) from either side: a JPEG or PNG by its bytes (kit.filetypes), at most
    files.max_upload_bytes, kept in the Runtime's FileStore. Idempotent on client_msg_id like text; a
    file stored for a change that did not happen is removed again."""
    allowed = [kind for kind in IMAGE_TYPES if kind in rt.settings.files.allowed_types]
    content_type = check_upload(data, declared=declared, allowed=allowed, max_bytes=rt.settings.files.max_upload_bytes)
    citizen = principal.kind == "citizen"
    conversation = await (_own(principal.id, conversation_id) if citizen
                          else _staff_conversation(principal, conversation_id))
    before = await _sent_before(conversation.id, principal.kind, principal.id, client_msg_id)
    if before is not None:
        return _message_out(before)
    if not citizen:
        _not_resolved(conversation)
    stored = await rt.files.put(data, content_type=content_type)
    try:
        sent = await (_citizen_send(rt, citizen_id=principal.id, conversation_id=conversation_id, text="",
                                    client_msg_id=client_msg_id, review=False, image=stored) if citizen
                      else _staff_send(rt, principal=principal, conversation_id=conversation_id, text="",
                                       client_msg_id=client_msg_id, image=stored))
    except BaseException:  # re-raised: whatever stopped the change, its file goes too
        await rt.files.delete(stored.key)
        raise
    if sent.image is None or not await ConversationMessage.exists(id=sent.id, image_key=stored.key):
        await rt.files.delete(stored.key)   # a retry that found the first try's message
    return sent


async def read_image(rt: Runtime, *, principal: Principal, conversation_id: int, message_id: int) -> tuple[bytes, str]:
    """An image of a conversation the reader may see (the citizen's own, or staff in scope)."""
    conversation = await (_own(principal.id, conversation_id) if principal.kind == "citizen"
                          else _staff_conversation(principal, conversation_id))
    message = await ConversationMessage.get_or_none(id=message_id, conversation_id=conversation.id)
    if message is None or not message.image_key:
        raise AppError("conversation_image_not_found", 404)
    try:
        return await rt.files.read(message.image_key), message.image_type or "application/octet-stream"
    except FileNotStored:
        raise AppError("conversation_image_not_found", 404) from None


async def send_reply_to_follower(rt: Runtime, *, conversation: Conversation, text: str) -> bool:
    """A staff answer to an official-account follower as a customer-service message (after the answer is
    saved: WeChat is never called inside a transaction). Refused (45015: WeChat counts the 48 hours
    otherwise than we do) or unreachable, the answer goes through notify when the follower is a citizen."""
    assert conversation.oa_openid is not None
    try:
        await rt.official_account.send_customer_service_text(conversation.oa_openid, text)
        return True
    except AppError as error:
        log.warning("customer-service message not sent", extra={"ehall": {"code": error.code,
                                                                          "conversation": conversation.id}})
    if conversation.citizen_id is not None:
        async with unit_of_work(rt) as uow:
            await _record_answered(uow, conversation)
    return False


async def claim_conversation(rt: Runtime, *, principal: Principal, conversation_id: int) -> ConversationOut:
    async with unit_of_work(rt) as uow:
        conversation = await _staff_conversation(principal, conversation_id, uow, lock=True)
        _not_resolved(conversation)
        if conversation.assignee_id == principal.id:
            return _out(conversation)
        if conversation.assignee_id is not None:
            raise AppError("conversation_claimed", 409, assignee=conversation.assignee_id)
        conversation.assignee_id = principal.id
        await conversation.save(using_db=uow.tx, update_fields=["assignee_id"])
        _publish_conversation(uow, conversation, "assigned", assignee=principal.id)
        _publish_to_inboxes(uow, conversation, "conversation.claimed", queues=True)
    return _out(conversation)


async def transfer_conversation(rt: Runtime, *, principal: Principal, conversation_id: int,
                                department: str | None, staff: int | None) -> ConversationOut:
    """To another department (an online member of it, or its queue), or to one staff member whose grants
    reach the conversation. It waits for staff again (open)."""
    target = await catalog.get_department(rt, code=department) if department is not None else None
    target_path = path_of(await catalog.hall_lineage(rt, code=target.hall)) if target is not None else None
    async with unit_of_work(rt) as uow:
        conversation = await _staff_conversation(principal, conversation_id, uow, lock=True)
        _not_resolved(conversation)
        previous = conversation.assignee_id
        if target is not None:
            assert target_path is not None
            if target.code != conversation.department_code:
                conversation.item_code = None   # the item was the previous department's
            conversation.hall_code, conversation.hall_path = target.hall, target_path
            conversation.department_code = target.code
            conversation.assignee_id = await _pick_assignee(rt, uow, hall_path=target_path, department=target.code,
                                                            excluding=principal.id)
        else:
            assert staff is not None
            grants = (await active_staff_grants(rt, staff_ids=[staff], tx=uow)).get(staff)
            if grants is None:
                raise AppError("staff_not_found", 404)
            if not covers_conversation(Principal("staff", staff, grants), hall_path=conversation.hall_path,
                                       department=conversation.department_code):
                raise AppError("consult_transfer_out_of_scope", 422)
            conversation.assignee_id = staff
        conversation.status = "open"
        await conversation.save(using_db=uow.tx, update_fields=[
            "hall_code", "hall_path", "department_code", "item_code", "assignee_id", "status"])
        _publish_conversation(uow, conversation, "assigned", assignee=conversation.assignee_id)
        _publish_to_inboxes(uow, conversation, "conversation.transferred", queues=True,
                            also=(previous,) if previous else ())
    return _out(conversation)


async def resolve_conversation(rt: Runtime, *, principal: Principal, conversation_id: int) -> ConversationOut:
    async with unit_of_work(rt) as uow:
        conversation = await _staff_conversation(principal, conversation_id, uow, lock=True)
        _not_resolved(conversation)
        conversation.status = "resolved"
        conversation.resolved_at = clock.now()
        conversation.assignee_id = conversation.assignee_id or principal.id
        await conversation.save(using_db=uow.tx, update_fields=["status", "resolved_at", "assignee_id"])
        _publish_conversation(uow, conversation, "resolved")
        _publish_to_inboxes(uow, conversation, "conversation.resolved", queues=True)
    return _out(conversation)


async def mark_read(rt: Runtime, *, principal: Principal, conversation_id: int, up_to: int) -> None:
    """The reader has seen every message up to `up_to` (never moves back)."""
    async with unit_of_work(rt) as uow:
        conversation = await (_own(principal.id, conversation_id, uow, lock=True) if principal.kind == "citizen"
                              else _staff_conversation(principal, conversation_id, uow, lock=True))
        last = await ConversationMessage.filter(conversation_id=conversation.id, id__lte=up_to) \
            .using_db(uow.tx).order_by("-id").first()
        if last is None:
            return
        field = "citizen_read_up_to" if principal.kind == "citizen" else "staff_read_up_to"
        if getattr(conversation, field) >= last.id:
            return
        setattr(conversation, field, last.id)
        await conversation.save(using_db=uow.tx, update_fields=[field])
        uow.publish(_conversation_channel(conversation.id), {"event": "read", "by": principal.kind, "up_to": last.id})


# --- FAQ, canned answers, supervision -------------------------------------------------------------

async def search_faq(rt: Runtime, *, q: str | None, department: str | None, service_item: str | None,
                     language: str) -> FaqList:
    found = matching_faq(load_faq(rt.settings.resolved_config_dir()), text=q, department=department,
                         service_item=service_item)
    return FaqList(items=[_faq_out(entry, language) for entry in found])


async def list_canned_answers(rt: Runtime, *, principal: Principal, department: str, language: str) -> CannedAnswerList:
    found = await catalog.get_department(rt, code=department)
    lineage = await catalog.hall_lineage(rt, code=found.hall)
    if not principal.covers(lineage, found.code, CONSULT_ROLES):
        raise AppError("out_of_scope", 403)
    return CannedAnswerList(items=[
        CannedAnswerOut(id=answer.id, department=answer.department,
                        title=answer.title.get(language) or answer.title["zh"],
                        text=answer.text.get(language) or answer.text["zh"])
        for answer in load_canned(rt.settings.resolved_config_dir()) if answer.department in (None, found.code)])


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


async def consulting_report(rt: Runtime, *, principal: Principal, query: SupervisionQuery) -> ConsultingReport:
    """First answer and resolution times per department and local day the conversations were opened."""
    found = Conversation.filter(scope_filter(principal, SUPERVISION_ROLES),
                                business_date__gte=query.start, business_date__lte=query.end)
    if query.department is not None:
        found = found.filter(department_code=query.department)
    rows = await found.values("department_code", "hall_code", "business_date", "created_at", "first_answered_at",
                              "resolved_at")
    days: dict[tuple[str, str, Any], list[dict]] = defaultdict(list)
    for row in rows:
        days[(row["department_code"], row["hall_code"], row["business_date"])].append(row)
    items = []
    for (department, hall, day), opened in sorted(days.items(), key=lambda kv: (kv[0][2], kv[0][0], kv[0][1])):
        waits = [(r["first_answered_at"] - r["created_at"]).total_seconds() for r in opened if r["first_answered_at"]]
        resolutions = [(r["resolved_at"] - r["created_at"]).total_seconds() for r in opened if r["resolved_at"]]
        items.append(ConsultingDayOut(
            department=department, hall=hall, date=day, opened=len(opened), answered=len(waits),
            answered_within_hour=sum(1 for wait in waits if wait <= _ANSWER_PROMISE.total_seconds()),
            first_answer_seconds_median=_median(waits), first_answer_seconds_max=max(waits) if waits else None,
            resolved=len(resolutions), resolution_seconds_median=_median(resolutions)))
    return ConsultingReport(items=items)


# --- live feeds -----------------------------------------------------------------------------------

async def conversation_feed(rt: Runtime, *, principal: Principal, conversation_id: int) -> Feed:
    """Both sides of a conversation: a snapshot (the conversation and its latest messages), then new
    messages, typing, read-up-to, assignment and resolution. The client sends {"type": "typing"} and
    {"type": "read", "up_to": <message id>}."""
    if principal.kind == "citizen":
        await _own(principal.id, conversation_id)
    else:
        await _staff_conversation(principal, conversation_id)

    async def snapshot() -> ConversationSnapshot:
        conversation = await (_own(principal.id, conversation_id) if principal.kind == "citizen"
                              else _staff_conversation(principal, conversation_id))
        latest = await ConversationMessage.filter(conversation_id=conversation_id).order_by("-id") \
            .limit(rt.settings.consult.snapshot_messages)
        return ConversationSnapshot(conversation=_out(conversation),
                                    messages=[_message_out(m) for m in reversed(latest)])

    async def update(message: dict[str, Any]) -> list[dict[str, Any]]:
        if message.get("event") == "typing" and message.get("by") == principal.kind \
                and message.get("by_id") == principal.id:
            return []   # one's own typing
        return [message]

    async def receive(message: dict[str, Any]) -> None:
        if message.get("type") == "typing":
            await rt.broker.publish(_conversation_channel(conversation_id),
                                    {"event": "typing", "by": principal.kind, "by_id": principal.id})
        elif message.get("type") == "read":
            up_to = message.get("up_to")
            if not isinstance(up_to, int) or isinstance(up_to, bool) or not 0 < up_to < 2**63:
                raise AppError("validation_failed", 422)
            await mark_read(rt, principal=principal, conversation_id=conversation_id, up_to=up_to)

    return Feed(channels=(_conversation_channel(conversation_id),), snapshot=snapshot, update=update, receive=receive)


async def inbox_feed(rt: Runtime, *, principal: Principal) -> Feed:
    """A staff member's inbox: a snapshot of their open and pending conversations and the queues their
    grants reach, then each conversation assigned to them, taken from or put in those queues."""
    if principal.kind != "staff" or not principal.has_role(*CONSULT_ROLES):
        raise AppError("forbidden_role", 403)
    halls = {grant.hall or "*" for grant in principal.grants if grant.role in CONSULT_ROLES}
    channels = (f"consult:staff:{principal.id}", *(f"consult:hall:{hall}" for hall in sorted(halls)))

    async def snapshot() -> InboxSnapshot:
        assigned = await Conversation.filter(assignee_id=principal.id, status__in=ACTIVE_STATUSES) \
            .order_by("-last_message_at", "-id")
        queue = await Conversation.filter(scope_filter(principal), assignee_id__isnull=True, status="open") \
            .order_by("created_at", "id").limit(_QUEUE_SHOWN)
        return InboxSnapshot(assigned=[_out(c) for c in assigned], queue=[_out(c) for c in queue])

    seen: OrderedDict[str, None] = OrderedDict()

    async def update(message: dict[str, Any]) -> list[dict[str, Any]]:
        channel = message.get("channel", "")
        if channel.startswith("consult:hall:") and not covers_conversation(
                principal, hall_path=message.get("hall_path", ""), department=message.get("department", "")):
            return []
        if message.get("id") in seen:
            return []
        seen[message.get("id", "")] = None
        if len(seen) > _SEEN_KEPT:
            seen.popitem(last=False)
        return [{key: value for key, value in message.items() if key not in ("hall_path", "channel")}]

    return Feed(channels=channels, snapshot=snapshot, update=update)


# --- the official account's followers ---------------------------------------------------------------

async def take_follower_message(rt: Runtime, *, openid: str, msg_id: str, text: str,
                                citizen_id: int | None, uow: UnitOfWork) -> ConversationMessage:
    """A follower's text becomes a message of their active conversation (reopened when resolved), or of
    a new one at the official account's hall and department. Runs in the callback's unit of work."""
    conversation = await Conversation.filter(channel="oa", oa_openid=openid).using_db(uow.tx) \
        .order_by("-last_message_at", "-id").select_for_update().first()
    if conversation is None:
        settings = rt.settings.official_account
        subject = await _subject(rt, department=settings.department or None, service_item=None, hall=settings.hall)
        conversation = await _start(rt, uow, subject, citizen_id=citizen_id, channel="oa", oa_openid=openid,
                                    opening_client_msg_id=None)
    elif conversation.citizen_id is None and citizen_id is not None:
        conversation.citizen_id = citizen_id
        await conversation.save(using_db=uow.tx, update_fields=["citizen_id"])
    return await _take_from_citizen(rt, uow, conversation, sender_kind="follower", sender_id=0,
                                    client_msg_id=f"oa-{msg_id}"[:64], text=text, review=False)
