"""Domain events go to the outbox inside the caller's transaction: committed together or not at all."""
from __future__ import annotations

from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from backend.kit.models import OutboxEvent

__all__ = ["record"]


async def record(tx: BaseDBAsyncClient, kind: str, aggregate: str, **payload: Any) -> OutboxEvent:
    """Write `kind` for `aggregate` ("citizen:42") to the outbox on connection `tx` (a transaction)."""
    return await OutboxEvent.create(kind=kind, aggregate=aggregate, payload=payload, using_db=tx)
