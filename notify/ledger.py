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


_HAND_OVER = """
UPDATE notify_delivery SET handed_at = $1
 WHERE id = ANY($2::bigint[]) AND status = 'sending' AND claimed_by = $3
RETURNING id"""

_SETTLE = """
UPDATE notify_delivery AS d
   SET status = v.status, last_error = v.last_error, sent_at = coalesce(v.sent_at, d.sent_at),
       provider_message_id = coalesce(v.provider_message_id, d.provider_message_id),
       next_attempt_at = coalesce(v.next_attempt_at, d.next_attempt_at), lease_until = NULL, handed_at = NULL
  FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::timestamptz[])
       AS v (id, status, last_error, sent_at, provider_message_id, next_attempt_at)
 WHERE d.id = v.id AND d.status = 'sending' AND d.claimed_by = $7
RETURNING d.id"""

_SPEND = """
UPDATE notify_subscription_credit AS c SET remaining = c.remaining - 1, updated_at = $3
  FROM unnest($1::bigint[], $2::text[]) AS v (citizen_id, template_id)
 WHERE c.citizen_id = v.citizen_id AND c.template_id = v.template_id AND c.remaining > 0
RETURNING c.citizen_id, c.template_id"""


class Ledger:
    """One claimer's writes during one dispatcher round. Each write is a compare-and-swap on the
    delivery still being `holder`'s and `sending`: a claimer whose lease ran out and was taken over
    writes nothing (its call answers False)."""

    def __init__(self, rt: Runtime, holder: str):
        self.rt = rt
        self.holder = holder
        # the pool's client, taken here, outside any transaction (a batch's task inherits the context of
        # whichever send started it)
        self._db = connections.get("default")
        self._postgres = self._db.capabilities.dialect == "postgres"
        self.hand_over: Callable[[Delivery], Awaitable[bool]] = _Batched(self._hand_over_all)
        self.settle: Callable[[tuple[Delivery, Outcome]], Awaitable[bool]] = _Batched(self._settle_all)
        self.spend_credit: Callable[[tuple[int, str]], Awaitable[bool]] = _Batched(self._spend_all)

    # hand-over: the moment the provider is called. A claimer that dies before the outcome is written
    # leaves the mark, and whoever takes the delivery over asks the provider first.

    async def _hand_over_all(self, deliveries: list[Delivery]) -> list[bool]:
        now = clock.now()
        if self._postgres:
            rows = await self._db.execute_query_dict(
                _HAND_OVER, [now, [d.id for d in deliveries], self.holder])
            marked = {row["id"] for row in rows}
            return [d.id in marked for d in deliveries]
        async with unit_of_work(self.rt) as uow:
            return [bool(await Delivery.filter(id=d.id, status="sending", claimed_by=self.holder)
                         .using_db(uow.tx).update(handed_at=now)) for d in deliveries]

    async def _settle_all(self, settled: list[tuple[Delivery, Outcome]]) -> list[bool]:
        if self._postgres:
            rows = await self._db.execute_query_dict(_SETTLE, [
                [d.id for d, _ in settled], [o.status for _, o in settled], [o.last_error for _, o in settled],
                [o.sent_at for _, o in settled], [o.provider_message_id for _, o in settled],
                [o.next_attempt_at for _, o in settled], self.holder])
            written = {row["id"] for row in rows}
            return [d.id in written for d, _ in settled]
        async with unit_of_work(self.rt) as uow:
            return [bool(await Delivery.filter(id=d.id, status="sending", claimed_by=self.holder)
                         .using_db(uow.tx).update(lease_until=None, handed_at=None, **_changes(o)))
                    for d, o in settled]

    async def _spend_all(self, wanted: list[tuple[int, str]]) -> list[bool]:
        """One consent of (citizen, template) each; False where none is left. Two sends of one person's
        template in a batch go in successive statements: one statement would spend one consent for both."""
        now = clock.now()
        spent: list[bool | None] = [None] * len(wanted)
        while (left := [n for n, answer in enumerate(spent) if answer is None]):
            first = list({wanted[n]: n for n in reversed(left)}.values())   # each key's first place
            for n, answer in zip(first, await self._spend_once([wanted[n] for n in first], now), strict=True):
                spent[n] = answer
        return [bool(answer) for answer in spent]

    async def _spend_once(self, keys: list[tuple[int, str]], now: datetime) -> list[bool]:
        if self._postgres:
            rows = await self._db.execute_query_dict(
                _SPEND, [[c for c, _ in keys], [t for _, t in keys], now])
            taken = {(row["citizen_id"], row["template_id"]) for row in rows}
            return [key in taken for key in keys]
        async with unit_of_work(self.rt) as uow:
            return [bool(await SubscriptionCredit.filter(citizen_id=c, template_id=t, remaining__gt=0)
                         .using_db(uow.tx).update(remaining=F("remaining") - 1, updated_at=now))
                    for c, t in keys]


def _changes(outcome: Outcome) -> dict[str, object]:
    changes: dict[str, object] = {"status": outcome.status, "last_error": outcome.last_error}
    for name in ("sent_at", "provider_message_id", "next_attempt_at"):
        if (value := getattr(outcome, name)) is not None:
            changes[name] = value
    return changes
