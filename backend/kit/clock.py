"""The one source of "now" for business time: token lifetimes, code expiry, cut-offs, deadlines.

Everything that decides by the time of day asks this module, so a test can freeze time at the
moment it needs (the day before a holiday, two minutes before a cut-off) and advance it, and the
server under test sees the same time. Elapsed-time measurement (latency, rate-limit windows) stays on
the monotonic clock: it is not business time and must not jump when a test moves the calendar.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

__all__ = ["now", "today", "business_zone", "freeze", "advance", "unfreeze"]

# Every hall of the prefecture keeps Beijing time; business dates (the day a ticket is numbered in,
# a working day of a time limit) are days in this zone, timestamps in the database are UTC.
_BUSINESS_ZONE = ZoneInfo("Asia/Shanghai")

_frozen: datetime | None = None


def now() -> datetime:
    """The current instant, timezone-aware UTC."""
    return _frozen if _frozen is not None else datetime.now(timezone.utc)


def business_zone() -> ZoneInfo:
    return _BUSINESS_ZONE


def today() -> date:
    """The business date in the halls' zone (Asia/Shanghai): after 16:00 UTC it is already tomorrow."""
    return now().astimezone(_BUSINESS_ZONE).date()


def freeze(at: datetime) -> None:
    """(tests) Stop the clock at `at` (aware; a naive value is taken as UTC). Kept in UTC, as now()
    promises: an instant frozen as "10:00+08:00" written to SQLite as such would not compare as the
    same instant with the UTC timestamps beside it."""
    global _frozen
    _frozen = at.astimezone(timezone.utc) if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)


def advance(delta: timedelta) -> None:
    """(tests) Move a frozen clock forward."""
    global _frozen
    if _frozen is None:
        raise RuntimeError("advance() needs a frozen clock: call freeze() first")
    _frozen += delta


def unfreeze() -> None:
    global _frozen
    _frozen = None
