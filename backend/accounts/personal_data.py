"""Staff reads of a citizen's personal data (PIPL art. 51; GB/T 35273-2020 7.4).

A clerk finds a citizen by phone (the answer masked), in a hall they work in; that lookup is the
business relation which, for the next `staff.pii_relation_hours`, lets the hall's staff read the
citizen's unmasked data, with a stated reason, within a per-person allowance, each read audited.
Appointments, tickets, cases and conversations will become relations of the same kind.
"""
from __future__ import annotations

from datetime import timedelta

from backend.accounts import citizens
from backend.accounts.models import Citizen, CitizenContact
from backend.accounts.permissions import PII_READ_ROLES, require_pii_scope
from backend.accounts.schemas import CitizenPii, CitizenProfile
from backend.kit import clock
from backend.kit.auth import Principal
from backend.kit.errors import AppError
from backend.kit.pii import ID_NUMBER, NAME, PHONE, reveal
from backend.kit.ratelimit import Window, enforce
from backend.kit.uow import UnitOfWork, unit_of_work
from backend.runtime import Runtime

__all__ = ["find_citizen_by_phone", "read_citizen_pii", "record_contact", "count_pii_read", "PII_READ_ROLES"]


def _allowance(rt: Runtime) -> list[Window]:
    return [Window(rt.settings.staff.pii_reads_per_hour, 3600), Window(rt.settings.staff.pii_reads_per_day, 86400)]


async def count_pii_read(rt: Runtime, *, principal: Principal) -> None:
    """Count one unmasked read against the staff member's allowance, before the read: the one budget
    every kind of personal-data read by staff draws on (a citizen's profile, an application's applicant)."""
    await enforce(rt.limiter, f"pii-read:staff:{principal.id}", _allowance(rt))


async def find_citizen_by_phone(rt: Runtime, *, principal: Principal, phone: str, hall: str,
                                request_id: str) -> CitizenProfile:
    """The citizen behind a phone, masked. The lookup is audited (never with the phone) and records
    the citizen's relation to the hall."""
    await require_pii_scope(rt, principal=principal, hall=hall)
    # counted before the lookup: walking phone numbers is what this allowance stops
    await enforce(rt.limiter, f"pii-lookup:staff:{principal.id}", _allowance(rt))
    async with unit_of_work(rt) as uow:
        citizen = await citizens.find_by_phone(rt, phone=phone, uow=uow)
        await uow.audit(actor=principal.subject, action="citizen.lookup",
                        subject=f"citizen:{citizen.id if citizen else ''}", request_id=request_id,
                        hall=hall, found=citizen is not None)
        if citizen is not None:
            await record_contact(rt, citizen_id=citizen.id, hall=hall, source="lookup", staff_id=principal.id,
                                 uow=uow)
    if citizen is None:  # refused after the commit: a lookup that found nobody is audited too
        raise AppError("citizen_not_found", 404)
    return await citizens.get_profile(rt, citizen_id=citizen.id)


async def read_citizen_pii(rt: Runtime, *, principal: Principal, citizen_id: int, hall: str, reason: str,
                           request_id: str) -> CitizenPii:
    """Unmasked data for staff of a hall the citizen has business with, audited in one transaction."""
    await require_pii_scope(rt, principal=principal, hall=hall)
    await count_pii_read(rt, principal=principal)
    since = clock.now() - timedelta(hours=rt.settings.staff.pii_relation_hours)
    async with unit_of_work(rt) as uow:
        citizen = await Citizen.get_or_none(id=citizen_id, closed_at__isnull=True).using_db(uow.tx)
        related = citizen is not None and await CitizenContact.filter(
            citizen_id=citizen_id, hall_code=hall, at__gte=since).using_db(uow.tx).exists()
        if not related:
            # the same answer whether the citizen exists or not: ids cannot be walked to learn who is a user
            raise AppError("citizen_not_related", 404)
        await uow.audit(actor=principal.subject, action="citizen.pii.read", subject=f"citizen:{citizen_id}",
                        request_id=request_id, hall=hall, reason=reason, fields=["phone", "name", "id_number"])
    return CitizenPii(id=citizen.id, phone=reveal(rt.cipher, citizen.phone_enc, PHONE),
                      name=reveal(rt.cipher, citizen.name_enc, NAME),
                      id_number=reveal(rt.cipher, citizen.id_number_enc, ID_NUMBER))


async def record_contact(rt: Runtime, *, citizen_id: int, hall: str, source: str, staff_id: int | None = None,
                         uow: UnitOfWork) -> None:
    """A citizen's business with a hall (a check-in, a ticket, a case): for the next
    `staff.pii_relation_hours` that hall's staff may read the citizen's data, each read audited."""
    # dated by kit.clock, the clock read_citizen_pii measures the relation's age with
    await CitizenContact.create(citizen_id=citizen_id, hall_code=hall, source=source, staff_id=staff_id,
                                at=clock.now(), using_db=uow.tx)
