"""A hall's appointment slots (public) and the citizen's own bookings."""
from sanic import Blueprint, HTTPResponse, Request

from backend.appointments import flows, schemas, service
from backend.appointments.permissions import CHECK_IN_ROLES
from backend.catalog.schemas import HALL_CODE_PATTERN
from backend.kit.auth import authenticated
from backend.kit.http import json_response, parse_body, parse_query, path_id, path_value
from backend.kit.openapi import doc

bp = Blueprint("appointments", url_prefix="/api/v1")

HALL_CODE = {"type": "string", "pattern": HALL_CODE_PATTERN}
APPOINTMENT_ID = {"type": "integer", "format": "int64", "minimum": 1, "maximum": schemas.MAX_ID}
# the segment as it arrives: ASCII digits only (Sanic's int would also take "٣" or "３")
_ID_SEGMENT = {"pattern": r"^[0-9]{1,19}$"}


def _appointment_id(raw: str) -> int:
    return path_id(int(path_value(raw, _ID_SEGMENT, "appointment_not_found")), "appointment_not_found")


@bp.get("/halls/<code:str>/slots")
@doc(summary="A day's appointment slots (预约时段) of one queue category of a hall, with the seats left",
     tag="appointments", query=schemas.SlotQuery, response=schemas.SlotList, errors=(404,),
     path_parameters={"code": HALL_CODE})
async def list_slots(request: Request, code: str):
    code = path_value(code, HALL_CODE, "hall_not_found")
    query = parse_query(request, schemas.SlotQuery)
    slots = await service.list_slots(request.app.ctx.rt, hall=code, category=query.category, day=query.date)
    return json_response(slots)


@bp.post("/appointments")
@doc(summary="Book a slot for a service item (real-name citizens; one booking per item and day)",
     tag="appointments", body=schemas.BookingRequest, response=schemas.AppointmentOut, status=201,
     errors=(404, 409), secured=True)
@authenticated(kind="citizen")
async def book_slot(request: Request):
    body = parse_body(request, schemas.BookingRequest)
    appointment = await service.book_slot(request.app.ctx.rt, citizen_id=request.ctx.principal.id,
                                          slot_id=body.slot_id, item_code=body.service_item)
    return json_response(appointment, status=201)


@bp.get("/appointments")
@doc(summary="My bookings, latest slot first", tag="appointments", query=schemas.AppointmentQuery,
     response=schemas.AppointmentPage, secured=True)
@authenticated(kind="citizen")
async def list_appointments(request: Request):
    query = parse_query(request, schemas.AppointmentQuery)
    page = await service.list_appointments(request.app.ctx.rt, citizen_id=request.ctx.principal.id, query=query)
    return json_response(page)


@bp.get("/appointments/<appointment_id:str>")
@doc(summary="One of my bookings", tag="appointments", response=schemas.AppointmentOut, errors=(404,),
     secured=True, path_parameters={"appointment_id": APPOINTMENT_ID})
@authenticated(kind="citizen")
async def get_appointment(request: Request, appointment_id: str):
    appointment = await service.get_appointment(request.app.ctx.rt, citizen_id=request.ctx.principal.id,
                                                appointment_id=_appointment_id(appointment_id))
    return json_response(appointment)


@bp.post("/appointments/<appointment_id:str>/cancel")
@doc(summary="Cancel my booking (until the deadline before its slot); the seat goes back", tag="appointments",
     response=schemas.AppointmentOut, errors=(404, 409), secured=True,
     path_parameters={"appointment_id": APPOINTMENT_ID})
@authenticated(kind="citizen")
async def cancel_appointment(request: Request, appointment_id: str):
    appointment = await service.cancel_appointment(request.app.ctx.rt, citizen_id=request.ctx.principal.id,
                                                   appointment_id=_appointment_id(appointment_id))
    return json_response(appointment)


@bp.post("/appointments/<appointment_id:str>/reschedule")
@doc(summary="Move my booking to another slot of the same hall: all or nothing", tag="appointments",
     body=schemas.RescheduleRequest, response=schemas.AppointmentOut, errors=(404, 409), secured=True,
     path_parameters={"appointment_id": APPOINTMENT_ID})
@authenticated(kind="citizen")
async def reschedule_appointment(request: Request, appointment_id: str):
    appointment_id_ = _appointment_id(appointment_id)
    body = parse_body(request, schemas.RescheduleRequest)
    appointment = await service.reschedule_appointment(
        request.app.ctx.rt, citizen_id=request.ctx.principal.id, appointment_id=appointment_id_,
        slot_id=body.slot_id)
    return json_response(appointment)


@bp.get("/appointments/<appointment_id:str>/qr")
@doc(summary="My booking's check-in code as a QR code, for the hall's kiosk", tag="appointments",
     query=schemas.QrQuery, media_types=("image/svg+xml", "image/png"), errors=(404, 409), secured=True,
     path_parameters={"appointment_id": APPOINTMENT_ID})
@authenticated(kind="citizen")
async def check_in_qr(request: Request, appointment_id: str):
    appointment_id_ = _appointment_id(appointment_id)
    query = parse_query(request, schemas.QrQuery)
    image = await service.check_in_qr(request.app.ctx.rt, citizen_id=request.ctx.principal.id,
                                      appointment_id=appointment_id_, image_format=query.format)
    # the code checks a booking in: it stays on the holder's phone, in no shared cache
    return HTTPResponse(image.content, content_type=image.media_type,
                        headers={"Cache-Control": "private, no-store"})


@bp.post("/kiosk/check-in")
@doc(summary="Check a booking in at the hall's kiosk (签到): its QR code becomes a priority ticket; "
             "a second scan answers the same ticket", tag="kiosk",
     body=schemas.CheckInRequest, response=schemas.CheckInOut, errors=(404, 409, 410), secured=True)
@authenticated(kind="staff", roles=CHECK_IN_ROLES)
async def check_in(request: Request):
    body = parse_body(request, schemas.CheckInRequest)
    checked_in = await flows.check_in(request.app.ctx.rt, principal=request.ctx.principal, code=body.code,
                                      hall=body.hall)
    return json_response(checked_in)
