"""The WeChat door: mini-program login (wx.login code), phone binding (getPhoneNumber code), and the
subscribe-message consents the user gave (wx.requestSubscribeMessage)."""
from sanic import Blueprint, Request

from backend.kit.auth import authenticated
from backend.kit.http import json_response, parse_body
from backend.kit.openapi import doc
from miniprogram_api import schemas, service
from notify import schemas as notify_schemas, service as notify_service

bp = Blueprint("miniprogram", url_prefix="/mp/v1")


@bp.post("/auth/login")
@doc(summary="Mini-program login with the code from wx.login (session_key never leaves the server)",
     tag="miniprogram", body=schemas.WechatCode, response=schemas.WechatLogin, errors=(400, 403, 429, 503))
async def wechat_login(request: Request):
    body = parse_body(request, schemas.WechatCode)
    login = await service.login_with_wechat(request.app.ctx.rt, code=body.code)
    return json_response(login)


@bp.post("/auth/phone")
@doc(summary="Bind the phone from getPhoneNumber; joins the citizen who already uses that phone",
     tag="miniprogram", body=schemas.WechatCode, response=schemas.PhoneBound, secured=True,
     errors=(400, 409, 429, 503))
@authenticated(kind="citizen")
async def bind_phone(request: Request):
    body = parse_body(request, schemas.WechatCode)
    bound = await service.bind_wechat_phone(request.app.ctx.rt, principal=request.ctx.principal, code=body.code)
    return json_response(bound)


@bp.post("/subscriptions")
@doc(summary="Report what wx.requestSubscribeMessage answered: each accepted template may carry one "
             "subscribe message (一次性订阅)", tag="miniprogram", body=notify_schemas.SubscriptionsIn,
     response=notify_schemas.SubscriptionsOut, secured=True)
@authenticated(kind="citizen")
async def report_subscriptions(request: Request):
    body = parse_body(request, notify_schemas.SubscriptionsIn)
    credits = await notify_service.report_subscriptions(request.app.ctx.rt, citizen_id=request.ctx.principal.id,
                                                        results=body.results)
    return json_response(credits)
