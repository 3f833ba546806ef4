"""The moves an application can make, who makes them, and from where: the status machine in one table.

Each move is one service call (backend/cases/service.py) that checks the actor against this table,
locks the case, changes it with a compare-and-swap on its status, appends a history row and records
a domain event, all in one unit of work. A move this table does not allow is a 409 that changes
nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from backend.kit.errors import AppError

__all__ = ["Move", "MOVES", "INTAKE_ROLES", "REVIEW_ROLES", "READ_ROLES", "move", "STATUS_TEXT", "EVENT_OF"]

# who takes applications in at the window (受理), issues and hands over certificates
INTAKE_ROLES = ("window_clerk", "approver")
# who decides a department's step, and, for the lead department, the case
REVIEW_ROLES = ("approver",)
# who may read a department's cases
READ_ROLES = ("window_clerk", "approver", "supervisor")

Actor = Literal["applicant", "intake", "reviewer", "step", "lead"]


@dataclass(frozen=True)
class Move:
    action: str
    sources: tuple[str, ...]
    actor: Actor          # applicant: the citizen or their agent; intake: the lead department's window;
                          # reviewer: intake or an approver of any step; step: an approver of the step's
                          # department; lead: an approver of the lead department


MOVES: dict[str, Move] = {move.action: move for move in (
    Move("withdraw", ("submitted", "accepted", "supplement_required", "in_review"), "applicant"),
    Move("resubmit", ("supplement_required",), "applicant"),
    Move("accept", ("submitted",), "intake"),
    Move("refuse", ("submitted",), "intake"),
    # 补正 at intake (before the clock starts) or during review (the clock pauses until the resubmission)
    Move("request_supplement", ("submitted", "accepted", "in_review"), "reviewer"),
    Move("decide_step", ("accepted", "in_review"), "step"),
    Move("decide", ("in_review",), "lead"),
    # 特别程序 (hearing, expert review, on-site inspection): the clock stops, the status stays
    Move("pause", ("accepted", "in_review"), "lead"),
    Move("resume", ("accepted", "in_review"), "lead"),
    Move("issue_certificate", ("approved",), "intake"),
    Move("deliver", ("certificate_issued",), "intake"),
)}


def move(action: str, status: str) -> Move:
    """The move `action` from `status`, or the 409 that says the case is not where that move starts."""
    found = MOVES[action]
    if status not in found.sources:
        raise AppError("case_move_not_allowed", 409, action=action, case_status=status)
    return found


# the event each new status is told as (notify's rules: config/templates/notifications.toml)
EVENT_OF = {
    "submitted": "case.submitted", "accepted": "case.accepted", "refused": "case.refused",
    "supplement_required": "case.supplement_required", "in_review": "case.in_review",
    "approved": "case.approved", "denied": "case.denied", "certificate_issued": "case.certificate_ready",
    "delivered": "case.delivered", "collected": "case.collected", "withdrawn": "case.withdrawn",
}

# how a status reads to the applicant, in the three languages of the centre
STATUS_TEXT: dict[str, dict[str, str]] = {
    "submitted": {"zh": "已申报", "mn": "ᠮᠡᠳᠦᠭᠦᠯᠦᠭᠰᠡᠨ", "en": "submitted"},
    "accepted": {"zh": "已受理", "mn": "ᠬᠦᠯᠢᠶᠡᠨ ᠠᠪᠤᠯᠠ", "en": "accepted"},
    "refused": {"zh": "不予受理", "mn": "ᠬᠦᠯᠢᠶᠡᠨ ᠠᠪᠤᠭᠰᠠᠨ ᠦᠭᠡᠢ", "en": "not accepted"},
    "supplement_required": {"zh": "需补正材料", "mn": "ᠮᠠᠲ᠋ᠧᠷᠢᠶᠠᠯ ᠨᠥᠬᠥᠬᠦ ᠬᠡᠷᠡᠭᠲᠡᠢ", "en": "documents to add"},
    "in_review": {"zh": "办理中", "mn": "ᠰᠢᠯᠭᠠᠵᠤ ᠪᠠᠢᠨ᠎ᠠ", "en": "in review"},
    "approved": {"zh": "已办结（准予）", "mn": "ᠵᠥᠪᠰᠢᠶᠡᠷᠡᠭᠳᠡᠪᠡ", "en": "approved"},
    "denied": {"zh": "已办结（不予许可）", "mn": "ᠵᠥᠪᠰᠢᠶᠡᠷᠡᠭᠳᠡᠭᠰᠡᠨ ᠦᠭᠡᠢ", "en": "not approved"},
    "certificate_issued": {"zh": "已出证", "mn": "ᠭᠡᠷᠡᠴᠢᠯᠡᠬᠡ ᠣᠯᠭᠤᠭᠰᠠᠨ", "en": "certificate issued"},
    "delivered": {"zh": "已送达", "mn": "ᠬᠦᠷᠭᠡᠭᠳᠡᠪᠡ", "en": "delivered"},
    "collected": {"zh": "已领取", "mn": "ᠠᠪᠤᠭᠰᠠᠨ", "en": "collected"},
    "withdrawn": {"zh": "已撤回", "mn": "ᠪᠤᠴᠠᠭᠠᠭᠰᠠᠨ", "en": "withdrawn"},
}
