"""Accounts: SMS-code and WeChat login for citizens, password login for staff, rotating refresh
tokens, the citizen's own profile, and staff reads of personal data (audited)."""
from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from backend.accounts.models import Citizen, OtpChallenge, RefreshToken, StaffGrant, StaffUser, WechatIdentity
from backend.accounts.passwords import hash_password, verify_password
from backend.accounts.schemas import ProfilePatch
from backend.kit import events
from backend.kit.audit import record_audit
from backend.kit.auth import STAFF_ROLES, Grant, Principal, issue_access_token
from backend.kit.errors import AppError
from backend.kit.pii import mask_id_number, mask_name, mask_phone
from backend.kit.ratelimit import Window, enforce, refuse_if_exhausted
from backend.runtime import Runtime

__all__ = [
    "request_sms_code", "login_with_sms_code", "login_with_wechat", "bind_wechat_phone",
    "refresh_session", "logout", "get_profile", "update_profile", "create_staff", "login_staff",
    "get_staff_profile", "find_citizen_by_phone", "read_citizen_pii", "PII_READ_ROLES",
]

# roles whose work needs a citizen's full name, phone or ID number (checking identity at a window,
# approving, filing for a herder as their agent); admins manage accounts and do not need it
PII_READ_ROLES = ("window_clerk", "approver", "agent", "supervisor")

PHONE = "citizen.phone"
NAME = "citizen.name"
ID_NUMBER = "citizen.id_number"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# --- tokens -----------------------------------------------------------------------------------

async def _issue_tokens(rt: Runtime, principal: Principal, *, family: str | None = None,
                        tx: BaseDBAsyncClient | None = None) -> dict[str, Any]:
    access_token, expires_in = issue_access_token(rt.settings, principal)
    refresh_token = secrets.token_urlsafe(32)
    ttl = timedelta(days=rt.settings.auth.refresh_ttl_days)
    await RefreshToken.create(
        token_hash=_sha256(refresh_token), family=family or uuid.uuid4().hex, subject_kind=principal.kind,
        subject_id=principal.id, expires_at=_now() + ttl, using_db=tx)
    return {"access_token": access_token, "token_type": "Bearer", "expires_in": expires_in,
            "refresh_token": refresh_token, "refresh_expires_in": int(ttl.total_seconds())}


async def _staff_principal(staff_id: int, tx: BaseDBAsyncClient | None = None) -> Principal:
    grants = await StaffGrant.filter(staff_id=staff_id).using_db(tx).order_by("id")
    return Principal(kind="staff", id=staff_id, grants=tuple(
        Grant(role=g.role, hall=g.hall_code, department=g.department_code) for g in grants))


async def refresh_session(rt: Runtime, refresh_token: str) -> dict[str, Any]:
    """Trade a refresh token for a new pair. Each token works once. A second use of the same token
    (after a short grace for concurrent requests) means it was copied: its whole family is revoked and
    both holders must log in again."""
    token_hash = _sha256(refresh_token)
    now = _now()
    async with in_transaction() as tx:
        claimed = await RefreshToken.filter(
            token_hash=token_hash, used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now,
        ).using_db(tx).update(used_at=now)
        token = await RefreshToken.get_or_none(token_hash=token_hash).using_db(tx)
        if not claimed or token is None:
            # A spent token presented again means a copy exists, unless it comes within seconds of its
            # use: that is the same app firing several requests as its access token ran out.
            grace = timedelta(seconds=rt.settings.auth.refresh_reuse_grace_seconds)
            if token is not None and token.used_at is not None and token.revoked_at is None \
                    and now - token.used_at > grace:
                await RefreshToken.filter(family=token.family, revoked_at__isnull=True) \
                    .using_db(tx).update(revoked_at=now)
                await events.record(tx, "auth.refresh_token_reused", f"{token.subject_kind}:{token.subject_id}",
                                    family=token.family)
            claimed = 0
        if claimed:
            if token.subject_kind == "staff":
                staff = await StaffUser.get_or_none(id=token.subject_id).using_db(tx)
                if staff is None or not staff.active:
                    raise AppError("account_disabled", 403)
                principal = await _staff_principal(token.subject_id, tx)
            else:
                if not await Citizen.filter(id=token.subject_id).using_db(tx).exists():
                    raise AppError("refresh_token_invalid", 401)
                principal = Principal(kind="citizen", id=token.subject_id)
            return await _issue_tokens(rt, principal, family=token.family, tx=tx)
    # outside the transaction, so the revocation above is committed before we refuse
    raise AppError("refresh_token_invalid", 401)


async def logout(refresh_token: str) -> None:
    """Revoke the session (the refresh token's family). Unknown tokens are ignored: logging out twice is fine."""
    token = await RefreshToken.get_or_none(token_hash=_sha256(refresh_token))
    if token is not None:
        await RefreshToken.filter(family=token.family, revoked_at__isnull=True).update(revoked_at=_now())


# --- citizens: SMS code ---------------------------------------------------------------------------

def _code_hash(rt: Runtime, challenge_key: str, code: str) -> str:
    # keyed, so a leaked table cannot be brute-forced over the million possible codes
    key = rt.settings.pii_index_key.get_secret_value().encode()
    return hmac.new(key, f"otp\x00{challenge_key}\x00{code}".encode(), hashlib.sha256).hexdigest()


async def request_sms_code(rt: Runtime, *, phone: str, client_ip: str, language: str) -> dict[str, int]:
    otp = rt.settings.otp
    phone_index = rt.cipher.index(phone, purpose=PHONE)
    await enforce(rt.limiter, f"otp:ip:{client_ip}", [Window(otp.per_ip_per_hour, 3600)])
    await enforce(rt.limiter, f"otp:phone:{phone_index}", [
        Window(otp.per_phone_per_minute, 60), Window(otp.per_phone_per_hour, 3600),
        Window(otp.per_phone_per_day, 86400)])
    code = "".join(secrets.choice("0123456789") for _ in range(otp.length))
    salt = secrets.token_hex(8)
    async with in_transaction() as tx:
        # a new code replaces any older one still open for this phone
        await OtpChallenge.filter(phone_index=phone_index, consumed_at__isnull=True) \
            .using_db(tx).update(consumed_at=_now())
        await OtpChallenge.create(phone_index=phone_index, code_hash=f"{salt}${_code_hash(rt, salt, code)}",
                                  expires_at=_now() + timedelta(seconds=otp.ttl_seconds), using_db=tx)
    await rt.sms.send(phone, "login_code", language, code=code, minutes=otp.ttl_seconds // 60)
    return {"expires_in": otp.ttl_seconds, "resend_after": 60 // max(1, otp.per_phone_per_minute)}


async def _consume_sms_code(rt: Runtime, phone_index: str, code: str) -> None:
    max_attempts = rt.settings.otp.max_attempts
    challenge = await OtpChallenge.filter(
        phone_index=phone_index, consumed_at__isnull=True, expires_at__gt=_now()).order_by("-id").first()
    if challenge is None:
        raise AppError("otp_expired", 400)
    # count the guess before checking it: of any number of concurrent guesses only max_attempts are compared
    counted = await OtpChallenge.filter(id=challenge.id, attempts__lt=max_attempts, consumed_at__isnull=True) \
        .update(attempts=F("attempts") + 1)
    if not counted:
        raise AppError("otp_expired", 400)
    salt, _, expected = challenge.code_hash.partition("$")
    if not hmac.compare_digest(expected, _code_hash(rt, salt, code)):
        attempts = await OtpChallenge.filter(id=challenge.id).values_list("attempts", flat=True)
        remaining = max(0, max_attempts - (attempts[0] if attempts else max_attempts))
        if remaining == 0:
            raise AppError("otp_expired", 400, remaining=0)  # this guess burnt the code
        raise AppError("otp_invalid", 400, remaining=remaining)
    if not await OtpChallenge.filter(id=challenge.id, consumed_at__isnull=True).update(consumed_at=_now()):
        raise AppError("otp_expired", 400)  # a concurrent login with the same code won


async def _citizen_for_phone(rt: Runtime, phone: str, tx: BaseDBAsyncClient) -> Citizen:
    phone_index = rt.cipher.index(phone, purpose=PHONE)
    citizen = await Citizen.get_or_none(phone_index=phone_index).using_db(tx)
    if citizen is None:
        citizen = await Citizen.create(phone_index=phone_index, phone_enc=rt.cipher.encrypt(phone, purpose=PHONE),
                                       using_db=tx)
        await events.record(tx, "citizen.registered", f"citizen:{citizen.id}", channel="sms")
    return citizen


async def login_with_sms_code(rt: Runtime, *, phone: str, code: str, client_ip: str) -> dict[str, Any]:
    await enforce(rt.limiter, f"login:ip:{client_ip}", [Window(rt.settings.otp.login_per_ip_per_minute, 60)])
    await _consume_sms_code(rt, rt.cipher.index(phone, purpose=PHONE), code)
    for _ in range(2):  # two first logins of one new phone at once: the loser finds the winner's row
        try:
            async with in_transaction() as tx:
                citizen = await _citizen_for_phone(rt, phone, tx)
                return await _issue_tokens(rt, Principal(kind="citizen", id=citizen.id), tx=tx)
        except IntegrityError:
            continue
    raise AppError("service_unavailable", 503)


# --- citizens: WeChat -----------------------------------------------------------------------------

async def login_with_wechat(rt: Runtime, *, code: str) -> dict[str, Any]:
    """wx.login code -> openid (session_key stays in the gateway); a new openid becomes a new citizen."""
    session = await rt.wechat.code_to_session(code)
    appid = rt.settings.wechat.appid
    for _ in range(2):
        try:
            async with in_transaction() as tx:
                identity = await WechatIdentity.get_or_none(appid=appid, openid=session.openid).using_db(tx)
                if identity is None:
                    citizen = await Citizen.create(using_db=tx)
                    identity = await WechatIdentity.create(appid=appid, openid=session.openid,
                                                           unionid=session.unionid, citizen=citizen, using_db=tx)
                    await events.record(tx, "citizen.registered", f"citizen:{citizen.id}", channel="wechat")
                elif session.unionid and identity.unionid != session.unionid:
                    identity.unionid = session.unionid
                    await identity.save(using_db=tx, update_fields=["unionid"])
                tokens = await _issue_tokens(rt, Principal(kind="citizen", id=identity.citizen_id), tx=tx)
                return {**tokens, "phone_bound": await Citizen.filter(
                    id=identity.citizen_id, phone_index__isnull=False).using_db(tx).exists()}
        except IntegrityError:
            continue
    raise AppError("service_unavailable", 503)


async def bind_wechat_phone(rt: Runtime, *, principal: Principal, code: str) -> dict[str, Any]:
    """Bind the phone WeChat vouches for (getPhoneNumber code) to the mini-program user.

    If that phone already belongs to a citizen (they used the app with an SMS code), the WeChat
    identity moves to that citizen and the empty WeChat-only record goes: one person, one citizen.
    The answer carries fresh tokens, because the caller may now be a different citizen id.
    """
    identity = await WechatIdentity.get_or_none(citizen_id=principal.id, appid=rt.settings.wechat.appid)
    if identity is None:
        raise AppError("wechat_login_required", 403)
    phone = await rt.wechat.get_phone_number(code)
    phone_index = rt.cipher.index(phone, purpose=PHONE)
    async with in_transaction() as tx:
        owner = await Citizen.get_or_none(phone_index=phone_index).using_db(tx)
        current = await Citizen.get(id=principal.id).using_db(tx).select_for_update()
        if owner is None:
            current.phone_index = phone_index
            current.phone_enc = rt.cipher.encrypt(phone, purpose=PHONE)
            await current.save(using_db=tx, update_fields=["phone_index", "phone_enc", "updated_at"])
            target = current
        elif owner.id == current.id:
            target = current
        else:
            other = await WechatIdentity.filter(citizen_id=owner.id, appid=rt.settings.wechat.appid) \
                .using_db(tx).exclude(id=identity.id).exists()
            if other:
                raise AppError("phone_already_bound", 409)
            await WechatIdentity.filter(id=identity.id).using_db(tx).update(citizen_id=owner.id)
            await _absorb_citizen(rt, absorbed=current, into=owner, tx=tx)
            target = owner
        await events.record(tx, "citizen.phone_bound", f"citizen:{target.id}", channel="wechat",
                            merged_from=current.id if target.id != current.id else None)
        tokens = await _issue_tokens(rt, Principal(kind="citizen", id=target.id), tx=tx)
    return {**tokens, "citizen_id": target.id, "merged": target.id != principal.id}


async def _absorb_citizen(rt: Runtime, *, absorbed: Citizen, into: Citizen, tx: BaseDBAsyncClient) -> None:
    """Fold a WeChat-only citizen into the phone's citizen: keep profile fields the target lacks,
    end the absorbed record's sessions, delete it."""
    changed = []
    for field in ("name_enc", "id_number_enc", "id_number_index"):
        if getattr(into, field) is None and getattr(absorbed, field) is not None:
            setattr(into, field, getattr(absorbed, field))
            changed.append(field)
    if changed:
        await into.save(using_db=tx, update_fields=[*changed, "updated_at"])
    await RefreshToken.filter(subject_kind="citizen", subject_id=absorbed.id, revoked_at__isnull=True) \
        .using_db(tx).update(revoked_at=_now())
    await absorbed.delete(using_db=tx)


# --- citizens: profile ----------------------------------------------------------------------------

async def _citizen(citizen_id: int) -> Citizen:
    citizen = await Citizen.get_or_none(id=citizen_id)
    if citizen is None:
        raise AppError("citizen_not_found", 404)
    return citizen


def _decrypt(rt: Runtime, value: str | None, purpose: str) -> str | None:
    return None if value is None else rt.cipher.decrypt(value, purpose=purpose)


async def _masked_profile(rt: Runtime, citizen: Citizen) -> dict[str, Any]:
    return {
        "id": citizen.id,
        "phone": mask_phone(_decrypt(rt, citizen.phone_enc, PHONE)),
        "name": mask_name(_decrypt(rt, citizen.name_enc, NAME)),
        "id_number": mask_id_number(_decrypt(rt, citizen.id_number_enc, ID_NUMBER)),
        "preferred_language": citizen.preferred_language,
        "wechat_bound": await WechatIdentity.filter(citizen_id=citizen.id).exists(),
    }


async def get_profile(rt: Runtime, *, principal: Principal) -> dict[str, Any]:
    return await _masked_profile(rt, await _citizen(principal.id))


async def update_profile(rt: Runtime, *, principal: Principal, patch: ProfilePatch) -> dict[str, Any]:
    citizen = await _citizen(principal.id)
    fields = patch.model_fields_set
    if "name" in fields and patch.name is not None:
        citizen.name_enc = rt.cipher.encrypt(patch.name, purpose=NAME)
    if "id_number" in fields and patch.id_number is not None:
        citizen.id_number_enc = rt.cipher.encrypt(patch.id_number, purpose=ID_NUMBER)
        citizen.id_number_index = rt.cipher.index(patch.id_number, purpose=ID_NUMBER)
    if "preferred_language" in fields and patch.preferred_language is not None:
        citizen.preferred_language = patch.preferred_language
    async with in_transaction() as tx:
        await citizen.save(using_db=tx)
        await events.record(tx, "citizen.profile_changed", f"citizen:{citizen.id}",
                            fields=sorted(f for f in fields if getattr(patch, f) is not None))
    return await _masked_profile(rt, citizen)


# --- staff ----------------------------------------------------------------------------------------

async def create_staff(*, username: str, password: str, display_name: str = "",
                       grants: Iterable[Grant]) -> StaffUser:
    grants = list(grants)
    for grant in grants:
        if grant.role not in STAFF_ROLES:
            raise ValueError(f"unknown role {grant.role}; roles are {', '.join(STAFF_ROLES)}")
    async with in_transaction() as tx:
        if await StaffUser.filter(username=username).using_db(tx).exists():
            raise AppError("staff_username_taken", 409)
        staff = await StaffUser.create(username=username, password_hash=hash_password(password),
                                       display_name=display_name, using_db=tx)
        for grant in grants:
            await StaffGrant.create(staff=staff, role=grant.role, hall_code=grant.hall,
                                    department_code=grant.department, using_db=tx)
        await record_audit(actor_kind="system", actor_id="cli", action="staff.create", subject_kind="staff",
                           subject_id=staff.id, tx=tx, roles=[g.role for g in grants])
    return staff


async def login_staff(rt: Runtime, *, username: str, password: str, client_ip: str) -> dict[str, Any]:
    failures = f"staff-login:{_sha256(username.lower())}"
    limit = [Window(rt.settings.staff.login_failures_per_15_minutes, 900)]
    # once a username has had too many failures even the right password waits: otherwise a guesser
    # would still learn which guess was right
    await refuse_if_exhausted(rt.limiter, failures, limit)
    staff = await StaffUser.get_or_none(username=username)
    if not await verify_password(staff.password_hash if staff else None, password):
        await rt.limiter.hit(failures, limit)
        raise AppError("login_failed", 401)
    if not staff.active:
        raise AppError("account_disabled", 403)
    return await _issue_tokens(rt, await _staff_principal(staff.id))


async def get_staff_profile(*, principal: Principal) -> dict[str, Any]:
    staff = await StaffUser.get(id=principal.id)
    return {"id": staff.id, "username": staff.username, "display_name": staff.display_name,
            "grants": [{"role": g.role, "hall": g.hall, "department": g.department} for g in principal.grants]}


async def find_citizen_by_phone(rt: Runtime, *, phone: str) -> dict[str, Any]:
    citizen = await Citizen.get_or_none(phone_index=rt.cipher.index(phone, purpose=PHONE))
    if citizen is None:
        raise AppError("citizen_not_found", 404)
    return await _masked_profile(rt, citizen)


async def read_citizen_pii(rt: Runtime, *, principal: Principal, citizen_id: int,
                           request_id: str | None) -> dict[str, Any]:
    """Unmasked personal data for a role that needs it; the read is audited in the same transaction."""
    citizen = await _citizen(citizen_id)
    async with in_transaction() as tx:
        await record_audit(actor_kind="staff", actor_id=principal.id, action="citizen.pii.read",
                           subject_kind="citizen", subject_id=citizen.id, request_id=request_id, tx=tx,
                           fields=["phone", "name", "id_number"])
    return {"id": citizen.id, "phone": _decrypt(rt, citizen.phone_enc, PHONE),
            "name": _decrypt(rt, citizen.name_enc, NAME),
            "id_number": _decrypt(rt, citizen.id_number_enc, ID_NUMBER)}
