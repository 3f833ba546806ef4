"""Tortoise's SQLite engine, with three changes ehall needs for a single-machine deployment.

- Transactions begin with BEGIN IMMEDIATE. `ehall serve` is not the only writer of the file: the
  command line (`ehall staff create`, `ehall seed`) writes to it while the server runs. A deferred
  BEGIN takes the write lock only at the first write; if another process has committed since the
  transaction's first read, SQLite refuses the upgrade at once ("database is locked"), whatever the
  busy timeout. Taking the lock at BEGIN makes the second writer wait (up to the busy timeout)
  instead of failing half-way through its work.
- A transaction that cannot begin (the lock not had within the busy timeout) gives the connection's
  lock back. Tortoise's context keeps it, and every later query of the process would wait forever.
- The same for a plain query whose connection is still being opened: Tortoise opens it lazily, under
  the lock, at the process's first query. If that query is cancelled meanwhile (its client went away:
  a load balancer's health probe that gave up after a few seconds on a busy machine), Tortoise kept
  the lock and the server answered nothing ever after. The lock is given back, and the opening itself
  runs to its end whoever waits for it, so a cancelled opening leaves neither a stray connection nor
  a second one opened beside it. (`init_db` also opens the connection before the server listens.)

Selected by `tortoise_config` for sqlite:// URLs (kit/db.py).
"""
from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable

from tortoise.backends.base.client import ConnectionWrapper, TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)
from tortoise.connection import get_connections
from tortoise.exceptions import TransactionManagementError

__all__ = ["client_class"]


async def _holding(lock: asyncio.Lock, step: Callable[[], Awaitable[None]]) -> None:
    """Take the connection's lock for `step` (opening the connection, BEGIN) and keep it only if the
    step succeeds: whatever stops it, a cancellation too, gives the lock back."""
    await lock.acquire()
    try:
        await step()
    except BaseException:
        lock.release()
        raise


class _ImmediateTransaction(SqliteTransactionWrapper):
    async def begin(self) -> None:
        try:
            await self._connection.commit()  # as Tortoise does: end any implicit transaction first
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise TransactionManagementError(exc) from exc


class _TransactionContext(SqliteTransactionContext):
    async def __aenter__(self) -> _ImmediateTransaction:
        await _holding(self._trxlock, self._open_and_begin)
        self.token = get_connections().set(self.connection_name, self.connection)
        return self.connection

    async def _open_and_begin(self) -> None:
        await self.ensure_connection()
        await self.connection.begin()


class _ConnectionWrapper(ConnectionWrapper):
    async def __aenter__(self):
        await _holding(self._lock, self.ensure_connection)
        return self.connection


class EhallSqliteClient(SqliteClient):
    _opening: asyncio.Task[None] | None = None

    def acquire_connection(self) -> ConnectionWrapper:
        return _ConnectionWrapper(self._lock, self)

    def _in_transaction(self) -> TransactionContext:
        return _TransactionContext(_ImmediateTransaction(self), self._lock)

    async def create_connection(self, with_db: bool) -> None:
        if self._connection is not None:
            return
        # one opening at a time, shielded: whoever asks next waits for the one under way
        if self._opening is None or self._opening.done():
            self._opening = asyncio.ensure_future(super().create_connection(with_db))
        await asyncio.shield(self._opening)


client_class = EhallSqliteClient
