"""The WeChat door's rules: a wx.login code becomes a citizen's session; the phone WeChat vouches for
is bound to that citizen, joining the citizen who already uses the phone in the app."""
from __future__ import annotations

from tortoise.exceptions import IntegrityError

from backend.accounts import citizens, sessions
from backend.accounts.models import Citizen, WechatIdentity
from backend.cases import service as cases_service
from backend.kit.auth import Principal
from backend.kit.errors import AppError
from backend.kit.uow import unit_of_work
from backend.runtime import Runtime
from miniprogram_api.schemas import PhoneBound, WechatLogin
from notify import service as notify_service

__all__ = ["login_with_wechat", "bind_wechat_phone"]


def _require_configured(rt: Runtime) -> None:
    if not rt.settings.wechat.secret.get_secret_value():
        # not "WeChat is not answering": nobody has given this server its mini-program secret
        raise AppError("wechat_not_configured", 503)


async def login_with_wechat(rt: Runtime, *, code: str) -> WechatLogin:
    """wx.login code -> openid (session_key stays in the gateway); a new openid becomes a new citizen."""
    _require_configured(rt)
    session = await rt.wechat.code_to_session(code)
    appid = rt.settings.wechat.appid
    for _ in range(2):  # two first logins of one openid at once: the loser finds the winner's row
        try:
            async with unit_of_work(rt) as uow:
                # locked: the closing of the account deletes this row, and the two must not interleave
                # (the login's session would escape the closing's ending of sessions)
                identity = await WechatIdentity.filter(appid=appid, openid=session.openid).using_db(uow.tx) \
                    .select_for_update().first()
                is_new = identity is None
                if identity is None:
                    citizen = await citizens.register_citizen(rt, channel="wechat", uow=uow)
                    identity = await WechatIdentity.create(appid=appid, openid=session.openid,
                                                           unionid=session.unionid, citizen=citizen,
                                                           using_db=uow.tx)
                elif session.unionid and identity.unionid != session.unionid:
                    identity.unionid = session.unionid
                    await identity.save(using_db=uow.tx, update_fields=["unionid"])
                tokens = await sessions.open_session(rt, kind="citizen", subject_id=identity.citizen_id, uow=uow)
                phone_bound = await Citizen.filter(id=identity.citizen_id, phone_index__isnull=False) \
                    .using_db(uow.tx).exists()
                return WechatLogin(**tokens.model_dump(), is_new=is_new, phone_bound=phone_bound)
        except IntegrityError:
            continue
    raise AppError("service_unavailable", 503)


async def bind_wechat_phone(rt: Runtime, *, principal: Principal, code: str) -> PhoneBound:
    """Bind the phone WeChat vouches for (getPhoneNumber code) to the mini-program user.

    If that phone already belongs to a citizen (they used the app with an SMS code), the WeChat
    identity moves to that citizen and the empty WeChat-only record goes: one person, one citizen.
    The answer carries fresh tokens, because the caller may now be a different citizen id.
    """
    _require_configured(rt)
    appid = rt.settings.wechat.appid
    if not await WechatIdentity.filter(citizen_id=principal.id, appid=appid).exists():
        raise AppError("wechat_login_required", 403)
    phone = await rt.wechat.get_phone_number(code)
    async with unit_of_work(rt) as uow:
        # everything that decides the outcome is read again inside the transaction, the caller locked
        current = await citizens.lock_citizen(citizen_id=principal.id, uow=uow)
        identity = await WechatIdentity.get_or_none(citizen_id=current.id, appid=appid).using_db(uow.tx)
        if identity is None:
            raise AppError("wechat_login_required", 403)
        owner = await citizens.find_by_phone(rt, phone=phone, uow=uow)
        if owner is None:
            await citizens.attach_phone(rt, citizen=current, phone=phone, uow=uow)
            target = current
        elif owner.id == current.id:
            target = current
        else:
            if await WechatIdentity.filter(citizen_id=owner.id, appid=appid).using_db(uow.tx) \
                    .exclude(id=identity.id).exists():
                raise AppError("phone_already_bound", 409)
            await WechatIdentity.filter(id=identity.id).using_db(uow.tx).update(citizen_id=owner.id)
            # the consents and notifications the WeChat-only record gathered are the person's
            await notify_service.move_citizen(rt, absorbed=current.id, into=owner.id, tx=uow)
            await cases_service.move_citizen(rt, absorbed=current.id, into=owner.id, tx=uow)
            await citizens.absorb_citizen(rt, absorbed=current, into=owner, uow=uow)
            target = owner
        await uow.record("citizen.phone_bound", f"citizen:{target.id}", channel="wechat",
                         merged_from=current.id if target.id != current.id else None)
        tokens = await sessions.open_session(rt, kind="citizen", subject_id=target.id, uow=uow)
    return PhoneBound(**tokens.model_dump(), citizen_id=target.id, merged=target.id != principal.id)
