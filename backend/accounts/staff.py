"""Staff accounts: created by an administrator (the CLI for now), password login with argon2id."""
from __future__ import annotations

import hashlib
from collections.abc import Iterable

from backend.accounts import sessions
from backend.accounts.models import StaffGrant, StaffUser
from backend.accounts.passwords import hash_password, verify_password
from backend.accounts.schemas import GrantOut, StaffProfile, TokenPair
from backend.kit.auth import STAFF_ROLES, Grant, Principal
from backend.kit.errors import AppError
from backend.kit.ratelimit import Window, enforce
from backend.kit.uow import UnitOfWork, unit_of_work
from backend.runtime import Runtime

__all__ = ["create_staff", "login_staff", "get_staff_profile"]


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def create_staff(rt: Runtime, *, username: str, password: str, display_name: str = "",
                       grants: Iterable[Grant], actor: str = "system:cli",
                       tx: UnitOfWork | None = None) -> StaffUser:
    grants = list(grants)
    for grant in grants:
        if grant.role not in STAFF_ROLES:
            raise AppError("unknown_role", 422, role=grant.role, roles=", ".join(STAFF_ROLES))
    async with unit_of_work(rt, tx) as uow:
        if await StaffUser.filter(username=username).using_db(uow.tx).exists():
            raise AppError("staff_username_taken", 409)
        staff = await StaffUser.create(username=username, password_hash=hash_password(password),
                                       display_name=display_name, using_db=uow.tx)
        for grant in grants:
            await StaffGrant.create(staff=staff, role=grant.role, hall_code=grant.hall,
                                    department_code=grant.department, using_db=uow.tx)
        await uow.audit(actor=actor, action="staff.create", subject=f"staff:{staff.id}",
                        roles=[g.role for g in grants])
    return staff


async def login_staff(rt: Runtime, *, username: str, password: str, client_ip: str) -> TokenPair:
    staff_limits = rt.settings.staff
    # Both limits count the attempt before its password is checked, as the SMS code does: of any
    # number of parallel guesses at most `login_attempts_per_15_minutes` reach argon2. Once a username
    # is out of attempts even the right password waits, or a guesser would learn which guess was right.
    await enforce(rt.limiter, f"staff-login:ip:{client_ip}",
                  [Window(staff_limits.login_attempts_per_ip_per_15_minutes, 900)])
    username_key = f"staff-login:{_sha256(username.lower())}"
    username_limit = [Window(staff_limits.login_attempts_per_15_minutes, 900)]
    await enforce(rt.limiter, username_key, username_limit)
    staff = await StaffUser.get_or_none(username=username)
    async with rt.password_checks.turn():
        verified = await verify_password(staff.password_hash if staff else None, password)
    if not verified or staff is None:
        raise AppError("login_failed", 401)
    if not staff.active:
        raise AppError("account_disabled", 403)
    await rt.limiter.forget(username_key, username_limit)
    async with unit_of_work(rt) as uow:
        return await sessions.open_session(rt, kind="staff", subject_id=staff.id, uow=uow)


async def get_staff_profile(rt: Runtime, *, principal: Principal) -> StaffProfile:
    staff = await StaffUser.get_or_none(id=principal.id, active=True)
    if staff is None:  # a token signed for someone who has since been deleted or disabled
        raise AppError("token_invalid", 401)
    return StaffProfile(id=staff.id, username=staff.username, display_name=staff.display_name,
                        grants=[GrantOut(role=g.role, hall=g.hall, department=g.department)
                                for g in principal.grants])
