"""What a dispatcher writes about the deliveries it holds while it sends them: the hand-over mark,
the outcome, the WeChat consent spent. Every send waits until its own row is written, exactly as with
one statement per delivery, so each mark is durable before the provider is called and each outcome
before the delivery moves on; but the rows that concurrent sends ask for while a write is running go
to the database together in the next one (a group commit). Alone, a row is written at once; under
load, one statement carries a dozen rows, and the round trips, PostgreSQL's work per statement and
the ORM's per query are paid once for them all.

On PostgreSQL each batch is one statement over arrays (`unnest`), the same text whatever the batch's
size, so it is prepared once per connection. On SQLite (one writer, in the same process) the batch's
rows are written one by one in one transaction.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from tortoise.connection import connections
from tortoise.expressions import F

from backend.kit import clock
from backend.kit.uow import unit_of_work
from backend.runtime import Runtime
from notify.models import Delivery, SubscriptionCredit

__all__ = ["Ledger", "Outcome"]

Item = TypeVar("Item")
Result = TypeVar("Result")


class _Batched(Generic[Item, Result]):
    """`await batched(item)` answers `write([...items])`'s result for that item. Items that arrive
    while a write is running wait for it to end and go together in the next one."""

    def __init__(self, write: Callable[[list[Item]], Awaitable[list[Result]]]):
        self._write = write
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def __call__(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None:
            # the task's first step runs on the loop's next turn: the items of this turn go with it
            self._writer = asyncio.get_running_loop().create_task(self._write_all())
        return await future

    async def _write_all(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    results = await self._write([item for item, _ in batch])
                except BaseException as error:
                    # the statement failed (or the loop is closing): each waiting send hears of it,
                    # as it would of its own statement, and handles it as before
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    if isinstance(error, asyncio.CancelledError):
                        raise
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():   # a send cancelled meanwhile: its row is written all the same
                        future.set_result(result)
        finally:
            self._writer = None


@dataclass(frozen=True)
class Outcome:
    """What became of a send. None keeps the column as it was (a failure keeps its `sent_at`, if any;
    only a failure moves `next_attempt_at`); `last_error` is always written (None: cleared)."""
    status: str
    last_error: str | None = None
    sent_at: datetime | None = None
    provider_message_id: str | None = None
    next_attempt_at: datetime | None = None


# One statement for a batch's three kinds of rows: each CTE runs whether or not its arrays are empty,
# and none touches a row another one does (a delivery is handed over or settled, never both at once).
_WRITE = """
WITH handed AS (
    UPDATE notify_delivery SET handed_at = $1
     WHERE id = ANY($3::bigint[]) AND status = 'sending' AND claimed_by = $2
    RETURNING id),
settled AS (
    UPDATE notify_delivery AS d
       SET status = v.status, last_error = v.last_error, sent_at = coalesce(v.sent_at, d.sent_at),
           provider_message_id = coalesce(v.provider_message_id, d.provider_message_id),
           next_attempt_at = coalesce(v.next_attempt_at, d.next_attempt_at), lease_until = NULL, handed_at = NULL
      FROM unnest($4::bigint[], $5::text[], $6::text[], $7::timestamptz[], $8::text[], $9::timestamptz[])
           AS v (id, status, last_error, sent_at, provider_message_id, next_attempt_at)
     WHERE d.id = v.id AND d.status = 'sending' AND d.claimed_by = $2
    RETURNING d.id),
spent AS (
    UPDATE notify_subscription_credit AS c SET remaining = c.remaining - 1, updated_at = $1
      FROM unnest($10::bigint[], $11::text[]) AS v (citizen_id, template_id)
     WHERE c.citizen_id = v.citizen_id AND c.template_id = v.template_id AND c.remaining > 0
    RETURNING c.citizen_id, c.template_id)
SELECT 'hand_over' AS kind, id, NULL AS template_id FROM handed
UNION ALL SELECT 'settle', id, NULL FROM settled
UNION ALL SELECT 'spend', citizen_id, template_id FROM spent"""

_Entry = tuple[str, object]   # ("hand_over", Delivery) | ("settle", (Delivery, Outcome)) | ("spend", (citizen, template))


class Ledger:
    """One claimer's writes during one dispatcher round. Each write to a delivery is a compare-and-swap
    on its still being `holder`'s and `sending`: a claimer whose lease ran out and was taken over
    writes nothing (its call answers False). A consent is spent only if one is left (False if not)."""

    def __init__(self, rt: Runtime, holder: str):
        self.rt = rt
        self.holder = holder
        # the pool's client, taken here, outside any transaction (a batch's task inherits the context of
        # whichever send started it)
        self._db = connections.get("default")
        self._postgres = self._db.capabilities.dialect == "postgres"
        self._writes: _Batched[_Entry, bool] = _Batched(self._write_all)

    async def hand_over(self, delivery: Delivery) -> bool:
        """Mark the moment the provider is called. A claimer that dies before the outcome is written
        leaves the mark, and whoever takes the delivery over asks the provider first."""
        return await self._writes(("hand_over", delivery))

    async def settle(self, delivery: Delivery, outcome: Outcome) -> bool:
        """Write what became of the send; the lease and the hand-over mark end with it."""
        return await self._writes(("settle", (delivery, outcome)))

    async def spend_credit(self, citizen_id: int, template_id: str) -> bool:
        """One of the citizen's WeChat consents to `template_id`."""
        return await self._writes(("spend", (citizen_id, template_id)))

    async def _write_all(self, entries: list[_Entry]) -> list[bool]:
        answers: list[bool] = [False] * len(entries)
        left = list(range(len(entries)))
        while left:
            # two sends of one person's template in one statement would spend one consent for both:
            # the second goes in the next statement
            now, later, spending = [], [], set()
            for n in left:
                kind, what = entries[n]
                if kind == "spend" and what in spending:
                    later.append(n)
                    continue
                if kind == "spend":
                    spending.add(what)
                now.append(n)
            written = await (self._write_postgres if self._postgres else self._write_sqlite)(
                [entries[n] for n in now])
            for n, answer in zip(now, written, strict=True):
                answers[n] = answer
            left = later
        return answers

    async def _write_postgres(self, entries: list[_Entry]) -> list[bool]:
        handed = [what.id for kind, what in entries if kind == "hand_over"]  # type: ignore[attr-defined]
        settled: list[tuple[Delivery, Outcome]] = [what for kind, what in entries if kind == "settle"]  # type: ignore[misc]
        spent: list[tuple[int, str]] = [what for kind, what in entries if kind == "spend"]  # type: ignore[misc]
        rows = await self._db.execute_query_dict(_WRITE, [
            clock.now(), self.holder, handed,
            [d.id for d, _ in settled], [o.status for _, o in settled], [o.last_error for _, o in settled],
            [o.sent_at for _, o in settled], [o.provider_message_id for _, o in settled],
            [o.next_attempt_at for _, o in settled],
            [c for c, _ in spent], [t for _, t in spent]])
        done = {(row["kind"], row["id"] if row["kind"] != "spend" else (row["id"], row["template_id"]))
                for row in rows}
        return [(kind, _key(kind, what)) in done for kind, what in entries]

    async def _write_sqlite(self, entries: list[_Entry]) -> list[bool]:
        now = clock.now()
        answers = []
        async with unit_of_work(self.rt) as uow:
            for kind, what in entries:
                if kind == "spend":
                    citizen_id, template_id = what  # type: ignore[misc]
                    changed = await SubscriptionCredit.filter(
                        citizen_id=citizen_id, template_id=template_id, remaining__gt=0).using_db(uow.tx) \
                        .update(remaining=F("remaining") - 1, updated_at=now)
                else:
                    delivery, changes = (what, {"handed_at": now}) if kind == "hand_over" \
                        else (what[0], {"lease_until": None, "handed_at": None, **_changes(what[1])})  # type: ignore[index]
                    changed = await Delivery.filter(id=delivery.id, status="sending", claimed_by=self.holder) \
                        .using_db(uow.tx).update(**changes)
                answers.append(bool(changed))
        return answers


def _key(kind: str, what: object) -> object:
    if kind == "spend":
        return what
    return (what if kind == "hand_over" else what[0]).id  # type: ignore[index,attr-defined]


def _changes(outcome: Outcome) -> dict[str, object]:
    changes: dict[str, object] = {"status": outcome.status, "last_error": outcome.last_error}
    for name in ("sent_at", "provider_message_id", "next_attempt_at"):
        if (value := getattr(outcome, name)) is not None:
            changes[name] = value
    return changes
