"""The WeChat door: mini-program login (wx.login code) and phone binding (getPhoneNumber code)."""
from pydantic import BaseModel, ConfigDict, Field
from sanic import Blueprint, Request

from backend.accounts import service as accounts
from backend.accounts.schemas import TokenPair
from backend.kit.auth import authenticated
from backend.kit.http import json_response, parse_body
from backend.kit.openapi import doc

bp = Blueprint("miniprogram", url_prefix="/mp/v1")


class WechatCode(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    code: str = Field(min_length=1, max_length=128, pattern=r"^[0-9A-Za-z_-]+$")


class WechatLogin(TokenPair):
    phone_bound: bool


class PhoneBound(TokenPair):
    citizen_id: int
    merged: bool = Field(description="true when this WeChat user joined the citizen who already had the phone")


@bp.post("/auth/login")
@doc(summary="Mini-program login with the code from wx.login (session_key never leaves the server)",
     tag="miniprogram", body=WechatCode, response=WechatLogin, errors=(400, 403, 429, 503))
async def wechat_login(request: Request):
    body = parse_body(request, WechatCode)
    return json_response(await accounts.login_with_wechat(request.app.ctx.rt, code=body.code))


@bp.post("/auth/phone")
@doc(summary="Bind the phone from getPhoneNumber; joins the citizen who already uses that phone",
     tag="miniprogram", body=WechatCode, response=PhoneBound, secured=True, errors=(400, 409, 429, 503))
@authenticated(kind="citizen")
async def bind_phone(request: Request):
    body = parse_body(request, WechatCode)
    bound = await accounts.bind_wechat_phone(request.app.ctx.rt, principal=request.ctx.principal, code=body.code)
    return json_response(bound)
