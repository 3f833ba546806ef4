"""Queue tickets (取号/叫号): issuing and numbering, window calling, the holder's view, the live feeds.

Numbers: a counter row per hall / prefix / business date, incremented by one UPDATE under its row lock
in the transaction that inserts the ticket, plus a unique index on (hall, prefix, date, seq): a rolled
back issue gives its number back, so the day's numbers are gapless and never repeat.

Every ticket action is a compare-and-swap on the ticket's status (`UPDATE ... WHERE id = ? AND status
IN (...)`): an action on a ticket that has moved on changes nothing and answers 409 with the ticket's
current state. Call-next picks the head of the queue with `FOR UPDATE SKIP LOCKED` on PostgreSQL (two
windows calling at once lock different rows) and claims it with the same compare-and-swap, retried a
few times (on SQLite, where writers are serialised, the swap alone decides). The actions of one window
run one after the other: each locks the window's row first.

Order in a queue: priority (绿色通道 green channel, then elderly/disabled, then appointments, then
everyone else), then arrival. A transfer keeps the arrival time, so the ticket keeps its place.
"""
from __future__ import annotations

import math
from datetime import date
from functools import cache
from pathlib import Path

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.functions import Count

from backend.catalog import service as catalog
from backend.kit import clock
from backend.kit.auth import Principal
from backend.kit.db import in_transaction_now
from backend.kit.errors import AppError
from backend.kit.i18n import LANGUAGES, MessageCatalogue
from backend.kit.sockets import Feed
from backend.kit.uow import UnitOfWork, unit_of_work
from backend.queueing.models import OPEN_STATUSES, Ticket
from backend.queueing.permissions import (
    require_kiosk_scope, require_queue_hall, require_queue_scope, require_window_scope,
)
from backend.queueing.schemas import (
    BoardCategoryOut, CallOut, CallText, CategoryQueueOut, ConsoleOut, DayClosedOut, DisplayBoardOut,
    HallQueueOut, QueuedTicketOut, TicketList, TicketOut,
)
from backend.runtime import Runtime

__all__ = [
    "issue_ticket", "take_remote_ticket", "issue_kiosk_ticket", "list_my_tickets", "get_my_ticket",
    "cancel_my_ticket", "call_next_ticket", "recall_ticket", "skip_ticket", "start_ticket", "finish_ticket",
    "transfer_ticket", "requeue_ticket", "set_ticket_priority", "hall_queue", "close_day", "display_feed",
    "ticket_feed", "console_feed",
]

# lower is called first
PRIORITY_RANKS = {"green_channel": 0, "elderly": 1, "disabled": 1, "appointment": 2, "normal": 3}
_QUEUE_ORDER = ("rank", "arrived_at", "id")
# call-next: heads of the queue tried before giving up (each lost only to a concurrent window)
_CALL_ATTEMPTS = 8
_MY_TICKETS = 50


# --- numbering and issuing ---------------------------------------------------------------------------

async def _next_seq(uow: UnitOfWork, *, hall: str, prefix: str, business_date: date) -> int:
    """The next number of the day, from the counter row, locked by the UPDATE until the transaction ends."""
    postgres = uow.tx.capabilities.dialect == "postgres"
    marks = ("$1", "$2", "$3") if postgres else ("?", "?", "?")
    values = [hall, prefix, business_date if postgres else business_date.isoformat()]
    where = "hall_code = {0} AND prefix = {1} AND business_date = {2}".format(*marks)
    increment = f"UPDATE ticket_counter SET last_seq = last_seq + 1 WHERE {where} RETURNING last_seq"
    rows = await uow.tx.execute_query_dict(increment, values)
    if not rows:   # the queue's first ticket of the day (a racing first one inserts the same row: kept once)
        await uow.tx.execute_query(
            "INSERT INTO ticket_counter (hall_code, prefix, business_date, last_seq) VALUES ({0}, {1}, {2}, 0) "
            "ON CONFLICT (hall_code, prefix, business_date) DO NOTHING".format(*marks), values)
        rows = await uow.tx.execute_query_dict(increment, values)
    return int(rows[0]["last_seq"])


def _number(prefix: str, seq: int) -> str:
    return f"{prefix}{seq:03d}"


async def issue_ticket(rt: Runtime, *, hall: str, category: str, source: str, priority: str,
                       citizen_id: int | None = None, appointment_id: int | None = None,
                       tx: UnitOfWork | None = None) -> TicketOut:
    """Issue a ticket in queue `category` (its prefix letter) of `hall`. Once per appointment: a second
    check-in of the same booking answers its ticket. A citizen holds at most one waiting ticket per hall
    and queue (409 ticket_already_waiting), except that checking a booking in adopts the one they wait
    with (_adopt_for_appointment). Joins `tx` when given (check-in books and issues atomically)."""
    queue = await catalog.get_queue_category(rt, hall=hall, prefix=category, tx=tx)
    async with unit_of_work(rt, tx) as uow:
        if appointment_id is not None:
            existing = await Ticket.get_or_none(appointment_id=appointment_id).using_db(uow.tx)
            if existing is not None:
                return await _view(rt, existing, uow)
        if citizen_id is not None:
            waiting = await Ticket.filter(hall_code=hall, category=queue.prefix, waiting_holder=citizen_id) \
                .using_db(uow.tx).first()
            if waiting is not None and appointment_id is not None and waiting.business_date == clock.today():
                adopted = await _adopt_for_appointment(rt, uow, waiting, appointment_id)
                if adopted is not None:
                    return adopted
            elif waiting is not None:
                raise AppError("ticket_already_waiting", 409, ticket=waiting.id, number=waiting.number)
        now, today = clock.now(), clock.today()
        seq = await _next_seq(uow, hall=hall, prefix=queue.prefix, business_date=today)
        try:
            ticket = await Ticket.create(
                using_db=uow.tx, hall_code=hall, prefix=queue.prefix, business_date=today, seq=seq,
                number=_number(queue.prefix, seq), category=queue.prefix, source=source, priority=priority,
                rank=PRIORITY_RANKS[priority], status="waiting", citizen_id=citizen_id,
                appointment_id=appointment_id, waiting_holder=citizen_id, arrived_at=now, created_at=now)
        except IntegrityError:
            # a concurrent request of the same holder (or check-in of the same booking) got there first;
            # the whole unit of work rolls back, the number with it
            if appointment_id is not None:
                raise AppError("ticket_already_issued", 409) from None
            raise AppError("ticket_already_waiting", 409) from None
        await uow.record("ticket.issued", f"ticket:{ticket.id}", hall=hall, number=ticket.number,
                         category=ticket.category, source=source, priority=priority,
                         appointment=appointment_id)
        _publish_waiting(rt, uow, hall)
        if tx is not None:   # joined: the caller's transaction, and the counter's lock, go on
            return await _view(rt, ticket, uow)
    # the holder's view (people ahead, the estimate) is read after the commit has let go of the
    # counter row: each ticket of a queue waits for that lock, so it is held for the insert alone
    return await _view(rt, ticket)


async def _adopt_for_appointment(rt: Runtime, uow: UnitOfWork, waiting: Ticket,
                                 appointment_id: int) -> TicketOut | None:
    """The holder already waits in the booking's queue (a number taken from the phone on the way): that
    ticket becomes the booking's, so they keep their number and the socket they watch, and the day's
    counts hold one ticket for one visit. Its priority rises to `appointment` with the check-in as
    its arrival, exactly where a fresh check-in ticket would stand, never behind where it was; a higher
    priority it had (a clerk marked it elderly) is kept. None when the ticket has just left the queue
    (called meanwhile): the booking then gets a ticket of its own."""
    changes: dict = {"appointment_id": appointment_id}
    if PRIORITY_RANKS["appointment"] < waiting.rank:
        changes |= {"priority": "appointment", "rank": PRIORITY_RANKS["appointment"], "arrived_at": clock.now()}
    if not await Ticket.filter(id=waiting.id, status="waiting", appointment_id__isnull=True) \
            .using_db(uow.tx).update(**changes):
        # a concurrent scan of the same code may have adopted it: answer that
        existing = await Ticket.get_or_none(appointment_id=appointment_id).using_db(uow.tx)
        return await _view(rt, existing, uow) if existing is not None else None
    ticket = await Ticket.get(id=waiting.id).using_db(uow.tx)
    await uow.record("ticket.appointment_linked", f"ticket:{ticket.id}", hall=ticket.hall_code,
                     number=ticket.number, appointment=appointment_id, priority=ticket.priority,
                     previous=waiting.priority)
    _publish_ticket(uow, ticket)
    _publish_waiting(rt, uow, ticket.hall_code)
    return await _view(rt, ticket, uow)


async def take_remote_ticket(rt: Runtime, *, citizen_id: int, hall: str, category: str) -> TicketOut:
    """A ticket from the app or mini-program, only while the hall is open (its hours on a working day)."""
    if not await catalog.hall_open_now(rt, code=hall):
        raise AppError("hall_closed_now", 409)
    return await issue_ticket(rt, hall=hall, category=category, source="remote", priority="normal",
                              citizen_id=citizen_id)


async def issue_kiosk_ticket(rt: Runtime, *, principal: Principal, hall: str, category: str,
                             priority: str) -> TicketOut:
    """A ticket printed by the hall's own machine, for whoever stands at it (no account needed)."""
    require_kiosk_scope(principal, await catalog.hall_lineage(rt, code=hall))
    return await issue_ticket(rt, hall=hall, category=category, source="kiosk", priority=priority)


# --- the holder's view ---------------------------------------------------------------------------------

def _ahead_of(ticket: Ticket) -> Q:
    """Waiting tickets of the same queue and day that are called before `ticket`."""
    return Q(hall_code=ticket.hall_code, category=ticket.category, business_date=ticket.business_date,
             status="waiting") & (
        Q(rank__lt=ticket.rank)
        | Q(rank=ticket.rank, arrived_at__lt=ticket.arrived_at)
        | Q(rank=ticket.rank, arrived_at=ticket.arrived_at, id__lt=ticket.id))


async def _mean_service_minutes(rt: Runtime, hall: str, category: str) -> float:
    """The mean service time of the queue's recently finished tickets, else the catalogue's figure. Kept
    a few seconds per process (settings.queueing.estimate_cache_seconds): it moves by one ticket in
    twenty, and every waiting holder's view asks for it; a finish in this process drops it at once."""
    async def build() -> float:
        finished = await Ticket.filter(hall_code=hall, category=category, status="done",
                                       started_at__isnull=False, finished_at__isnull=False) \
            .order_by("-finished_at").limit(rt.settings.queueing.recent_service_sample) \
            .values_list("started_at", "finished_at")
        durations = [(end - start).total_seconds() / 60 for start, end in finished if end >= start]
        if durations:
            return sum(durations) / len(durations)
        return float((await catalog.get_queue_category(rt, hall=hall, prefix=category)).mean_service_minutes)
    return await rt.estimates.get(("service-minutes", hall, category), build, join=not in_transaction_now())


async def _view(rt: Runtime, ticket: Ticket, uow: UnitOfWork | None = None) -> TicketOut:
    people_ahead = wait = None
    if ticket.status == "waiting":
        people_ahead = await Ticket.filter(_ahead_of(ticket)).using_db(uow.tx if uow else None).count()
        open_for_it = await catalog.count_open_windows(rt, hall_code=ticket.hall_code, category=ticket.category)
        mean = await _mean_service_minutes(rt, ticket.hall_code, ticket.category)
        wait = math.ceil(people_ahead * mean / max(open_for_it, 1))
    at_window = ticket.status in ("called", "serving")
    return TicketOut(
        id=ticket.id, number=ticket.number, status=ticket.status,  # type: ignore[arg-type]
        category=ticket.category, hall=ticket.hall_code, priority=ticket.priority,  # type: ignore[arg-type]
        source=ticket.source, business_date=ticket.business_date,  # type: ignore[arg-type]
        issued_at=ticket.created_at, people_ahead=people_ahead, estimated_wait_minutes=wait,
        window=ticket.window_number if at_window else None, called_at=ticket.called_at if at_window else None)


async def _own_ticket(citizen_id: int, ticket_id: int, uow: UnitOfWork | None = None) -> Ticket:
    ticket = await Ticket.filter(id=ticket_id, citizen_id=citizen_id).using_db(uow.tx if uow else None).first()
    if ticket is None:
        raise AppError("ticket_not_found", 404)
    return ticket


async def list_my_tickets(rt: Runtime, *, citizen_id: int) -> TicketList:
    tickets = await Ticket.filter(citizen_id=citizen_id).order_by("-created_at", "-id").limit(_MY_TICKETS)
    return TicketList(items=[await _view(rt, ticket) for ticket in tickets])


async def get_my_ticket(rt: Runtime, *, citizen_id: int, ticket_id: int) -> TicketOut:
    """The holder's ticket; another's is 404, as if it did not exist."""
    return await _view(rt, await _own_ticket(citizen_id, ticket_id))


async def cancel_my_ticket(rt: Runtime, *, citizen_id: int, ticket_id: int,
                           tx: UnitOfWork | None = None) -> TicketOut:
    """The holder gives up a waiting ticket."""
    async with unit_of_work(rt, tx) as uow:
        ticket = await _own_ticket(citizen_id, ticket_id, uow)
        changed = await Ticket.filter(id=ticket.id, status="waiting").using_db(uow.tx) \
            .update(status="cancelled", waiting_holder=None)
        ticket = await _own_ticket(citizen_id, ticket_id, uow)
        if not changed:
            raise _stale(ticket)
        await uow.record("ticket.cancelled", f"ticket:{ticket.id}", hall=ticket.hall_code, number=ticket.number)
        _publish_ticket(uow, ticket)
        _publish_waiting(rt, uow, ticket.hall_code)
        return await _view(rt, ticket, uow)


# --- window actions -----------------------------------------------------------------------------------

def _stale(ticket: Ticket) -> AppError:
    """409 naming the ticket's current state, so the console can show what really happened."""
    return AppError("ticket_state_conflict", 409, ticket=ticket.id, number=ticket.number,
                    ticket_status=ticket.status, ticket_window=ticket.window_number)


async def _clerks_window(rt: Runtime, uow: UnitOfWork, principal: Principal, hall_code: str, number: str):
    """The window, locked for this unit of work, once the principal's grant reaches its hall and
    department."""
    lineage = await catalog.hall_lineage(rt, code=hall_code)
    require_queue_hall(principal, lineage)
    window = await catalog.get_window(rt, hall_code=hall_code, number=number, lock=True, tx=uow)
    require_window_scope(principal, lineage, window.department)
    return window


def _publish_ticket(uow: UnitOfWork, ticket: Ticket) -> None:
    uow.publish(f"ticket:{ticket.id}", {"event": "ticket.updated", "ticket": ticket.id, "status": ticket.status})
    if ticket.window_number:
        uow.publish(f"window:{ticket.hall_code}/{ticket.window_number}",
                    {"event": "window.ticket", "ticket": ticket.id, "status": ticket.status})


async def _waiting_counts(rt: Runtime, hall: str, uow: UnitOfWork | None = None) -> dict[str, int]:
    counted = dict(await Ticket.filter(hall_code=hall, status="waiting", business_date=clock.today())
                   .using_db(uow.tx if uow else None).annotate(n=Count("id")).group_by("category")
                   .values_list("category", "n"))
    return {c.prefix: int(counted.get(c.prefix, 0))
            for c in await catalog.list_queue_categories(rt, hall=hall)}


def _publish_waiting(rt: Runtime, uow: UnitOfWork, hall: str) -> None:
    """The hall's waiting counts for its boards, read once the change has committed (not while it holds
    its queue's number counter, which every ticket of that queue waits for), and coalesced per hall in
    this process: in a rush of tickets one count serves the changes made while it ran."""
    async def publish_counts() -> None:
        waiting = await _waiting_counts(rt, hall)
        await rt.broker.publish(f"hall:{hall}", {"event": "queue.changed", "waiting": waiting})
    uow.after_commit(lambda: rt.hints.run(("waiting", hall), publish_counts))


@cache
def _display_texts(path: Path) -> MessageCatalogue:
    return MessageCatalogue.load(path)


def _call(rt: Runtime, ticket: Ticket) -> CallOut:
    texts = _display_texts(rt.settings.resolved_config_dir() / "messages" / "display.toml")
    words = {language: texts.render("ticket_called", language, number=ticket.number,
                                    window=ticket.window_number) for language in LANGUAGES}
    return CallOut(ticket=ticket.id, number=ticket.number, category=ticket.category,
                   window=ticket.window_number or "", called_at=ticket.called_at or clock.now(),
                   text=CallText(**words))


def _publish_call(rt: Runtime, uow: UnitOfWork, ticket: Ticket, *, recall: bool) -> None:
    uow.publish(f"hall:{ticket.hall_code}",
                {"event": "ticket.called", "recall": recall, **_call(rt, ticket).model_dump(mode="json")})


async def _mark_turn_near(rt: Runtime, uow: UnitOfWork, hall: str, category: str) -> None:
    """"Your turn is near": once per ticket, when at most N people are ahead of it after a call. Only
    tickets with a holder: a kiosk slip has nobody to tell."""
    limit = rt.settings.queueing.turn_near_for(hall)
    head = await Ticket.filter(hall_code=hall, category=category, status="waiting",
                               business_date=clock.today()).using_db(uow.tx).order_by(*_QUEUE_ORDER) \
        .limit(limit + 1)
    for people_ahead, ticket in enumerate(head):
        if ticket.citizen_id is None or ticket.turn_near_at is not None:
            continue
        if await Ticket.filter(id=ticket.id, turn_near_at__isnull=True).using_db(uow.tx) \
                .update(turn_near_at=clock.now()):
            await uow.record("ticket.turn_near", f"ticket:{ticket.id}", hall=hall, number=ticket.number,
                             citizen=ticket.citizen_id, people_ahead=people_ahead)


async def call_next_ticket(rt: Runtime, *, principal: Principal, hall_code: str, number: str,
                           tx: UnitOfWork | None = None) -> TicketOut:
    """The open window calls the next waiting ticket of the queues it serves (and any transferred to it),
    by priority, then arrival. 404 queue_empty when there is none."""
    async with unit_of_work(rt, tx) as uow:
        window = await _clerks_window(rt, uow, principal, hall_code, number)
        if window.status != "open":
            raise AppError("window_not_open", 409, window_status=window.status)
        today = clock.today()
        current = await Ticket.filter(hall_code=hall_code, window_number=number, business_date=today,
                                      status__in=("called", "serving")).using_db(uow.tx).first()
        if current is not None:
            raise AppError("window_busy", 409, ticket=current.id, number=current.number,
                           ticket_status=current.status)
        candidates = Ticket.filter(
            Q(hall_code=hall_code, status="waiting", business_date=today)
            & (Q(category__in=window.categories, directed_window__isnull=True) | Q(directed_window=number)))
        for _ in range(_CALL_ATTEMPTS):
            head = await candidates.using_db(uow.tx).order_by(*_QUEUE_ORDER) \
                .select_for_update(skip_locked=True).first()
            if head is None:
                # every waiting row may be locked by a change that leaves it waiting (a clerk marking its
                # priority): wait for the head rather than answer an empty queue that is not empty
                head = await candidates.using_db(uow.tx).order_by(*_QUEUE_ORDER).select_for_update().first()
            if head is None:
                raise AppError("queue_empty", 404, categories=", ".join(window.categories))
            claimed = await Ticket.filter(id=head.id, status="waiting").using_db(uow.tx).update(
                status="called", window_number=number, window_department=window.department,
                called_at=clock.now(), waiting_holder=None, directed_window=None)
            if claimed:
                break
        else:
            raise AppError("queue_busy", 409)
        ticket = await Ticket.get(id=head.id).using_db(uow.tx)
        await uow.record("ticket.called", f"ticket:{ticket.id}", hall=hall_code, number=ticket.number,
                         window=number, by=principal.subject, citizen=ticket.citizen_id)
        await _mark_turn_near(rt, uow, hall_code, ticket.category)
        _publish_call(rt, uow, ticket, recall=False)
        _publish_ticket(uow, ticket)
        _publish_waiting(rt, uow, hall_code)
        return await _view(rt, ticket, uow)


async def _swap(uow: UnitOfWork, *, hall_code: str, number: str, ticket_id: int, expected: tuple[str, ...],
                **changes) -> Ticket:
    changed = await Ticket.filter(id=ticket_id, hall_code=hall_code, window_number=number,
                                  status__in=expected).using_db(uow.tx).update(**changes)
    ticket = await Ticket.filter(id=ticket_id, hall_code=hall_code).using_db(uow.tx).first()
    if ticket is None:
        raise AppError("ticket_not_found", 404)
    if not changed:
        raise _stale(ticket)
    return ticket


async def _act(rt: Runtime, *, principal: Principal, hall_code: str, number: str, ticket_id: int,
               expected: tuple[str, ...], event: str, tx: UnitOfWork | None, **changes) -> TicketOut:
    async with unit_of_work(rt, tx) as uow:
        await _clerks_window(rt, uow, principal, hall_code, number)
        ticket = await _swap(uow, hall_code=hall_code, number=number, ticket_id=ticket_id,
                             expected=expected, **changes)
        await uow.record(event, f"ticket:{ticket.id}", hall=hall_code, number=ticket.number, window=number,
                         by=principal.subject)
        _publish_ticket(uow, ticket)
        if event == "ticket.recalled":
            _publish_call(rt, uow, ticket, recall=True)
        view = await _view(rt, ticket, uow)
    if event == "ticket.finished":   # this process's estimates count the new service time at once
        rt.estimates.forget(("service-minutes", hall_code, ticket.category))
    return view


async def recall_ticket(rt: Runtime, *, principal: Principal, hall_code: str, number: str, ticket_id: int,
                        tx: UnitOfWork | None = None) -> TicketOut:
    """Call the window's called ticket again (the board and its speaker repeat it)."""
    return await _act(rt, principal=principal, hall_code=hall_code, number=number, ticket_id=ticket_id,
                      expected=("called",), event="ticket.recalled", tx=tx, recalls=F("recalls") + 1)


async def skip_ticket(rt: Runtime, *, principal: Principal, hall_code: str, number: str, ticket_id: int,
                      tx: UnitOfWork | None = None) -> TicketOut:
    """过号: the called holder did not come; the ticket is missed (it may be requeued once)."""
    return await _act(rt, principal=principal, hall_code=hall_code, number=number, ticket_id=ticket_id,
                      expected=("called",), event="ticket.missed", tx=tx, status="missed",
                      missed_at=clock.now())


async def start_ticket(rt: Runtime, *, principal: Principal, hall_code: str, number: str, ticket_id: int,
                       tx: UnitOfWork | None = None) -> TicketOut:
    return await _act(rt, principal=principal, hall_code=hall_code, number=number, ticket_id=ticket_id,
                      expected=("called",), event="ticket.started", tx=tx, status="serving",
                      started_at=clock.now())


async def finish_ticket(rt: Runtime, *, principal: Principal, hall_code: str, number: str, ticket_id: int,
                        tx: UnitOfWork | None = None) -> TicketOut:
    return await _act(rt, principal=principal, hall_code=hall_code, number=number, ticket_id=ticket_id,
                      expected=("serving",), event="ticket.finished", tx=tx, status="done",
                      finished_at=clock.now())


async def transfer_ticket(rt: Runtime, *, principal: Principal, hall_code: str, number: str, ticket_id: int,
                          category: str | None = None, window: str | None = None,
                          tx: UnitOfWork | None = None) -> TicketOut:
    """Send the window's ticket to another queue or to one window; it waits again with its arrival
    time, so it keeps its place."""
    async with unit_of_work(rt, tx) as uow:
        await _clerks_window(rt, uow, principal, hall_code, number)
        target: dict = {}
        if category is not None:
            target["category"] = (await catalog.get_queue_category(rt, hall=hall_code, prefix=category,
                                                                   tx=uow)).prefix
            target["directed_window"] = None
        else:
            target["directed_window"] = (await catalog.get_window(rt, hall_code=hall_code, number=window or "",
                                                                  tx=uow)).number
        holder = await Ticket.filter(id=ticket_id, hall_code=hall_code).using_db(uow.tx).first() \
            .values_list("citizen_id", flat=True)
        try:
            ticket = await _swap(uow, hall_code=hall_code, number=number, ticket_id=ticket_id,
                                 expected=("called", "serving"), status="waiting", waiting_holder=holder,
                                 called_at=None, started_at=None, **target)
        except IntegrityError:
            raise AppError("ticket_already_waiting", 409) from None   # its holder already waits there
        await uow.record("ticket.transferred", f"ticket:{ticket.id}", hall=hall_code, number=ticket.number,
                         window=number, category=ticket.category, to_window=ticket.directed_window,
                         by=principal.subject)
        _publish_ticket(uow, ticket)
        uow.publish(f"window:{hall_code}/{number}",
                    {"event": "window.ticket", "ticket": ticket.id, "status": "transferred"})
        _publish_waiting(rt, uow, hall_code)
        return await _view(rt, ticket, uow)


async def requeue_ticket(rt: Runtime, *, principal: Principal, ticket_id: int,
                         tx: UnitOfWork | None = None) -> TicketOut:
    """A missed ticket goes back to the end of its priority in its queue: once, within
    settings.queueing.requeue_within_minutes of being missed, on its own business day."""
    async with unit_of_work(rt, tx) as uow:
        ticket = await Ticket.filter(id=ticket_id).using_db(uow.tx).first()
        if ticket is None:
            raise AppError("ticket_not_found", 404)
        lineage = await catalog.hall_lineage(rt, code=ticket.hall_code)
        require_queue_hall(principal, lineage)
        require_window_scope(principal, lineage, ticket.window_department or "")
        if ticket.status != "missed":
            raise _stale(ticket)
        if ticket.requeued:
            raise AppError("ticket_requeued_already", 409, ticket=ticket.id)
        minutes = rt.settings.queueing.requeue_within_minutes
        now = clock.now()
        if ticket.business_date != clock.today() or ticket.missed_at is None \
                or (now - ticket.missed_at).total_seconds() > minutes * 60:
            raise AppError("requeue_too_late", 409, minutes=minutes)
        try:
            changed = await Ticket.filter(id=ticket.id, status="missed", requeued=False).using_db(uow.tx).update(
                status="waiting", requeued=True, arrived_at=now, waiting_holder=ticket.citizen_id,
                called_at=None, directed_window=None)
        except IntegrityError:
            raise AppError("ticket_already_waiting", 409) from None
        ticket = await Ticket.get(id=ticket.id).using_db(uow.tx)
        if not changed:
            raise _stale(ticket)
        await uow.record("ticket.requeued", f"ticket:{ticket.id}", hall=ticket.hall_code, number=ticket.number,
                         by=principal.subject)
        _publish_ticket(uow, ticket)
        _publish_waiting(rt, uow, ticket.hall_code)
        return await _view(rt, ticket, uow)


async def set_ticket_priority(rt: Runtime, *, principal: Principal, ticket_id: int, priority: str,
                              tx: UnitOfWork | None = None) -> TicketOut:
    """A clerk marks a waiting ticket elderly, disabled or green channel (or back to normal): it moves
    within its queue by the new priority and keeps its arrival time. A ticket that has left the queue
    is 409 with its current state."""
    async with unit_of_work(rt, tx) as uow:
        # locked, so that `previous` is the priority this change replaced (a racing call-next skips it)
        ticket = await Ticket.filter(id=ticket_id).using_db(uow.tx).select_for_update().first()
        if ticket is None:
            raise AppError("ticket_not_found", 404)
        lineage = await catalog.hall_lineage(rt, code=ticket.hall_code)
        require_queue_hall(principal, lineage)
        queue = await catalog.get_queue_category(rt, hall=ticket.hall_code, prefix=ticket.category, tx=uow)
        require_queue_scope(principal, lineage, queue.departments)
        changed = await Ticket.filter(id=ticket.id, status="waiting").using_db(uow.tx).update(
            priority=priority, rank=PRIORITY_RANKS[priority])
        previous = ticket.priority
        ticket = await Ticket.get(id=ticket.id).using_db(uow.tx)
        if not changed:
            raise _stale(ticket)
        await uow.record("ticket.priority_changed", f"ticket:{ticket.id}", hall=ticket.hall_code,
                         number=ticket.number, priority=priority, previous=previous, by=principal.subject)
        _publish_ticket(uow, ticket)
        _publish_waiting(rt, uow, ticket.hall_code)
        return await _view(rt, ticket, uow)


async def hall_queue(rt: Runtime, *, principal: Principal, hall_code: str) -> HallQueueOut:
    """Today's waiting tickets of a hall, per queue, in the order they will be called."""
    require_queue_hall(principal, await catalog.hall_lineage(rt, code=hall_code))
    today = clock.today()
    waiting = await Ticket.filter(hall_code=hall_code, status="waiting", business_date=today) \
        .order_by(*_QUEUE_ORDER)
    queues = []
    for category in await catalog.list_queue_categories(rt, hall=hall_code):
        tickets = [QueuedTicketOut(id=t.id, number=t.number, priority=t.priority,  # type: ignore[arg-type]
                                   source=t.source, arrived_at=t.arrived_at,  # type: ignore[arg-type]
                                   window=t.directed_window)
                   for t in waiting if t.category == category.prefix]
        queues.append(CategoryQueueOut(category=category.prefix, name=category.name, name_mn=category.name_mn,
                                       name_en=category.name_en, waiting=len(tickets), tickets=tickets))
    return HallQueueOut(hall=hall_code, business_date=today, categories=queues)


# --- close of day --------------------------------------------------------------------------------------

async def close_day(rt: Runtime, *, hall: str | None = None, business_date: date | None = None,
                    tx: UnitOfWork | None = None) -> DayClosedOut:
    """Close the tickets still open (waiting, called, serving, missed) of business days that are over
    (all of them, or only `business_date`'s), in every hall or one. The rows stay, with the status they
    had in `closed_from`, so the day's counts are kept. Idempotent: a second run closes nothing."""
    filters = Q(business_date__lt=clock.today())
    if business_date is not None:
        filters &= Q(business_date=business_date)
    if hall is not None:
        filters &= Q(hall_code=hall)
    by_status: dict[str, int] = {}
    async with unit_of_work(rt, tx) as uow:
        for status in OPEN_STATUSES:
            closed = await Ticket.filter(filters & Q(status=status)).using_db(uow.tx) \
                .update(status="closed", closed_from=status, waiting_holder=None)
            if closed:
                by_status[status] = closed
        total = sum(by_status.values())
        if total:
            await uow.record("queue.day_closed", f"hall:{hall or '*'}", hall=hall,
                             business_date=business_date.isoformat() if business_date else None,
                             closed=total, by_status=by_status)
    return DayClosedOut(closed=total, by_status=by_status)


# --- live feeds ----------------------------------------------------------------------------------------

async def _display_board(rt: Runtime, hall: str) -> DisplayBoardOut:
    summary = await catalog.get_hall_summary(rt, code=hall)
    categories = await catalog.list_queue_categories(rt, hall=hall)
    called = await Ticket.filter(hall_code=hall, business_date=clock.today(), status__in=("called", "serving")) \
        .order_by("-called_at", "-id").limit(rt.settings.queueing.display_recent_calls)
    return DisplayBoardOut(
        hall=hall, name=summary.name, name_mn=summary.name_mn,
        categories=[BoardCategoryOut(category=c.prefix, name=c.name, name_mn=c.name_mn, name_en=c.name_en)
                    for c in categories],
        waiting=await _waiting_counts(rt, hall), calls=[_call(rt, ticket) for ticket in called])


_BOARD_EVENTS = ("ticket.called", "queue.changed", "window.status_changed")


async def display_feed(rt: Runtime, *, hall: str) -> Feed:
    """The hall display board: a snapshot of recent calls and waiting counts, then each call (with its
    zh/mn/en text), each change of the counts and of the windows, as published."""
    await catalog.get_hall_summary(rt, code=hall)   # 404 for a hall that does not exist
    return Feed(channels=(f"hall:{hall}",), snapshot=lambda: _display_board(rt, hall), broadcast=_board_update)


def _board_update(message: dict) -> list[dict]:
    """Every board of a hall is sent the same: a process serialises each message once for all of them."""
    return [message] if message.get("event") in _BOARD_EVENTS else []


class _Changes:
    """Sends a state again only when it differs from the last one sent."""

    def __init__(self, event: str):
        self.event = event
        self.last: dict | None = None

    def seen(self, state) -> list[dict]:
        dumped = state.model_dump(mode="json")
        if dumped == self.last:
            return []
        self.last = dumped
        return [{"event": self.event, **dumped}]


async def ticket_feed(rt: Runtime, *, principal: Principal, ticket_id: int) -> Feed:
    """The holder's ticket: its position and estimated wait as the queue moves, and the call."""
    if principal.kind != "citizen":
        raise AppError("forbidden_role", 403)
    ticket = await _own_ticket(principal.id, ticket_id)
    changes = _Changes("ticket.updated")

    async def snapshot() -> TicketOut:
        state = await get_my_ticket(rt, citizen_id=principal.id, ticket_id=ticket_id)
        changes.seen(state)
        return state

    async def update(message: dict) -> list[dict]:
        # every hint about the hall may move this ticket: read it again, send it if it changed
        return changes.seen(await get_my_ticket(rt, citizen_id=principal.id, ticket_id=ticket_id))

    return Feed(channels=(f"ticket:{ticket.id}", f"hall:{ticket.hall_code}"), snapshot=snapshot, update=update)


async def _console(rt: Runtime, hall_code: str, number: str) -> ConsoleOut:
    window = await catalog.get_window(rt, hall_code=hall_code, number=number)
    current = await Ticket.filter(hall_code=hall_code, window_number=number, business_date=clock.today(),
                                  status__in=("called", "serving")).first()
    counts = await _waiting_counts(rt, hall_code)
    return ConsoleOut(window=window, current=await _view(rt, current) if current else None,
                      waiting={prefix: counts.get(prefix, 0) for prefix in window.categories})


async def console_feed(rt: Runtime, *, principal: Principal, hall_code: str, number: str) -> Feed:
    """A clerk's console: the window, its current ticket and its queues' counts, whenever they change."""
    lineage = await catalog.hall_lineage(rt, code=hall_code)
    require_queue_hall(principal, lineage)
    window = await catalog.get_window(rt, hall_code=hall_code, number=number)
    require_window_scope(principal, lineage, window.department)
    changes = _Changes("console")

    async def snapshot() -> ConsoleOut:
        state = await _console(rt, hall_code, number)
        changes.seen(state)
        return state

    async def update(message: dict) -> list[dict]:
        return changes.seen(await _console(rt, hall_code, number))

    return Feed(channels=(f"window:{hall_code}/{number}", f"hall:{hall_code}"), snapshot=snapshot,
                update=update)
