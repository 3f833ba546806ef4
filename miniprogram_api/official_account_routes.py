"""GET/POST /wechat/oa/callback: WeChat's calls for the official account, in plain and safe mode (安全模式),
checked by wechatpy (the signature over the token; AES with the EncodingAESKey)."""
from __future__ import annotations

import logging
from xml.parsers.expat import ExpatError

from pydantic import BaseModel, ConfigDict, Field
from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

from backend.kit.errors import AppError
from backend.kit.http import parse_query
from backend.kit.openapi import doc
from miniprogram_api.official_account import take_callback_message

log = logging.getLogger("ehall.official_account")

bp = Blueprint("official_account", url_prefix="/wechat/oa")


class CallbackQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    signature: str = Field(pattern=r"^[0-9a-f]{40}$")
    timestamp: str = Field(pattern=r"^[0-9]{1,12}$")
    nonce: str = Field(pattern=r"^[0-9A-Za-z]{1,64}$")
    echostr: str | None = Field(None, pattern=r"^[0-9A-Za-z]{1,128}$")
    encrypt_type: str | None = Field(None, pattern=r"^(aes|raw)$")
    msg_signature: str | None = Field(None, pattern=r"^[0-9a-f]{40}$")
    openid: str | None = Field(None, max_length=64)


def _checked(request: Request) -> tuple[CallbackQuery, str]:
    """The query, once its signature over the token is right (a token unset refuses everything)."""
    query = parse_query(request, CallbackQuery)
    token = request.app.ctx.rt.settings.official_account.token.get_secret_value()
    try:
        if not token:
            raise InvalidSignatureException()
        check_signature(token, query.signature, query.timestamp, query.nonce)
    except InvalidSignatureException:
        raise AppError("wechat_signature_invalid", 403) from None
    return query, token


def _crypto(request: Request, token: str) -> WeChatCrypto:
    account = request.app.ctx.rt.settings.official_account
    key = account.encoding_aes_key.get_secret_value()
    if len(key) != 43:
        raise AppError("wechat_signature_invalid", 403)
    return WeChatCrypto(token, key, account.appid)


@bp.get("/callback")
@doc(summary="WeChat's URL verification of the official account's callback: echostr when the signature over "
             "the token is right", tag="official-account", query=CallbackQuery, errors=(403,),
     media_types=("text/plain",))
async def verify(request: Request):
    query, _ = _checked(request)
    if query.echostr is None:
        raise AppError("validation_failed", 422)
    return HTTPResponse(query.echostr, content_type="text/plain; charset=utf-8")


@bp.post("/callback")
@doc(summary="A follower's message or event from WeChat (plain or safe mode): a passive reply in XML, or "
             "\"success\"", tag="official-account", query=CallbackQuery, errors=(400, 403, 413),
     media_types=("application/xml", "text/plain"))
async def callback(request: Request):
    query, token = _checked(request)
    safe = query.encrypt_type == "aes"
    body = request.body or b""
    crypto = _crypto(request, token) if safe else None
    try:
        if crypto is not None:
            if query.msg_signature is None:
                raise InvalidSignatureException()
            body = crypto.decrypt_message(body, query.msg_signature, query.timestamp, query.nonce)
        message = parse_message(body)
        source, kind = str(message.source), str(message.type)
    except (InvalidSignatureException, InvalidAppIdException):
        raise AppError("wechat_signature_invalid", 403) from None
    except (ExpatError, ValueError, KeyError, TypeError, AttributeError, IndexError, UnicodeError) as error:
        log.warning("official account message not readable", extra={"ehall": {"error": type(error).__name__}})
        raise AppError("wechat_message_malformed", 400) from None
    if not source or len(source) > 64:
        raise AppError("wechat_message_malformed", 400)
    reply = await take_callback_message(
        request.app.ctx.rt, kind=kind, event=getattr(message, "event", None), openid=source,
        msg_id=str(message.id) if getattr(message, "id", None) else None, created=int(message.time or 0),
        content=getattr(message, "content", None) if kind == "text" else None)
    if reply is None:
        return HTTPResponse("success", content_type="text/plain; charset=utf-8")
    xml = TextReply(content=reply, message=message).render()
    if crypto is not None:
        xml = crypto.encrypt_message(xml, query.nonce, query.timestamp)
    return HTTPResponse(xml, content_type="application/xml; charset=utf-8")
