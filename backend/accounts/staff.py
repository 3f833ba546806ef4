"""Staff accounts: created, disabled and re-granted by an administrator (the CLI for now), password
login with argon2id. The checks of a new account live here, so the CLI and any later admin API
give the same answers."""
from __future__ import annotations

import re
from collections.abc import Iterable

from tortoise.expressions import Q

from backend.accounts import sessions
from backend.accounts.models import StaffGrant, StaffUser
from backend.accounts.passwords import hash_password, verify_password
from backend.accounts.schemas import GrantOut, StaffProfile, TokenPair
from backend.catalog.service import hall_lineage, list_departments
from backend.kit.auth import STAFF_ROLES, Grant, Principal
from backend.kit.contacts import NotificationContact
from backend.kit.errors import AppError
from backend.kit.identity import normalize_phone
from backend.kit.pii import PHONE, reveal
from backend.kit.ratelimit import Window, enforce
from backend.kit.uow import UnitOfWork, unit_of_work
from backend.runtime import Runtime

__all__ = [
    "create_staff", "disable_staff", "set_staff_grants", "staff_responsible", "login_staff", "get_staff_profile",
    "check_new_staff", "check_staff_password", "check_grants", "USERNAME_PATTERN",
    "PASSWORD_MIN_LENGTH", "PASSWORD_MAX_LENGTH", "set_staff_phone", "staff_contacts", "active_staff_grants",
]

# lowercase, so that "Admin" and "admin" cannot be two people; no spaces, so a name survives a shell
USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{2,63}$"
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 256          # the login request takes no more (schemas.StaffLoginRequest)
DISPLAY_NAME_MAX_LENGTH = 64


def check_staff_password(password: str) -> None:
    if not PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH:
        raise AppError("staff_password_length", 422, min=PASSWORD_MIN_LENGTH, max=PASSWORD_MAX_LENGTH)


async def _check_scope_in_catalogue(rt: Runtime, grant: Grant) -> None:
    """The grant's hall exists in the catalogue and its department sits in that hall."""
    try:
        await hall_lineage(rt, code=grant.hall)  # type: ignore[arg-type]
    except AppError as error:
        if error.code != "hall_not_found":
            raise
        raise AppError("staff_hall_unknown", 422, hall=grant.hall) from None
    if grant.department is not None:
        departments = await list_departments(rt, hall=grant.hall)
        if grant.department not in {department.code for department in departments.items}:
            raise AppError("staff_department_unknown", 422, department=grant.department, hall=grant.hall)


async def check_grants(rt: Runtime, *, grants: Iterable[Grant]) -> list[Grant]:
    """Known roles, halls that exist, departments that sit in the grant's hall."""
    grants = list(grants)
    for grant in grants:
        if grant.role not in STAFF_ROLES:
            raise AppError("unknown_role", 422, role=grant.role, roles=", ".join(STAFF_ROLES))
        if grant.hall is None:
            if grant.department is not None:
                raise AppError("staff_department_needs_hall", 422, department=grant.department)
            continue
        await _check_scope_in_catalogue(rt, grant)
    return grants


async def check_new_staff(rt: Runtime, *, username: str, grants: Iterable[Grant], display_name: str = "",
                          phone: str | None = None) -> None:
    """Everything about a new account but its password, so that a prompt asks only once these hold."""
    _sealed_phone(rt, phone)
    if not re.fullmatch(USERNAME_PATTERN, username):
        raise AppError("staff_username_invalid", 422, username=username)
    if len(display_name) > DISPLAY_NAME_MAX_LENGTH:
        raise AppError("staff_display_name_too_long", 422, max=DISPLAY_NAME_MAX_LENGTH)
    await check_grants(rt, grants=grants)
    if await StaffUser.filter(username=username).exists():
        raise AppError("staff_username_taken", 409, username=username)


def _sealed_phone(rt: Runtime, phone: str | None) -> str | None:
    if phone is None:
        return None
    try:
        return rt.cipher.encrypt(normalize_phone(phone), purpose=PHONE)
    except ValueError:
        raise AppError("staff_phone_invalid", 422) from None


async def create_staff(rt: Runtime, *, username: str, password: str, display_name: str = "",
                       grants: Iterable[Grant], phone: str | None = None, actor: str = "system:cli",
                       tx: UnitOfWork | None = None) -> StaffUser:
    """`phone`: where the time-limit warnings of the staff member's work go by SMS (optional)."""
    grants = list(grants)
    check_staff_password(password)
    phone_enc = _sealed_phone(rt, phone)
    await check_new_staff(rt, username=username, grants=grants, display_name=display_name, phone=phone)
    # hashed before the transaction: on SQLite the write lock would be held for the whole hash
    password_hash = hash_password(password)
    async with unit_of_work(rt, tx) as uow:
        if await StaffUser.filter(username=username).using_db(uow.tx).exists():
            raise AppError("staff_username_taken", 409, username=username)
        staff = await StaffUser.create(username=username, password_hash=password_hash,
                                       display_name=display_name, phone_enc=phone_enc, using_db=uow.tx)
        for grant in grants:
            await StaffGrant.create(staff=staff, role=grant.role, hall_code=grant.hall,
                                    department_code=grant.department, using_db=uow.tx)
        await uow.audit(actor=actor, action="staff.create", subject=f"staff:{staff.id}",
                        roles=[g.role for g in grants])
    return staff


async def _lock_staff(username: str, *, uow: UnitOfWork) -> StaffUser:
    staff = await StaffUser.filter(username=username).using_db(uow.tx).select_for_update().first()
    if staff is None:
        raise AppError("staff_not_found", 404, username=username)
    return staff


def _spec(grant: Grant) -> str:
    return grant.role + (f"@{grant.hall}" if grant.hall else "") + (f"/{grant.department}" if grant.department else "")


async def disable_staff(rt: Runtime, *, username: str, actor: str, tx: UnitOfWork | None = None) -> StaffUser:
    """Stop a staff member at once: no more logins, and every session ends, access tokens included."""
    async with unit_of_work(rt, tx) as uow:
        staff = await _lock_staff(username, uow=uow)
        if staff.active:
            staff.active = False
            await staff.save(using_db=uow.tx, update_fields=["active"])
        await uow.audit(actor=actor, action="staff.disable", subject=f"staff:{staff.id}")
        await uow.record("staff.disabled", f"staff:{staff.id}")
        await sessions.end_sessions(rt, kind="staff", subject_id=staff.id, uow=uow)
    return staff


async def set_staff_phone(rt: Runtime, *, username: str, phone: str | None, actor: str,
                          tx: UnitOfWork | None = None) -> StaffUser:
    """Set (or, with None, remove) the phone a staff member's time-limit warnings go to."""
    phone_enc = _sealed_phone(rt, phone)
    async with unit_of_work(rt, tx) as uow:
        staff = await _lock_staff(username, uow=uow)
        staff.phone_enc = phone_enc
        await staff.save(using_db=uow.tx, update_fields=["phone_enc"])
        await uow.audit(actor=actor, action="staff.phone", subject=f"staff:{staff.id}", removed=phone is None)
    return staff


async def staff_contacts(rt: Runtime, *, staff_ids: Iterable[int],
                         tx: UnitOfWork | None = None) -> dict[int, NotificationContact]:
    """Active staff among `staff_ids` with a phone, keyed by id: reached by SMS in Chinese (the
    working language of the halls' staff), never by WeChat."""
    ids = sorted(set(staff_ids))
    if not ids:
        return {}
    staff = StaffUser.filter(id__in=ids, active=True, phone_enc__isnull=False)
    return {member.id: NotificationContact(kind="staff", id=member.id, language="zh",
                                           phone=reveal(rt.cipher, member.phone_enc, PHONE), wechat_openid=None,
                                           wechat=False, sms=True)
            for member in await (staff.using_db(tx.tx) if tx is not None else staff)}


async def staff_responsible(rt: Runtime, *, role: str, hall_lineage: list[str], department: str,
                            limit: int = 20, tx: UnitOfWork | None = None) -> list[int]:
    """Active staff holding `role` for `department` of the hall (`hall_lineage`: its code, then its
    ancestors'): a grant of that department or of none, for the hall or a hall above it. Whom a time
    limit warning of the department's work goes to: the department's own people first (nearest hall
    first), then those whose grant covers every department, at most `limit`."""
    grants = StaffGrant.filter(Q(hall_code__in=hall_lineage) | Q(hall_code__isnull=True),
                               Q(department_code=department) | Q(department_code__isnull=True),
                               role=role, staff__active=True)
    rows = await (grants.using_db(tx.tx) if tx is not None else grants) \
        .values_list("staff_id", "department_code", "hall_code")
    nearness = {hall: position for position, hall in enumerate(hall_lineage)}
    ranked = sorted(rows, key=lambda row: (row[1] is None, nearness.get(row[2], len(hall_lineage)), row[0]))
    return list(dict.fromkeys(staff_id for staff_id, _, _ in ranked))[:limit]


async def set_staff_grants(rt: Runtime, *, username: str, grants: Iterable[Grant], actor: str,
                           tx: UnitOfWork | None = None) -> StaffUser:
    """Replace a staff member's roles. Their sessions end at once: a token names the grants it was
    issued with, so one from before would keep the old roles until it expired."""
    grants = await check_grants(rt, grants=grants)
    async with unit_of_work(rt, tx) as uow:
        staff = await _lock_staff(username, uow=uow)
        before = await StaffGrant.filter(staff_id=staff.id).using_db(uow.tx).order_by("id")
        await StaffGrant.filter(staff_id=staff.id).using_db(uow.tx).delete()
        for grant in grants:
            await StaffGrant.create(staff=staff, role=grant.role, hall_code=grant.hall,
                                    department_code=grant.department, using_db=uow.tx)
        await uow.audit(actor=actor, action="staff.grants", subject=f"staff:{staff.id}",
                        before=[_spec(Grant(g.role, g.hall_code, g.department_code)) for g in before],
                        after=[_spec(g) for g in grants])
        await uow.record("staff.grants_changed", f"staff:{staff.id}")
        await sessions.end_sessions(rt, kind="staff", subject_id=staff.id, uow=uow)
    return staff


async def login_staff(rt: Runtime, *, username: str, password: str, client_ip: str) -> TokenPair:
    staff_limits = rt.settings.staff
    # Both limits count the attempt before its password is checked, as the SMS code does: of any
    # number of parallel guesses at most `login_attempts_per_15_minutes` reach argon2. Once a username
    # is out of attempts even the right password waits, or a guesser would learn which guess was right.
    await enforce(rt.limiter, f"staff-login:ip:{client_ip}",
                  [Window(staff_limits.login_attempts_per_ip_per_15_minutes, 900)])
    username_key = f"staff-login:{sessions.sha256_hex(username.lower())}"
    username_limit = [Window(staff_limits.login_attempts_per_15_minutes, 900)]
    await enforce(rt.limiter, username_key, username_limit)
    # argon2 runs outside any transaction (it is slow); the row read here only gives it the hash
    staff = await StaffUser.get_or_none(username=username)
    async with rt.password_checks.turn():
        verified = await verify_password(staff.password_hash if staff else None, password)
    if not verified or staff is None:
        raise AppError("login_failed", 401)
    async with unit_of_work(rt) as uow:
        # What the session holds is decided here, with the row locked as disable_staff and
        # set_staff_grants lock it: the login lands wholly before a change (whose ending of sessions
        # then includes it) or after it (and sees the account disabled, or the new grants).
        current = await StaffUser.filter(id=staff.id).using_db(uow.tx).select_for_update().first()
        if current is None:  # deleted meanwhile: the answer a login a moment later gets
            raise AppError("login_failed", 401)
        if not current.active:
            raise AppError("account_disabled", 403)
        tokens = await sessions.open_session(rt, kind="staff", subject_id=staff.id, uow=uow)
    await rt.limiter.forget(username_key, username_limit)
    return tokens


async def get_staff_profile(rt: Runtime, *, principal: Principal) -> StaffProfile:
    staff = await StaffUser.get_or_none(id=principal.id, active=True)
    if staff is None:  # a token signed for someone who has since been deleted or disabled
        raise AppError("token_invalid", 401)
    return StaffProfile(id=staff.id, username=staff.username, display_name=staff.display_name,
                        grants=[GrantOut(role=g.role, hall=g.hall, department=g.department)
                                for g in principal.grants])


async def active_staff_grants(rt: Runtime, *, staff_ids: Iterable[int],
                              tx: UnitOfWork | None = None) -> dict[int, tuple[Grant, ...]]:
    """The grants of the active staff members among `staff_ids`, as the database holds them now."""
    wanted = list(staff_ids)
    if not wanted:
        return {}
    query = StaffGrant.filter(staff_id__in=wanted, staff__active=True)
    rows = await (query.using_db(tx.tx) if tx is not None else query) \
        .order_by("staff_id", "id").values("staff_id", "role", "hall_code", "department_code")
    grants: dict[int, tuple[Grant, ...]] = {}
    for row in rows:
        grants[row["staff_id"]] = grants.get(row["staff_id"], ()) + (
            Grant(role=row["role"], hall=row["hall_code"], department=row["department_code"]),)
    return grants
