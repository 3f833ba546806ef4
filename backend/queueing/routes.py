"""Queue tickets: the citizen's, the kiosk's, and the window clerks' endpoints (thin handlers)."""
from sanic import Blueprint, Request

from backend.catalog.routes import HALL_CODE, WINDOW_NUMBER
from backend.kit.auth import authenticated
from backend.kit.http import json_response, parse_body, path_id, path_value
from backend.kit.openapi import doc
from backend.queueing import schemas, service
from backend.queueing.permissions import KIOSK_ROLES, QUEUE_ROLES

bp = Blueprint("queueing", url_prefix="/api/v1")

TICKET_ID = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
WINDOW = {"code": HALL_CODE, "number": WINDOW_NUMBER}


@bp.post("/tickets")
@doc(summary="Take a queue ticket from the app or mini-program (while the hall is open; one waiting "
             "ticket per hall and queue)", tag="queueing", body=schemas.RemoteTicketIn,
     response=schemas.TicketOut, status=201, errors=(404, 409), secured=True)
@authenticated(kind="citizen")
async def take_ticket(request: Request):
    wanted = parse_body(request, schemas.RemoteTicketIn)
    ticket = await service.take_remote_ticket(request.app.ctx.rt, citizen_id=request.ctx.principal.id,
                                              hall=wanted.hall, category=wanted.category)
    return json_response(ticket, status=201)


@bp.get("/tickets")
@doc(summary="My queue tickets, newest first", tag="queueing", response=schemas.TicketList, secured=True)
@authenticated(kind="citizen")
async def list_my_tickets(request: Request):
    return json_response(await service.list_my_tickets(request.app.ctx.rt, citizen_id=request.ctx.principal.id))


@bp.get("/tickets/<ticket_id:int>")
@doc(summary="One of my tickets: status, people ahead, estimated wait, the window when called",
     tag="queueing", response=schemas.TicketOut, errors=(404,), secured=True,
     path_parameters={"ticket_id": TICKET_ID})
@authenticated(kind="citizen")
async def get_my_ticket(request: Request, ticket_id: int):
    ticket = await service.get_my_ticket(request.app.ctx.rt, citizen_id=request.ctx.principal.id,
                                         ticket_id=path_id(ticket_id, "ticket_not_found"))
    return json_response(ticket)


@bp.post("/tickets/<ticket_id:int>/cancel")
@doc(summary="Give up one of my waiting tickets", tag="queueing", response=schemas.TicketOut,
     errors=(404, 409), secured=True, path_parameters={"ticket_id": TICKET_ID})
@authenticated(kind="citizen")
async def cancel_my_ticket(request: Request, ticket_id: int):
    ticket = await service.cancel_my_ticket(request.app.ctx.rt, citizen_id=request.ctx.principal.id,
                                            ticket_id=path_id(ticket_id, "ticket_not_found"))
    return json_response(ticket)


@bp.post("/kiosk/tickets")
@doc(summary="Print a ticket at the hall's kiosk (取号机), optionally with a priority", tag="kiosk",
     body=schemas.KioskTicketIn, response=schemas.TicketOut, status=201, errors=(404,), secured=True)
@authenticated(kind="staff", roles=KIOSK_ROLES)
async def kiosk_ticket(request: Request):
    wanted = parse_body(request, schemas.KioskTicketIn)
    ticket = await service.issue_kiosk_ticket(request.app.ctx.rt, principal=request.ctx.principal,
                                              hall=wanted.hall, category=wanted.category, priority=wanted.priority)
    return json_response(ticket, status=201)


def _window(code: str, number: str) -> dict[str, str]:
    return {"hall_code": path_value(code, HALL_CODE, "hall_not_found"),
            "number": path_value(number, WINDOW_NUMBER, "window_not_found")}


@bp.post("/staff/halls/<code:str>/windows/<number:str>/call-next")
@doc(summary="Call the next ticket of the queues this open window serves (priority, then arrival)",
     tag="staff", response=schemas.TicketOut, errors=(404, 409), secured=True, path_parameters=WINDOW)
@authenticated(kind="staff", roles=QUEUE_ROLES)
async def call_next(request: Request, code: str, number: str):
    ticket = await service.call_next_ticket(request.app.ctx.rt, principal=request.ctx.principal,
                                            **_window(code, number))
    return json_response(ticket)


def _window_action(path: str, summary: str, action):
    @bp.post(f"/staff/halls/<code:str>/windows/<number:str>/{path}", name=f"window_{path}")
    @doc(summary=summary, tag="staff", body=schemas.WindowTicketIn, response=schemas.TicketOut,
         errors=(404, 409), secured=True, path_parameters=WINDOW)
    @authenticated(kind="staff", roles=QUEUE_ROLES)
    async def handler(request: Request, code: str, number: str):
        body = parse_body(request, schemas.WindowTicketIn)
        ticket = await action(request.app.ctx.rt, principal=request.ctx.principal, ticket_id=body.ticket,
                              **_window(code, number))
        return json_response(ticket)

    return handler


recall = _window_action("recall", "Call the window's ticket again", service.recall_ticket)
skip = _window_action("skip", "过号: the called holder did not come; the ticket is missed", service.skip_ticket)
start = _window_action("start", "Start serving the called ticket", service.start_ticket)
finish = _window_action("finish", "Finish serving the ticket", service.finish_ticket)


@bp.post("/staff/halls/<code:str>/windows/<number:str>/transfer")
@doc(summary="Send the window's ticket to another queue or window; it keeps its place by arrival time",
     tag="staff", body=schemas.TransferIn, response=schemas.TicketOut, errors=(404, 409), secured=True,
     path_parameters=WINDOW)
@authenticated(kind="staff", roles=QUEUE_ROLES)
async def transfer(request: Request, code: str, number: str):
    body = parse_body(request, schemas.TransferIn)
    ticket = await service.transfer_ticket(request.app.ctx.rt, principal=request.ctx.principal,
                                           ticket_id=body.ticket, category=body.category, window=body.window,
                                           **_window(code, number))
    return json_response(ticket)


@bp.post("/staff/tickets/<ticket_id:int>/requeue")
@doc(summary="Put a missed ticket back in its queue (once, within the configured time)", tag="staff",
     response=schemas.TicketOut, errors=(404, 409), secured=True, path_parameters={"ticket_id": TICKET_ID})
@authenticated(kind="staff", roles=QUEUE_ROLES)
async def requeue(request: Request, ticket_id: int):
    ticket = await service.requeue_ticket(request.app.ctx.rt, principal=request.ctx.principal,
                                          ticket_id=path_id(ticket_id, "ticket_not_found"))
    return json_response(ticket)


@bp.post("/staff/tickets/<ticket_id:int>/priority")
@doc(summary="Mark a waiting ticket elderly, disabled or green channel (or normal); it keeps its arrival "
             "time", tag="staff", body=schemas.TicketPriorityIn, response=schemas.TicketOut,
     errors=(404, 409), secured=True, path_parameters={"ticket_id": TICKET_ID})
@authenticated(kind="staff", roles=QUEUE_ROLES)
async def set_priority(request: Request, ticket_id: int):
    body = parse_body(request, schemas.TicketPriorityIn)
    ticket = await service.set_ticket_priority(request.app.ctx.rt, principal=request.ctx.principal,
                                               ticket_id=path_id(ticket_id, "ticket_not_found"),
                                               priority=body.priority)
    return json_response(ticket)


@bp.get("/staff/halls/<code:str>/queue")
@doc(summary="Today's waiting tickets of a hall, per queue, in calling order", tag="staff",
     response=schemas.HallQueueOut, errors=(404,), secured=True, path_parameters={"code": HALL_CODE})
@authenticated(kind="staff", roles=QUEUE_ROLES)
async def hall_queue(request: Request, code: str):
    queue = await service.hall_queue(request.app.ctx.rt, principal=request.ctx.principal,
                                     hall_code=path_value(code, HALL_CODE, "hall_not_found"))
    return json_response(queue)
