"""Check-in (签到): a booking becomes a priority ticket at the hall's kiosk, in one unit of work.

The story spans three domains, so it is told here in one place:
1. the kiosk (or a clerk) must work in the hall before any code is read;
2. the code must be one we signed, for this hall, inside the booking's check-in window
   (appointments.verify_check_in_code: forged 400, other hall 403, too early 409, expired 410);
3. the grant must also reach the department of the booked item (a 公安 clerk does not check in a
   不动产 booking);
4. then, atomically: the booking becomes checked_in, a ticket with the appointment priority is issued
   in the booking's queue, and the citizen's business with the hall is recorded (the relation that lets
   the hall's staff read their personal data). Either all of it happens or none of it. A citizen who
   already waits in that queue with a number taken from the phone is not refused: that ticket becomes
   the booking's (raised to the appointment priority), so they keep their number and hold one ticket.
A second scan of the same code answers the same ticket: both steps of 4 are idempotent per booking.
"""
from __future__ import annotations

from backend.accounts import personal_data
from backend.appointments.models import Appointment
from backend.appointments.permissions import CHECK_IN_ROLES, require_check_in_scope
from backend.appointments.schemas import CheckInOut
from backend.appointments import service
from backend.catalog import service as catalog
from backend.kit.auth import Principal, require_hall_scope
from backend.kit.errors import AppError, FieldError
from backend.kit.uow import unit_of_work
from backend.queueing import service as queueing
from backend.runtime import Runtime

__all__ = ["check_in"]


def _kiosk_hall(principal: Principal, hall: str | None) -> str:
    """The hall named in the request, or the one hall the caller's check-in grant is for (a kiosk)."""
    if hall is not None:
        return hall
    halls = {g.hall for g in principal.grants if g.role in CHECK_IN_ROLES and g.hall}
    if len(halls) != 1:
        raise AppError("validation_failed", 422, errors=[FieldError("hall", "field.missing")])
    return halls.pop()


async def check_in(rt: Runtime, *, principal: Principal, code: str, hall: str | None = None) -> CheckInOut:
    hall = _kiosk_hall(principal, hall)
    lineage = await catalog.hall_lineage(rt, code=hall)
    require_hall_scope(principal, lineage, CHECK_IN_ROLES)
    appointment_id = await service.verify_check_in_code(rt, code=code, hall=hall)
    booking = await Appointment.get_or_none(id=appointment_id)
    if booking is None:
        raise AppError("check_in_code_invalid", 400)
    item = await catalog.get_service_item(rt, code=booking.item_code)
    require_check_in_scope(principal, lineage, item.department)
    async with unit_of_work(rt) as uow:
        appointment = await service.mark_checked_in(rt, appointment_id=booking.id, tx=uow)
        ticket = await queueing.issue_ticket(
            rt, hall=hall, category=booking.category, source="appointment", priority="appointment",
            citizen_id=booking.citizen_id, appointment_id=booking.id, tx=uow)
        await personal_data.record_contact(rt, citizen_id=booking.citizen_id, hall=hall, source="appointment",
                                           staff_id=principal.id, uow=uow)
    return CheckInOut(appointment=appointment, ticket=ticket)
