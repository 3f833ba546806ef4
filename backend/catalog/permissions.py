"""Who may change what in the catalogue: so far, the status of a hall's windows."""
from __future__ import annotations

from backend.kit.auth import Principal, require_hall_scope
from backend.kit.errors import AppError

__all__ = ["WINDOW_ROLES", "require_window_hall", "require_window_scope"]

# who may open, pause and close a hall's windows
WINDOW_ROLES = ("window_clerk", "supervisor", "admin")


def require_window_hall(principal: Principal, hall_lineage: list[str]) -> None:
    """Before the window is read: some window grant reaches the hall at all, so a caller from another
    hall learns nothing about which windows exist there."""
    require_hall_scope(principal, hall_lineage, WINDOW_ROLES)


def require_window_scope(principal: Principal, hall_lineage: list[str], department_code: str) -> None:
    """One grant reaches both the window's hall and its department. A department's window
    (department_code "150921-ga") is changed by a grant of that hall without a department or with that
    department; the centre's own comprehensive windows (department_code "") only by a grant without one."""
    if not principal.covers(hall_lineage, department_code, WINDOW_ROLES):
        raise AppError("out_of_scope", 403)
