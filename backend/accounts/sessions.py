"""Sessions and tokens: a login opens a session (a family of rotating refresh tokens); each refresh
token works once; its access tokens name the session, so ending it stops them at once (kit.sessions)."""
from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

from backend.accounts.models import Citizen, RefreshToken, StaffGrant, StaffUser
from backend.accounts.schemas import TokenPair
from backend.kit import clock
from backend.kit.auth import Grant, Principal, issue_access_token
from backend.kit.errors import AppError
from backend.kit.uow import UnitOfWork, unit_of_work
from backend.runtime import Runtime

__all__ = ["open_session", "refresh_session", "logout", "end_sessions", "staff_principal", "citizen_principal",
           "purge_expired_refresh_tokens", "session_revoked", "sha256_hex"]


def sha256_hex(value: str) -> str:
    """How a refresh token is kept (and a staff username in a login counter's key): never in clear."""
    return hashlib.sha256(value.encode()).hexdigest()


async def _issue(rt: Runtime, principal: Principal, *, uow: UnitOfWork) -> TokenPair:
    access_token, expires_in = issue_access_token(rt.settings, principal)
    refresh_token = secrets.token_urlsafe(32)
    ttl = timedelta(days=rt.settings.auth.refresh_ttl_days)
    await RefreshToken.create(
        token_hash=sha256_hex(refresh_token), family=principal.session, subject_kind=principal.kind,
        subject_id=principal.id, expires_at=clock.now() + ttl, using_db=uow.tx)
    return TokenPair(access_token=access_token, expires_in=expires_in, refresh_token=refresh_token,
                     refresh_expires_in=int(ttl.total_seconds()))


async def citizen_principal(citizen_id: int, *, session: str, uow: UnitOfWork) -> Principal:
    language = await Citizen.filter(id=citizen_id).using_db(uow.tx).values_list("preferred_language", flat=True)
    return Principal(kind="citizen", id=citizen_id, session=session, language=language[0] if language else None)


async def staff_principal(staff_id: int, *, session: str, uow: UnitOfWork) -> Principal:
    grants = await StaffGrant.filter(staff_id=staff_id).using_db(uow.tx).order_by("id")
    return Principal(kind="staff", id=staff_id, session=session, grants=tuple(
        Grant(role=g.role, hall=g.hall_code, department=g.department_code) for g in grants))


async def open_session(rt: Runtime, *, kind: str, subject_id: int, uow: UnitOfWork) -> TokenPair:
    """A new session for a citizen or staff member who has just proved who they are."""
    session = uuid.uuid4().hex
    if kind == "staff":
        principal = await staff_principal(subject_id, session=session, uow=uow)
    else:
        principal = await citizen_principal(subject_id, session=session, uow=uow)
    return await _issue(rt, principal, uow=uow)


async def refresh_session(rt: Runtime, *, refresh_token: str) -> TokenPair:
    """Trade a refresh token for a new pair. Each token works once. A second use of the same token
    (after a short grace for concurrent requests) means it was copied: its whole family is revoked and
    both holders must log in again."""
    token_hash = sha256_hex(refresh_token)
    now = clock.now()
    async with unit_of_work(rt) as uow:
        claimed = await RefreshToken.filter(
            token_hash=token_hash, used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now,
        ).using_db(uow.tx).update(used_at=now)
        token = await RefreshToken.get_or_none(token_hash=token_hash).using_db(uow.tx)
        if claimed and token is not None:
            if token.subject_kind == "staff":
                staff = await StaffUser.get_or_none(id=token.subject_id).using_db(uow.tx)
                if staff is None or not staff.active:
                    raise AppError("account_disabled", 403)
                principal = await staff_principal(token.subject_id, session=token.family, uow=uow)
            else:
                if not await Citizen.filter(id=token.subject_id, closed_at__isnull=True).using_db(uow.tx).exists():
                    raise AppError("refresh_token_invalid", 401)
                principal = await citizen_principal(token.subject_id, session=token.family, uow=uow)
            return await _issue(rt, principal, uow=uow)
        # A spent token presented again means a copy exists, unless it comes within seconds of its
        # use: that is the same app firing several requests as its access token ran out.
        grace = timedelta(seconds=rt.settings.auth.refresh_reuse_grace_seconds)
        if token is not None and token.used_at is not None and token.revoked_at is None \
                and now - token.used_at > grace:
            await _revoke_families(rt, [token.family], uow=uow)
            await uow.record("auth.refresh_token_reused", f"{token.subject_kind}:{token.subject_id}",
                             family=token.family)
    # outside the transaction, so the revocation above is committed before we refuse
    raise AppError("refresh_token_invalid", 401)


async def logout(rt: Runtime, *, refresh_token: str) -> None:
    """End the session the refresh token belongs to, its access tokens included. Unknown tokens are
    ignored: logging out twice is fine."""
    async with unit_of_work(rt) as uow:
        token = await RefreshToken.get_or_none(token_hash=sha256_hex(refresh_token)).using_db(uow.tx)
        if token is not None:
            await _revoke_families(rt, [token.family], uow=uow)


async def end_sessions(rt: Runtime, *, kind: str, subject_id: int, uow: UnitOfWork) -> None:
    """End every open session of a citizen or staff member (disabled, grants changed, account closed)."""
    families = await RefreshToken.filter(subject_kind=kind, subject_id=subject_id, revoked_at__isnull=True) \
        .using_db(uow.tx).distinct().values_list("family", flat=True)
    await _revoke_families(rt, list(families), uow=uow)


async def session_revoked(session_id: str, *, tx: UnitOfWork | None = None) -> bool:
    """Has session `session_id` (an access token's `sid`, its refresh-token family) been ended, by the
    database, the truth: every revocation marks the family's tokens (_revoke_families). What
    kit.sessions asks while Redis cannot be reached."""
    return await RefreshToken.filter(family=session_id, revoked_at__isnull=False) \
        .using_db(tx.tx if tx else None).exists()


async def purge_expired_refresh_tokens(rt: Runtime, *, now: datetime | None = None) -> int:
    """Delete refresh tokens that expired more than `auth.refresh_ttl_days` ago. An expired token
    opens nothing; it is kept that long after so that presenting a spent one still ends its session
    (refresh_session) while a copy of it could be around, and not for ever."""
    cutoff = (now or clock.now()) - timedelta(days=rt.settings.auth.refresh_ttl_days)
    async with unit_of_work(rt) as uow:
        return await RefreshToken.filter(expires_at__lt=cutoff).using_db(uow.tx).delete()


async def _revoke_families(rt: Runtime, families: list[str], *, uow: UnitOfWork) -> None:
    if not families:
        return
    await RefreshToken.filter(family__in=families, revoked_at__isnull=True).using_db(uow.tx) \
        .update(revoked_at=clock.now())
    # last in the transaction: if the registry cannot be reached the whole change rolls back (503),
    # rather than a logout that answers "done" while its access tokens keep working
    await rt.revocations.revoke(families)
