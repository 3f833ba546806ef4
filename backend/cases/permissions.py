"""Who may read and move an application.

A citizen reaches only their own cases: the services look a case up by its id *and* the citizen's id,
so another's case answers 404 as if it did not exist. Staff reach a case through a grant that covers
its lead department in its hall (intake, the lead's decisions) or a department with a step in it
(that step); a staff member who reaches none of them gets 404, one who can read it but not make this
move gets 403. An agent reaches the cases they declared.
"""
from __future__ import annotations

from collections.abc import Iterable

from backend.cases.machine import INTAKE_ROLES, READ_ROLES, REVIEW_ROLES, Actor
from backend.kit.auth import Principal
from backend.kit.errors import AppError

__all__ = ["Scope", "can_read", "require_actor", "SUPERVISION_ROLES"]

SUPERVISION_ROLES = ("supervisor", "admin")


class Scope:
    """The hall lineages of a case's lead hall and of each step's hall (hall code, then its ancestors)."""

    def __init__(self, *, lead: tuple[list[str], str], steps: Iterable[tuple[list[str], str]]):
        self.lead = lead
        self.steps = list(steps)


def can_read(principal: Principal, scope: Scope, *, submitted_by: str) -> bool:
    if submitted_by == principal.subject:      # the agent or clerk who declared it
        return True
    return any(principal.covers(lineage, department, READ_ROLES)
               for lineage, department in [scope.lead, *scope.steps])


def require_actor(principal: Principal, actor: Actor, scope: Scope, *, step: tuple[list[str], str] | None = None) -> None:
    lineage, department = scope.lead
    if actor == "intake":
        allowed = principal.covers(lineage, department, INTAKE_ROLES)
    elif actor == "reviewer":
        allowed = principal.covers(lineage, department, INTAKE_ROLES) or any(
            principal.covers(step_lineage, step_department, REVIEW_ROLES) for step_lineage, step_department in scope.steps)
    elif actor == "lead":
        allowed = principal.covers(lineage, department, REVIEW_ROLES)
    elif actor == "step" and step is not None:
        allowed = principal.covers(step[0], step[1], REVIEW_ROLES)
    else:
        allowed = False
    if not allowed:
        raise AppError("out_of_scope", 403)
