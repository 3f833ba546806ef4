"""Who may do what with queue tickets.

A citizen reaches only their own tickets: the services look a ticket up by its id *and* the holder's
id, so another's ticket answers 404 as if it did not exist. A hall's kiosk issues tickets for that hall
only. Window actions need one grant that reaches both the window's hall and its department (a
comprehensive window, department "", only a grant without a department), exactly as opening and
closing the window does.
"""
from __future__ import annotations

from backend.catalog.permissions import WINDOW_ROLES, require_window_scope
from backend.kit.auth import Principal, require_hall_scope
from backend.kit.errors import AppError

__all__ = ["KIOSK_ROLES", "QUEUE_ROLES", "require_kiosk_scope", "require_queue_hall", "require_window_scope",
           "require_queue_scope"]

KIOSK_ROLES = ("kiosk",)
# who may call, serve and move tickets at a window, and see a hall's queue: whoever may open and close
# the window (catalog), which is why a window action's scope check is the catalogue's
QUEUE_ROLES = WINDOW_ROLES


def require_kiosk_scope(principal: Principal, hall_lineage: list[str]) -> None:
    """A kiosk grant covers exactly its hall (a grant without a hall: every hall)."""
    require_hall_scope(principal, hall_lineage, KIOSK_ROLES)


def require_queue_hall(principal: Principal, hall_lineage: list[str]) -> None:
    """Before a window or ticket is read: some queue grant reaches the hall at all, so a caller from
    another hall learns nothing about its windows and tickets."""
    require_hall_scope(principal, hall_lineage, QUEUE_ROLES)


def require_queue_scope(principal: Principal, hall_lineage: list[str], departments: list[str]) -> None:
    """A ticket that waits at no window yet: one grant must reach the hall and a department its queue
    serves (a queue of no department, only a grant without a department), as its windows would need."""
    if not any(principal.covers(hall_lineage, department, QUEUE_ROLES) for department in departments or [""]):
        raise AppError("out_of_scope", 403)
