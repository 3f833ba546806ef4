"""Who may do what with conversations.

A citizen reaches only their own conversations: the services look one up by its id *and* the citizen,
so another's answers 404 as if it did not exist. Staff reach a conversation when one of their grants of
CONSULT_ROLES covers both its hall and its department (kit.auth's rule: a window clerk's grant covers
exactly its hall, a supervisor's or approver's also the halls below; a grant with a department only
that department; the comprehensive desk, department "", only a grant without one). Supervision of
response times is for supervisors and admins.
"""
from __future__ import annotations

from tortoise.expressions import Q

from backend.kit.auth import Principal
from backend.kit.errors import AppError

__all__ = ["CONSULT_ROLES", "SUPERVISION_ROLES", "lineage_of", "path_of", "covers_conversation",
           "require_conversation_scope", "scope_filter"]

CONSULT_ROLES = ("window_clerk", "approver", "supervisor")
SUPERVISION_ROLES = ("supervisor", "admin")
_SUBTREE = {"supervisor", "approver", "admin"}


def path_of(lineage: list[str]) -> str:
    """A hall's lineage as stored on a conversation: "/150921001/150921/150900/"."""
    return "/" + "/".join(lineage) + "/"


def lineage_of(hall_path: str) -> list[str]:
    return [code for code in hall_path.split("/") if code]


def covers_conversation(principal: Principal, *, hall_path: str, department: str,
                        roles: tuple[str, ...] = CONSULT_ROLES) -> bool:
    return principal.covers(lineage_of(hall_path), department, roles)


def require_conversation_scope(principal: Principal, *, hall_path: str, department: str) -> None:
    if not covers_conversation(principal, hall_path=hall_path, department=department):
        raise AppError("out_of_scope", 403)


def scope_filter(principal: Principal, roles: tuple[str, ...] = CONSULT_ROLES) -> Q:
    """The conversations the principal's grants reach, as a query filter (the same rule as covers())."""
    reach = Q(id__isnull=True)   # nothing, until a grant adds what it covers
    for grant in principal.grants:
        if grant.role not in roles:
            continue
        where = Q(id__gt=0)   # everything, until the grant narrows it
        if grant.hall is not None:
            where &= Q(hall_path__contains=f"/{grant.hall}/") if grant.role in _SUBTREE \
                else Q(hall_code=grant.hall)
        if grant.department is not None:
            where &= Q(department_code=grant.department)
        reach |= where
    return reach
