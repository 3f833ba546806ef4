"""Live feeds over websockets (kit.sockets: authenticate, snapshot, then updates)."""
from sanic import Blueprint, Request

from backend.catalog.routes import HALL_CODE, WINDOW_NUMBER
from backend.kit.errors import AppError
from backend.kit.http import path_value
from backend.kit.sockets import authenticate_socket, close_with_error, serve_feed
from backend.queueing import service

bp = Blueprint("queueing_sockets", url_prefix="/ws")


@bp.websocket("/halls/<code:str>/display")
async def hall_display(request: Request, ws, code: str):
    """The hall display board: public, like the board on the hall's wall."""
    try:
        feed = await service.display_feed(request.app.ctx.rt, hall=path_value(code, HALL_CODE, "hall_not_found"))
    except AppError as error:
        return await close_with_error(request, ws, error)
    await serve_feed(request, ws, feed)


@bp.websocket("/tickets/<ticket_id:int>")
async def ticket(request: Request, ws, ticket_id: int):
    """The holder's ticket."""
    try:
        principal = await authenticate_socket(request, ws)
        feed = await service.ticket_feed(request.app.ctx.rt, principal=principal, ticket_id=ticket_id)
    except AppError as error:
        return await close_with_error(request, ws, error)
    await serve_feed(request, ws, feed)


@bp.websocket("/staff/halls/<code:str>/windows/<number:str>")
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
