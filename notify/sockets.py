"""The citizen's notifications live (kit.sockets: authenticate, snapshot, then updates): an open app
hears of each new notification at once; the inbox list is the truth it refetches."""
from sanic import Blueprint, Request

from backend.kit.errors import AppError
from backend.kit.openapi import doc
from backend.kit.sockets import Feed, authenticate_socket, close_with_error, serve_feed
from notify import service
from notify.schemas import InboxQuery

bp = Blueprint("notify_sockets", url_prefix="/ws")


@bp.websocket("/me/notifications")
@doc(summary="Websocket: my notifications (a snapshot of the newest and the unread count, then each new one; "
             "Bearer on the upgrade, or an auth message first)", tag="live", secured=True, status=101,
     errors=(426,))
async def my_notifications(request: Request, ws):
    rt = request.app.ctx.rt
    try:
        principal = await authenticate_socket(request, ws)
        if principal.kind != "citizen":
            raise AppError("forbidden_role", 403)
    except AppError as error:
        return await close_with_error(request, ws, error)

    async def snapshot():
        return await service.list_inbox(rt, citizen_id=principal.id, query=InboxQuery())

    async def update(message: dict) -> list[dict]:
        return [message] if message.get("event") == "notification.new" else []

    await serve_feed(request, ws, Feed(channels=(f"citizen:{principal.id}",), snapshot=snapshot, update=update))
