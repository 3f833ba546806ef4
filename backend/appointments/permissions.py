"""Who may do what with appointments.

A citizen reaches only their own bookings: the services look a booking up by its id *and* the
citizen's id, so another citizen's booking answers 404 as if it did not exist. Staff touch a booking
only through a hall's check-in (the kiosk of that hall, or a clerk checking a citizen in at a window),
checked here before a code is read.
"""
from __future__ import annotations

from backend.kit.auth import Principal, require_hall_scope

__all__ = ["CHECK_IN_ROLES", "require_check_in_scope"]

# who may check a booking in at a hall: its ticket machines (kiosk) and its clerks and supervisors
CHECK_IN_ROLES = ("kiosk", "window_clerk", "supervisor")


def require_check_in_scope(principal: Principal, hall_lineage: list[str]) -> None:
    """Some check-in grant reaches the hall (a kiosk or clerk grant exactly that hall, a supervisor's
    also the halls below theirs)."""
    require_hall_scope(principal, hall_lineage, CHECK_IN_ROLES)
