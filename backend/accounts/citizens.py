"""Citizens: SMS-code login (a new phone becomes a new citizen) and the citizen's own profile."""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q

from backend.accounts.models import Citizen, OtpChallenge, WechatIdentity
from backend.accounts.schemas import CitizenLogin, CitizenProfile, NotificationChannels, ProfilePatch, SmsCodeSent
from backend.accounts import sessions
from backend.kit import clock
from backend.kit.contacts import NotificationContact
from backend.kit.errors import AppError
from backend.kit.gateways import SmsError
from backend.kit.pii import ID_NUMBER, NAME, PHONE, masked, reveal
from backend.kit.ratelimit import Window, enforce
from backend.kit.uow import UnitOfWork, unit_of_work
from backend.runtime import Runtime

__all__ = [
    "request_sms_code", "login_with_sms_code", "get_profile", "update_profile", "register_citizen",
    "find_by_phone", "lock_citizen", "attach_phone", "absorb_citizen", "is_real_name", "real_name",
    "RealName", "citizen_for_phone",
    "purge_expired_credentials", "notification_contacts", "citizen_of_wechat_user", "wechat_openid_of",
]

log = logging.getLogger("ehall.accounts")


# --- SMS login --------------------------------------------------------------------------------------

def _code_hash(rt: Runtime, challenge_key: str, code: str) -> str:
    # keyed, so a leaked table cannot be brute-forced over the million possible codes
    key = rt.settings.pii_index_key.get_secret_value().encode()
    return hmac.new(key, f"otp\x00{challenge_key}\x00{code}".encode(), hashlib.sha256).hexdigest()


async def request_sms_code(rt: Runtime, *, phone: str, client_ip: str, language: str) -> SmsCodeSent:
    otp = rt.settings.otp
    phone_index = rt.cipher.index(phone, purpose=PHONE)
    # both limits count before the SMS is paid for
    await enforce(rt.limiter, f"otp:ip:{client_ip}", [Window(otp.per_ip_per_hour, 3600)])
    await enforce(rt.limiter, f"otp:phone:{phone_index}", [
        Window(otp.per_phone_per_minute, 60), Window(otp.per_phone_per_hour, 3600),
        Window(otp.per_phone_per_day, 86400)])
    code = "".join(secrets.choice("0123456789") for _ in range(otp.length))
    salt = secrets.token_hex(8)
    now = clock.now()
    async with unit_of_work(rt) as uow:
        # a new code replaces any older one still open for this phone
        await OtpChallenge.filter(phone_index=phone_index, consumed_at__isnull=True) \
            .using_db(uow.tx).update(consumed_at=now)
        await OtpChallenge.create(phone_index=phone_index, code_hash=f"{salt}${_code_hash(rt, salt, code)}",
                                  expires_at=now + timedelta(seconds=otp.ttl_seconds), using_db=uow.tx)
    try:
        await rt.sms.send(phone, "login_code", language, code=code, minutes=otp.ttl_seconds // 60)
    except SmsError as error:
        # the code stays stored but unsent, and expires; the attempt counted, as it must (it cost a try)
        ours = not (error.retryable or error.recipient_refused)  # credentials, templates: operators must act
        log.log(logging.ERROR if ours else logging.WARNING, "login code not sent",
                extra={"ehall": {"provider": error.provider, "provider_code": error.code}})
        if error.recipient_refused:
            raise AppError("sms_refused", 422) from None
        raise AppError("sms_unavailable", 503, headers={"Retry-After": "60"}, retry_after=60) from None
    return SmsCodeSent(expires_in=otp.ttl_seconds, resend_after=60 // max(1, otp.per_phone_per_minute))


async def _consume_sms_code(rt: Runtime, phone_index: str, code: str) -> None:
    max_attempts = rt.settings.otp.max_attempts
    challenge = await OtpChallenge.filter(
        phone_index=phone_index, consumed_at__isnull=True, expires_at__gt=clock.now()).order_by("-id").first()
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
    if not await OtpChallenge.filter(id=challenge.id, consumed_at__isnull=True).update(consumed_at=clock.now()):
        raise AppError("otp_expired", 400)  # a concurrent login with the same code won


async def purge_expired_credentials(rt: Runtime, *, now: datetime | None = None) -> int:
    """(periodic job) Delete login codes that can no longer be used, expired or consumed, and refresh
    tokens long expired; returns how many rows went. Counting sends per phone lives in the rate
    limiter, not in these rows, so nothing that limits logins is lost."""
    now = now or clock.now()
    async with unit_of_work(rt) as uow:
        codes = await OtpChallenge.filter(Q(expires_at__lt=now) | Q(consumed_at__isnull=False)) \
            .using_db(uow.tx).delete()
    return codes + await sessions.purge_expired_refresh_tokens(rt, now=now)


async def login_with_sms_code(rt: Runtime, *, phone: str, code: str, client_ip: str) -> CitizenLogin:
    await enforce(rt.limiter, f"login:ip:{client_ip}", [Window(rt.settings.otp.login_per_ip_per_minute, 60)])
    await _consume_sms_code(rt, rt.cipher.index(phone, purpose=PHONE), code)
    for _ in range(2):  # two first logins of one new phone at once: the loser finds the winner's row
        try:
            async with unit_of_work(rt) as uow:
                citizen = await find_by_phone(rt, phone=phone, uow=uow, lock=True)
                is_new = citizen is None
                if citizen is None:
                    citizen = await register_citizen(rt, channel="sms", phone=phone, uow=uow)
                tokens = await sessions.open_session(rt, kind="citizen", subject_id=citizen.id, uow=uow)
                return CitizenLogin(**tokens.model_dump(), is_new=is_new)
        except IntegrityError:
            continue
    raise AppError("service_unavailable", 503)


# --- the citizen record, for this domain and the WeChat door -----------------------------------------

async def register_citizen(rt: Runtime, *, channel: str, phone: str | None = None, uow: UnitOfWork) -> Citizen:
    """A new citizen, known by a phone (SMS login) or by nothing yet (a first WeChat login)."""
    citizen = await Citizen.create(
        phone_index=rt.cipher.index(phone, purpose=PHONE) if phone else None,
        phone_enc=rt.cipher.encrypt(phone, purpose=PHONE) if phone else None, using_db=uow.tx)
    await uow.record("citizen.registered", f"citizen:{citizen.id}", channel=channel)
    return citizen


async def find_by_phone(rt: Runtime, *, phone: str, uow: UnitOfWork | None = None,
                        lock: bool = False) -> Citizen | None:
    """The citizen with this phone; with `lock`, their row stays locked until the unit of work ends.
    A login locks it so that it serialises with the closing of the same account (which locks it too):
    the login lands before the closing, whose ending of sessions then includes it, or after it, when
    the row has lost the phone and the login makes a new citizen."""
    query = Citizen.filter(phone_index=rt.cipher.index(phone, purpose=PHONE))
    if uow and lock:
        query = query.select_for_update()
    return await (query.using_db(uow.tx) if uow else query).first()


async def lock_citizen(*, citizen_id: int, uow: UnitOfWork) -> Citizen:
    """The citizen's row, locked until the unit of work ends (PostgreSQL; SQLite serialises writers)."""
    citizen = await Citizen.filter(id=citizen_id, closed_at__isnull=True).using_db(uow.tx) \
        .select_for_update().first()
    if citizen is None:
        raise AppError("citizen_not_found", 404)
    return citizen


async def is_real_name(rt: Runtime, *, citizen_id: int, tx: UnitOfWork | None = None) -> bool:
    """The citizen has given a name and an ID number (实名): what booking a hall's time needs."""
    query = Citizen.filter(id=citizen_id, closed_at__isnull=True, name_enc__isnull=False,
                           id_number_enc__isnull=False)
    return await (query.using_db(tx.tx) if tx else query).exists()


@dataclass(frozen=True)
class RealName:
    """A citizen's identity in clear, for a service that must seal its own copy (an application keeps
    the applicant as declared). Never logged, never answered unmasked."""
    name: str
    id_number: str
    phone: str | None = field(repr=False, default=None)


async def real_name(rt: Runtime, *, citizen_id: int, tx: UnitOfWork | None = None) -> RealName | None:
    """The name, ID number and phone of a real-name citizen (实名), or None if they have not given them."""
    query = Citizen.filter(id=citizen_id, closed_at__isnull=True, name_enc__isnull=False,
                           id_number_enc__isnull=False)
    citizen = await (query.using_db(tx.tx) if tx else query).first()
    if citizen is None:
        return None
    return RealName(name=reveal(rt.cipher, citizen.name_enc, NAME) or "",
                    id_number=reveal(rt.cipher, citizen.id_number_enc, ID_NUMBER) or "",
                    phone=reveal(rt.cipher, citizen.phone_enc, PHONE))


async def citizen_for_phone(rt: Runtime, *, phone: str, channel: str) -> int:
    """The citizen who logs in with `phone`, made now if nobody has yet: a window clerk or a village
    agent declares for a herder who has never used the app, and logging in with that phone later shows
    the application. Its own transaction, as a login's: two first uses of one phone at once make one
    citizen (the unique phone index refuses the second, which then finds the first)."""
    for _ in range(3):
        try:
            async with unit_of_work(rt) as uow:
                citizen = await find_by_phone(rt, phone=phone, uow=uow, lock=True)
                if citizen is None:
                    citizen = await register_citizen(rt, channel=channel, phone=phone, uow=uow)
                return citizen.id
        except IntegrityError:
            continue
    raise AppError("service_unavailable", 503)


async def attach_phone(rt: Runtime, *, citizen: Citizen, phone: str, uow: UnitOfWork) -> None:
    citizen.phone_index = rt.cipher.index(phone, purpose=PHONE)
    citizen.phone_enc = rt.cipher.encrypt(phone, purpose=PHONE)
    await citizen.save(using_db=uow.tx, update_fields=["phone_index", "phone_enc", "updated_at"])


async def absorb_citizen(rt: Runtime, *, absorbed: Citizen, into: Citizen, uow: UnitOfWork) -> None:
    """Fold a citizen record that holds nothing but a WeChat login into the phone's citizen: keep the
    profile fields the target lacks, end the absorbed record's sessions, delete it."""
    changed = []
    for column in ("name_enc", "id_number_enc", "id_number_index"):
        if getattr(into, column) is None and getattr(absorbed, column) is not None:
            setattr(into, column, getattr(absorbed, column))
            setattr(absorbed, column, None)
            changed.append(column)
    if changed:
        # the unique ID-number index would see both rows for a moment: clear the absorbed one first
        await absorbed.save(using_db=uow.tx, update_fields=changed)
        await into.save(using_db=uow.tx, update_fields=[*changed, "updated_at"])
    await sessions.end_sessions(rt, kind="citizen", subject_id=absorbed.id, uow=uow)
    await absorbed.delete(using_db=uow.tx)


# --- profile -----------------------------------------------------------------------------------------

async def _profile(rt: Runtime, citizen: Citizen, *, uow: UnitOfWork | None = None) -> CitizenProfile:
    bound = WechatIdentity.filter(citizen_id=citizen.id)
    return CitizenProfile(
        id=citizen.id,
        phone=masked(rt.cipher, citizen.phone_enc, PHONE),
        name=masked(rt.cipher, citizen.name_enc, NAME),
        id_number=masked(rt.cipher, citizen.id_number_enc, ID_NUMBER),
        preferred_language=citizen.preferred_language,  # type: ignore[arg-type]
        wechat_bound=await (bound.using_db(uow.tx) if uow else bound).exists(),
        notifications=NotificationChannels(wechat=citizen.notify_wechat, sms=citizen.notify_sms),
    )


async def get_profile(rt: Runtime, *, citizen_id: int) -> CitizenProfile:
    citizen = await Citizen.get_or_none(id=citizen_id, closed_at__isnull=True)
    if citizen is None:
        raise AppError("citizen_not_found", 404)
    return await _profile(rt, citizen)


async def update_profile(rt: Runtime, *, citizen_id: int, patch: ProfilePatch,
                         tx: UnitOfWork | None = None) -> CitizenProfile:
    """Change name, ID number or language. The row is read under lock and only the changed columns
    are written, so a phone bound in the meantime (WeChat) is never overwritten with an old value."""
    given = {f for f in patch.model_fields_set if getattr(patch, f) is not None}
    async with unit_of_work(rt, tx) as uow:
        citizen = await lock_citizen(citizen_id=citizen_id, uow=uow)
        columns = []
        if "name" in given:
            citizen.name_enc = rt.cipher.encrypt(patch.name, purpose=NAME)  # type: ignore[arg-type]
            columns.append("name_enc")
        if "id_number" in given:
            index = rt.cipher.index(patch.id_number, purpose=ID_NUMBER)  # type: ignore[arg-type]
            if await Citizen.filter(id_number_index=index).exclude(id=citizen.id).using_db(uow.tx).exists():
                # one person, one account: joining two accounts is a staff decision, not a side effect
                raise AppError("id_number_taken", 409)
            citizen.id_number_enc = rt.cipher.encrypt(patch.id_number, purpose=ID_NUMBER)  # type: ignore[arg-type]
            citizen.id_number_index = index
            columns += ["id_number_enc", "id_number_index"]
        if "preferred_language" in given:
            citizen.preferred_language = patch.preferred_language  # type: ignore[assignment]
            columns.append("preferred_language")
        if "notifications" in given:
            for channel in ("wechat", "sms"):
                wanted = getattr(patch.notifications, channel)
                if wanted is not None:
                    setattr(citizen, f"notify_{channel}", wanted)
                    columns.append(f"notify_{channel}")
        if columns:
            try:
                await citizen.save(using_db=uow.tx, update_fields=[*columns, "updated_at"])
            except IntegrityError:  # the same ID number saved by another account a moment ago
                raise AppError("id_number_taken", 409) from None
            await uow.record("citizen.profile_changed", f"citizen:{citizen.id}", fields=sorted(given))
        return await _profile(rt, citizen, uow=uow)


# --- what notify needs to reach a citizen -----------------------------------------------------------

async def notification_contacts(rt: Runtime, *, citizen_ids: Iterable[int],
                                tx: UnitOfWork | None = None) -> dict[int, NotificationContact]:
    """The open accounts among `citizen_ids`, keyed by id (a closed account is reached no more)."""
    ids = sorted(set(citizen_ids))
    if not ids:
        return {}
    citizens = Citizen.filter(id__in=ids, closed_at__isnull=True)
    identities = WechatIdentity.filter(citizen_id__in=ids, appid=rt.settings.wechat.appid).order_by("id")
    if tx is not None:
        citizens, identities = citizens.using_db(tx.tx), identities.using_db(tx.tx)
    openids = {identity.citizen_id: identity.openid for identity in await identities}  # type: ignore[attr-defined]
    return {citizen.id: NotificationContact(
        kind="citizen", id=citizen.id, language=citizen.preferred_language,
        phone=reveal(rt.cipher, citizen.phone_enc, PHONE), wechat_openid=openids.get(citizen.id),
        wechat=citizen.notify_wechat, sms=citizen.notify_sms) for citizen in await citizens}


async def citizen_of_wechat_user(rt: Runtime, *, appid: str, openid: str) -> int | None:
    """The open account a WeChat user (openid of `appid`) is bound to, if any."""
    identity = await WechatIdentity.filter(appid=appid, openid=openid, citizen__closed_at__isnull=True).first()
    return identity.citizen_id if identity is not None else None  # type: ignore[attr-defined]


async def wechat_openid_of(rt: Runtime, *, citizen_id: int) -> str | None:
    """The mini-program openid of an open account, if it has one (for WeChat's content security)."""
    openid = await WechatIdentity.filter(citizen_id=citizen_id, appid=rt.settings.wechat.appid,
                                         citizen__closed_at__isnull=True).order_by("id").first() \
        .values_list("openid", flat=True)
    return openid  # type: ignore[return-value]
