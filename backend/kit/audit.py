"""The audit log: every staff read of a citizen's unmasked personal data leaves a row."""
from __future__ import annotations

from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from backend.kit.models import AuditEntry

__all__ = ["record_audit"]


async def record_audit(*, actor_kind: str, actor_id: str | int, action: str, subject_kind: str,
                       subject_id: str | int, request_id: str | None = None,
                       tx: BaseDBAsyncClient | None = None, **detail: Any) -> AuditEntry:
    return await AuditEntry.create(
        actor_kind=actor_kind, actor_id=str(actor_id), action=action, subject_kind=subject_kind,
        subject_id=str(subject_id), request_id=request_id, detail=detail, using_db=tx)
