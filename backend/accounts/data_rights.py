"""A citizen's rights over their own account: a copy of their data (PIPL art. 45) and closing the
account (注销, PIPL art. 47; WeChat's review requires it of every mini-program with accounts).

Closing erases what identifies the person (phone, name, ID number and their blind indexes, the
WeChat identities) and ends every session at once. What the centre must keep stays: the citizen's
id row (appointments, cases and tickets refer to it), the audit log and the outbox events, none of
which hold personal data in clear.
"""
from __future__ import annotations

from backend.accounts import citizens, sessions
from backend.accounts.models import Citizen, RefreshToken, WechatIdentity
from backend.accounts.schemas import (
    CitizenExport,
    ExportedPersonalDataRead,
    ExportedProfile,
    ExportedSession,
    ExportedWechatBinding,
)
from backend.kit import clock
from backend.kit.errors import AppError
from backend.kit.models import AuditEntry
from backend.kit.pii import ID_NUMBER, NAME, PHONE, reveal
from backend.kit.ratelimit import Window, enforce
from backend.kit.uow import UnitOfWork, unit_of_work
from backend.runtime import Runtime

__all__ = ["close_account", "export_account", "EXPORT_LIMITS", "STAFF_READ_ACTIONS"]

# an export decrypts every column of the row: a few an hour is plenty for a person, and slows a
# stolen token down
EXPORT_LIMITS = [Window(3, 3600), Window(10, 86400)]

# the audit actions that tell a citizen who looked at their personal data (accounts.personal_data)
STAFF_READ_ACTIONS = ("citizen.lookup", "citizen.pii.read")


async def close_account(rt: Runtime, *, citizen_id: int, request_id: str | None = None,
                        tx: UnitOfWork | None = None) -> None:
    """注销: erase the personal data, delete the WeChat identities, end every session, keep the id."""
    async with unit_of_work(rt, tx) as uow:
        citizen = await citizens.lock_citizen(citizen_id=citizen_id, uow=uow)
        citizen.phone_enc = citizen.phone_index = None
        citizen.name_enc = None
        citizen.id_number_enc = citizen.id_number_index = None
        citizen.closed_at = clock.now()
        await citizen.save(using_db=uow.tx, update_fields=[
            "phone_enc", "phone_index", "name_enc", "id_number_enc", "id_number_index", "closed_at", "updated_at"])
        # the same WeChat user logging in again becomes a new citizen, as the same phone does
        wechat_identities = await WechatIdentity.filter(citizen_id=citizen.id).using_db(uow.tx).delete()
        await uow.audit(actor=f"citizen:{citizen.id}", action="citizen.close", subject=f"citizen:{citizen.id}",
                        request_id=request_id, wechat_identities=wechat_identities)
        await uow.record("citizen.closed", f"citizen:{citizen.id}")
        # last: it also revokes the access tokens in the registry, which a rollback cannot take back
        await sessions.end_sessions(rt, kind="citizen", subject_id=citizen.id, uow=uow)


async def export_account(rt: Runtime, *, citizen_id: int, request_id: str | None = None) -> CitizenExport:
    """The citizen's own data, unmasked (it is their copy), their WeChat bindings and sessions, and
    who on the staff read their personal data. The export itself is audited."""
    await enforce(rt.limiter, f"account-export:citizen:{citizen_id}", EXPORT_LIMITS)
    async with unit_of_work(rt) as uow:
        citizen = await Citizen.get_or_none(id=citizen_id, closed_at__isnull=True).using_db(uow.tx)
        if citizen is None:
            raise AppError("citizen_not_found", 404)
        bindings = await WechatIdentity.filter(citizen_id=citizen.id).using_db(uow.tx).order_by("id")
        tokens = await RefreshToken.filter(subject_kind="citizen", subject_id=citizen.id) \
            .using_db(uow.tx).order_by("id")
        reads = await AuditEntry.filter(subject_kind="citizen", subject_id=str(citizen.id),
                                        action__in=STAFF_READ_ACTIONS).using_db(uow.tx).order_by("id")
        await uow.audit(actor=f"citizen:{citizen.id}", action="citizen.export", subject=f"citizen:{citizen.id}",
                        request_id=request_id)
    return CitizenExport(
        exported_at=clock.now(),
        profile=ExportedProfile(
            id=citizen.id, phone=reveal(rt.cipher, citizen.phone_enc, PHONE),
            name=reveal(rt.cipher, citizen.name_enc, NAME),
            id_number=reveal(rt.cipher, citizen.id_number_enc, ID_NUMBER),
            preferred_language=citizen.preferred_language,  # type: ignore[arg-type]
            created_at=citizen.created_at),
        wechat=[ExportedWechatBinding(appid=b.appid, created_at=b.created_at) for b in bindings],
        sessions=_sessions(tokens),
        personal_data_reads=[_read(entry) for entry in reads],
    )


def _sessions(tokens: list[RefreshToken]) -> list[ExportedSession]:
    """One entry per login: a session is a family of refresh tokens, each refresh adding one."""
    families: dict[str, list[RefreshToken]] = {}
    for token in tokens:
        families.setdefault(token.family, []).append(token)
    out = []
    for family in families.values():
        revoked = [t.revoked_at for t in family if t.revoked_at is not None]
        out.append(ExportedSession(created_at=family[0].created_at, last_refreshed_at=family[-1].created_at,
                                   expires_at=family[-1].expires_at, revoked_at=min(revoked) if revoked else None))
    return out


def _read(entry: AuditEntry) -> ExportedPersonalDataRead:
    detail = entry.detail if isinstance(entry.detail, dict) else {}
    staff_id = int(entry.actor_id) if entry.actor_kind == "staff" and entry.actor_id.isdigit() else None
    return ExportedPersonalDataRead(at=entry.at, action=entry.action, staff_id=staff_id,  # type: ignore[arg-type]
                                    hall=detail.get("hall"), reason=detail.get("reason"))
