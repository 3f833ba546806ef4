"""One unit of work per change: a transaction, the domain events it records, the realtime messages
it publishes once it has committed.

    async with unit_of_work(rt, tx) as uow:
        window = await Window.filter(...).using_db(uow.tx).select_for_update().first()
        ...
        await uow.record("window.status_changed", f"window:{window.id}", status=status)
        uow.publish(f"hall:{code}", {"event": "window.status_changed", ...})

`tx` is the caller's unit of work, when a flow joins several service calls into one transaction
(check-in books and issues a ticket atomically); the joined call's events go into the caller's
transaction and its messages leave with the caller's, after the outermost commit. A rollback sends
nothing and records nothing: the outbox rows vanish with the transaction, the queued messages are
dropped.
"""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from tortoise.backends.base.client import BaseDBAsyncClient

from backend.kit.db import transaction
from backend.kit.models import AuditEntry, OutboxEvent

if TYPE_CHECKING:
    from backend.runtime import Runtime

__all__ = ["UnitOfWork", "unit_of_work"]

log = logging.getLogger("ehall.uow")


Message = dict[str, Any]


class UnitOfWork:
    def __init__(self, tx: BaseDBAsyncClient):
        self.tx = tx
        self._messages: list[tuple[str, Message]] = []
        self._after_commit: list[Callable[[], Awaitable[None]]] = []

    async def record(self, kind: str, aggregate: str, **payload: Any) -> OutboxEvent:
        """Write domain event `kind` about `aggregate` ("citizen:42") to the outbox in this transaction.
        The payload holds ids and codes, never personal data in clear: notify reads it back."""
        return await OutboxEvent.create(kind=kind, aggregate=aggregate, payload=payload, using_db=self.tx)

    async def audit(self, *, actor: str, action: str, subject: str, request_id: str | None = None,
                    **detail: Any) -> AuditEntry:
        """An audit row ("staff:7" read "citizen:42") committed with the change, or not at all."""
        actor_kind, _, actor_id = actor.partition(":")
        subject_kind, _, subject_id = subject.partition(":")
        return await AuditEntry.create(actor_kind=actor_kind, actor_id=actor_id, action=action,
                                       subject_kind=subject_kind, subject_id=subject_id,
                                       request_id=request_id, detail=detail, using_db=self.tx)

    def publish(self, channel: str, message: Message) -> None:
        """Queue a realtime hint for `channel`; it is sent after the outermost commit, never before."""
        self._messages.append((channel, message))

    def after_commit(self, hint: Callable[[], Awaitable[None]]) -> None:
        """Run `hint` once the outermost commit is done and the messages are sent (never after a
        rollback): a hint that reads what it sends, such as a hall's waiting counts, reads them then,
        not while the change still holds its row locks. It must not raise (Coalescer.run does not)."""
        self._after_commit.append(hint)


@asynccontextmanager
async def unit_of_work(rt: "Runtime", tx: UnitOfWork | None = None) -> AsyncIterator[UnitOfWork]:
    if tx is not None:
        yield tx  # joined: the caller's transaction commits, and the caller's exit publishes
        return
    async with transaction() as connection:
        uow = UnitOfWork(connection)
        yield uow
    # committed. Realtime is a hint (clients refetch): a broker that is down must not turn a change
    # that is already saved into an error answer.
    for channel, message in uow._messages:
        try:
            await rt.broker.publish(channel, message)
        except Exception:  # any broker failure; the change stands, the log says what was not sent
            log.warning("realtime message not sent", exc_info=True,
                        extra={"ehall": {"channel": channel, "event": message.get("event")}})
    for hint in uow._after_commit:
        await hint()
