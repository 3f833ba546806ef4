"""Who may do what with appointments.

A citizen reaches only their own bookings: the services look a booking up by its id *and* the
citizen's id, so another citizen's booking answers 404 as if it did not exist. Staff touch a booking
only through a hall's check-in (the kiosk of that hall, or a clerk checking a citizen in at a window),
checked here before a code is read.
"""
from __future__ import annotations

from backend.kit.auth import Principal
from backend.kit.errors import AppError

__all__ = ["CHECK_IN_ROLES", "require_check_in_scope"]

# who may check a booking in at a hall: its ticket machines (kiosk) and its clerks and supervisors
CHECK_IN_ROLES = ("kiosk", "window_clerk", "supervisor")


def require_check_in_scope(principal: Principal, hall_lineage: list[str], department: str) -> None:
    """One check-in grant reaches both the booking's hall and the department of its item: a kiosk or
    clerk grant exactly its hall, a supervisor's also the halls below; a grant with a department only
    that department's bookings (a 公安 clerk does not check in a 不动产 booking)."""
    if not principal.covers(hall_lineage, department, CHECK_IN_ROLES):
        raise AppError("out_of_scope", 403)
