"""Who may do what with accounts: role lists and scope checks."""
from __future__ import annotations

from backend.catalog.service import hall_lineage
from backend.kit.auth import Principal, require_hall_scope
from backend.runtime import Runtime

__all__ = ["PII_READ_ROLES", "require_pii_scope"]

# roles whose work needs a citizen's full name, phone or ID number (checking identity at a window,
# approving, filing for a herder as their agent); admins manage accounts and do not need it
PII_READ_ROLES = ("window_clerk", "approver", "agent", "supervisor")


async def require_pii_scope(rt: Runtime, *, principal: Principal, hall: str) -> None:
    """The reader works in `hall` (or above it, for the roles whose grants reach down)."""
    require_hall_scope(principal, await hall_lineage(rt, code=hall), PII_READ_ROLES)
