"""Consulting's live feeds (kit.sockets: authenticate, snapshot, then updates). While a socket is open its
person counts as online (kit.presence): staff get new conversations, citizens get their answers there
instead of by WeChat or SMS."""
from sanic import Blueprint, Request

from backend.consult import service
from backend.consult.schemas import CONVERSATION_ID
from backend.kit.errors import AppError
from backend.kit.http import path_id
from backend.kit.openapi import doc
from backend.kit.sockets import authenticate_socket, close_with_error, serve_feed

SWITCHING = {"status": 101, "errors": (404, 426)}

bp = Blueprint("consult_sockets", url_prefix="/ws")


@bp.websocket("/conversations/<conversation_id:int>")
@doc(summary="Websocket: a conversation, for the citizen and the staff (snapshot, then message.new, typing, "
             "read, assigned, status, resolved; send typing and read)", tag="live", secured=True,
     path_parameters={"conversation_id": CONVERSATION_ID}, **SWITCHING)
async def conversation(request: Request, ws, conversation_id: int):
    rt = request.app.ctx.rt
    try:
        principal = await authenticate_socket(request, ws)
        feed = await service.conversation_feed(rt, principal=principal,
                                               conversation_id=path_id(conversation_id, "conversation_not_found"))
    except AppError as error:
        return await close_with_error(request, ws, error)
    async with rt.presence.hold(principal.kind, principal.id):
        await serve_feed(request, ws, feed)


@bp.websocket("/staff/inbox")
@doc(summary="Websocket: a staff member's consulting inbox (conversations assigned to me, the queues I can "
             "take from); holding it makes me online for new conversations", tag="live", secured=True, **SWITCHING)
async def inbox(request: Request, ws):
    rt = request.app.ctx.rt
    try:
        principal = await authenticate_socket(request, ws)
        feed = await service.inbox_feed(rt, principal=principal)
    except AppError as error:
        return await close_with_error(request, ws, error)
    async with rt.presence.hold("staff", principal.id):
        await serve_feed(request, ws, feed)
