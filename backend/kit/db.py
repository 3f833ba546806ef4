"""The database: one Tortoise app ("ehall") holding every domain's models, migrated by Tortoise itself."""
from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient, TransactionalDBClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.connection import connections
from tortoise.transactions import in_transaction

from backend.settings import Settings

__all__ = ["MODEL_MODULES", "tortoise_config", "init_db", "close_db", "migrate_db", "transaction", "in_transaction_now"]

T = TypeVar("T")
SQLITE_BUSY_TIMEOUT_MS = 10_000

# Every module that defines models; the migrations under backend/migrations/ are made from these.
MODEL_MODULES = [
    "backend.kit.models",
    "backend.catalog.models",
    "backend.accounts.models",
    "backend.appointments.models",
    "backend.queueing.models",
    "backend.consult.models",
    "backend.cases.models",
    "notify.models",
]


def _connection_url(settings: Settings) -> str:
    url = settings.database_url
    if url.startswith("sqlite://") and url not in ("sqlite://:memory:",):
        path = Path(url.removeprefix("sqlite://"))
        path.parent.mkdir(parents=True, exist_ok=True)
    return url


async def _keep_session(connection: Any) -> None:
    """asyncpg's pool, handing a connection back, first rolls back a transaction left open, then by
    default runs one more round trip (`pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`) to
    undo session state. ehall keeps none outside a transaction (its advisory locks are transaction-scoped;
    no cursors, LISTEN or SET: its settings are the connection's own), so there is nothing to undo, and
    that round trip was a fifth of a case read's worker time and 40% of PostgreSQL's CPU per read
    (bench/README.md)."""


def _connection(settings: Settings) -> str | dict[str, Any]:
    url = _connection_url(settings)
    if not url.startswith("sqlite://"):
        connection = expand_db_url(url)
        if connection["engine"] == "tortoise.backends.asyncpg":
            connection["credentials"]["reset"] = _keep_session
        return connection
    connection = expand_db_url(url)
    connection["engine"] = "backend.kit.sqlite"  # BEGIN IMMEDIATE; see there why
    # how long a writer waits for another process's write lock (the command line beside `serve`)
    connection["credentials"].setdefault("busy_timeout", SQLITE_BUSY_TIMEOUT_MS)
    return connection


def tortoise_config(settings: Settings) -> dict[str, Any]:
    return {
        "connections": {"default": _connection(settings)},
        "apps": {
            "ehall": {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "backend.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def __getattr__(name: str) -> Any:
    # `tortoise -c backend.kit.db.TORTOISE_ORM ...` (what `ehall makemigrations` runs) reads this
    if name == "TORTOISE_ORM":
        from backend.settings import load_settings

        return tortoise_config(load_settings())
    raise AttributeError(name)


async def init_db(settings: Settings) -> None:
    # Global fallback: Sanic runs each connection in its own task, which does not inherit the
    # context variable Tortoise.init() sets in the startup listener.
    await Tortoise.init(config=tortoise_config(settings), _enable_global_fallback=True)
    if settings.is_sqlite:
        # opened now, before the server listens, rather than by whichever request comes first
        # (kit/sqlite.py: a first query cancelled while it opened the connection once hung the process)
        await connections.get("default").create_connection(with_db=True)


async def close_db() -> None:
    await Tortoise.close_connections()


async def migrate_db(settings: Settings) -> None:
    """Apply every migration not yet applied (idempotent; safe to run at every start)."""
    from tortoise.migrations.api import migrate

    await migrate(config=tortoise_config(settings))
    await Tortoise.close_connections()



@asynccontextmanager
async def transaction() -> AsyncIterator[BaseDBAsyncClient]:
    """`in_transaction()`, whose opening and closing a cancellation cannot cut in half.

    A request is cancelled wherever it stands when its client goes away (a herder's phone loses the
    network). Tortoise's transaction contexts are not safe against that: cancelled after taking the
    SQLite connection's lock but before BEGIN has returned, the lock is never released and every
    later query of the process waits forever; on PostgreSQL the pooled connection is never given
    back. So the opening and the closing each run to their end in a task of their own, and a
    cancellation that arrives meanwhile is let through once they have: after the opening, the
    transaction is rolled back at once; during the closing, the commit or rollback finishes first.
    tests/kit/test_cancelled_transactions.py cancels a change at every step.

    Both tasks run in one copy of the caller's context, because Tortoise keeps "the connection of
    this transaction" in a context variable that the opening sets and the closing resets; the body
    runs in the caller's own context, where the same connection is set while it runs.
    """
    context = in_transaction()
    scope = contextvars.copy_context()
    connection, error, cancelled = await _whole(context.__aenter__(), scope)
    if error is not None:
        raise error
    if cancelled:  # opened, but the caller is gone: end it at once
        await _whole(context.__aexit__(asyncio.CancelledError, asyncio.CancelledError(), None), scope)
        raise asyncio.CancelledError
    token = connections.set(context.connection_name, connection)
    try:
        yield connection
    except BaseException as failure:
        connections.reset(token)
        _, _, cancelled = await _whole(context.__aexit__(type(failure), failure, failure.__traceback__), scope)
        if cancelled and not isinstance(failure, asyncio.CancelledError):
            raise asyncio.CancelledError from failure
        raise
    connections.reset(token)
    _, error, cancelled = await _whole(context.__aexit__(None, None, None), scope)
    if error is not None:
        raise error
    if cancelled:
        raise asyncio.CancelledError


def in_transaction_now() -> bool:
    """Whether this task runs inside a `transaction()` body (its queries then go to that transaction)."""
    return isinstance(connections.get("default"), TransactionalDBClient)


async def _whole(step: Coroutine[Any, Any, T], scope: contextvars.Context) -> tuple[T | None, BaseException | None, bool]:
    """Run `step` to its end in `scope` even if the caller is cancelled meanwhile. Answers its result,
    its error, and whether the caller was cancelled (the caller then raises CancelledError itself)."""
    me = asyncio.current_task()
    cancels_before = me.cancelling() if me else 0
    task = asyncio.create_task(step, context=scope)
    while not task.done():
        try:
            await asyncio.shield(task)
        except BaseException:  # our cancellation (the task runs on), or the task's own end: see below
            pass
    cancelled = bool(me and me.cancelling() > cancels_before)
    if task.cancelled():
        return None, asyncio.CancelledError(), cancelled
    error = task.exception()
    return (None if error is not None else task.result()), error, cancelled
