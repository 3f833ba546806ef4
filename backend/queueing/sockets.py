"""Live feeds over websockets (kit.sockets: authenticate, snapshot, then updates).

OpenAPI cannot describe a websocket's messages (README.md does); each feed is documented as the GET that
upgrades (101), and a plain GET without the upgrade is answered 426."""
from sanic import Blueprint, Request

from backend.catalog.routes import HALL_CODE, WINDOW_NUMBER
from backend.kit.errors import AppError
from backend.kit.http import path_value
from backend.kit.openapi import doc
from backend.kit.sockets import authenticate_socket, close_with_error, serve_feed
from backend.queueing import service
from backend.queueing.routes import TICKET_ID

SWITCHING = {"status": 101, "errors": (404, 426)}   # 404: a path naming nothing

bp = Blueprint("queueing_sockets", url_prefix="/ws")


@bp.websocket("/halls/<code:str>/display")
@doc(summary="Websocket: the hall display board (snapshot of calls and waiting counts, then each call with "
             "its zh/mn/en text)", tag="live", path_parameters={"code": HALL_CODE}, **SWITCHING)
async def hall_display(request: Request, ws, code: str):
    """The hall display board: public, like the board on the hall's wall."""
    try:
        feed = await service.display_feed(request.app.ctx.rt, hall=path_value(code, HALL_CODE, "hall_not_found"))
    except AppError as error:
        return await close_with_error(request, ws, error)
    await serve_feed(request, ws, feed)


@bp.websocket("/tickets/<ticket_id:int>")
@doc(summary="Websocket: my ticket's position, estimated wait and call (Bearer on the upgrade, or an auth "
             "message first)", tag="live", secured=True, path_parameters={"ticket_id": TICKET_ID}, **SWITCHING)
async def ticket(request: Request, ws, ticket_id: int):
    """The holder's ticket."""
    try:
        principal = await authenticate_socket(request, ws)
        feed = await service.ticket_feed(request.app.ctx.rt, principal=principal, ticket_id=ticket_id)
    except AppError as error:
        return await close_with_error(request, ws, error)
    await serve_feed(request, ws, feed)


@bp.websocket("/staff/halls/<code:str>/windows/<number:str>")
@doc(summary="Websocket: a window clerk's console (the window, its current ticket, its queues' counts)",
     tag="live", secured=True, path_parameters={"code": HALL_CODE, "number": WINDOW_NUMBER}, **SWITCHING)
async def window_console(request: Request, ws, code: str, number: str):
    """A window clerk's console."""
    try:
        principal = await authenticate_socket(request, ws)
        feed = await service.console_feed(request.app.ctx.rt, principal=principal,
                                          hall_code=path_value(code, HALL_CODE, "hall_not_found"),
                                          number=path_value(number, WINDOW_NUMBER, "window_not_found"))
    except AppError as error:
        return await close_with_error(request, ws, error)
    await serve_feed(request, ws, feed)
