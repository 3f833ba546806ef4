"""Tortoise's SQLite engine, with two changes ehall needs for a single-machine deployment.

- Transactions begin with BEGIN IMMEDIATE. `ehall serve` is not the only writer of the file: the
  command line (`ehall staff create`, `ehall seed`) writes to it while the server runs. A deferred
  BEGIN takes the write lock only at the first write; if another process has committed since the
  transaction's first read, SQLite refuses the upgrade at once ("database is locked"), whatever the
  busy timeout. Taking the lock at BEGIN makes the second writer wait (up to the busy timeout)
  instead of failing half-way through its work.
- A transaction that cannot begin (the lock not had within the busy timeout) gives the connection's
  lock back. Tortoise's context keeps it, and every later query of the process would wait forever.

Selected by `tortoise_config` for sqlite:// URLs (kit/db.py).
"""
from __future__ import annotations

import sqlite3

from tortoise.backends.base.client import TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)
from tortoise.connection import get_connections
from tortoise.exceptions import TransactionManagementError

__all__ = ["client_class"]


class _ImmediateTransaction(SqliteTransactionWrapper):
    async def begin(self) -> None:
        try:
            await self._connection.commit()  # as Tortoise does: end any implicit transaction first
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise TransactionManagementError(exc) from exc


class _TransactionContext(SqliteTransactionContext):
    async def __aenter__(self) -> _ImmediateTransaction:
        await self._trxlock.acquire()
        try:
            await self.ensure_connection()
            await self.connection.begin()
        except BaseException:  # a cancellation too: the lock must not outlive a BEGIN that never ran
            self._trxlock.release()
            raise
        self.token = get_connections().set(self.connection_name, self.connection)
        return self.connection


class EhallSqliteClient(SqliteClient):
    def _in_transaction(self) -> TransactionContext:
        return _TransactionContext(_ImmediateTransaction(self), self._lock)


client_class = EhallSqliteClient
