"""Appointments (预约): slots cut from a hall's opening hours, booking, cancelling and moving a booking,
the signed check-in code and its QR image, no-show marking and the suspension it leads to.

Seats never over-sell: `AppointmentSlot.booked` moves only by conditional UPDATEs in the booking's
transaction (`booked < capacity` to take a seat, `booked > 0` to give one back), and the unique index
on (citizen, item, day, active_key) refuses a second active booking of one item on one day whatever
the timing. A reschedule takes the new seat before it gives the old one back, in one transaction: it
either moves or changes nothing.

Slots are made lazily: the first request for a bookable day (GET .../slots) inserts that day's slots,
and a second maker's insert is ignored by the unique index on (hall, category, starts_at).
`generate_slots` is the same step for a job that wants the horizon made ahead of the morning rush.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import io
import re
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

import qrcode
import qrcode.image.pure
import qrcode.image.svg
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from backend.accounts.citizens import is_real_name
from backend.appointments.models import ACTIVE, Appointment, AppointmentSlot
from backend.appointments.schemas import (
    AppointmentOut, AppointmentPage, AppointmentQuery, NamedRef, QrImage, SlotList, SlotOut, SlotRef,
)
from backend.catalog.calendar import OpeningHours, WorkingCalendar
from backend.catalog.schemas import ServiceItemDetail
from backend.catalog.service import (
    get_hall_detail, get_hall_summary, get_queue_category, get_service_item,
    working_calendar,
)
from backend.kit import clock
from backend.kit.errors import AppError
from backend.kit.uow import UnitOfWork, unit_of_work
from backend.runtime import Runtime
from backend.settings import AppointmentSettings

__all__ = [
    "list_slots", "generate_slots", "book_slot", "list_appointments", "get_appointment",
    "cancel_appointment", "reschedule_appointment", "check_in_code", "check_in_qr",
    "verify_check_in_code", "mark_checked_in", "mark_no_shows", "suspended_until", "remind_tomorrow",
]

_NO_SHOW_BATCH = 500
# a slot list for a day further than this from today is empty without looking (and date.min has no eve)
_LISTED_DAYS = 400


def _settings(rt: Runtime) -> AppointmentSettings:
    return rt.settings.appointments


def _local(instant: datetime) -> datetime:
    return instant.astimezone(clock.business_zone())


# --- slots -------------------------------------------------------------------------------------------

def _slot_times(hours: list[str], day: date, minutes: int) -> Iterator[tuple[datetime, datetime]]:
    """Whole slots of `minutes` in each opening period of `day`; a remainder too short for one is left out."""
    step = timedelta(minutes=minutes)
    for start, end in OpeningHours(hours, clock.business_zone()).periods:
        cursor = datetime.combine(day, start, tzinfo=clock.business_zone())
        finish = datetime.combine(day, end, tzinfo=clock.business_zone())
        while cursor + step <= finish:
            yield cursor, cursor + step
            cursor += step


def _horizon(rt: Runtime, calendar: WorkingCalendar) -> tuple[date, date]:
    """The first and the last bookable day (both included), counted from today."""
    settings, today = _settings(rt), clock.today()
    return (today + timedelta(days=settings.first_day_offset),
            calendar.add_working_days(today, settings.horizon_working_days))


def _closes_at(rt: Runtime, day: date) -> datetime:
    """Bookings for `day` close at the cut-off time on the day before."""
    hour, minute = (int(part) for part in _settings(rt).cutoff_time.split(":"))
    return datetime.combine(day - timedelta(days=1), time(hour, minute), tzinfo=clock.business_zone())


async def generate_slots(rt: Runtime, *, hall: str, category: str, day: date,
                         hours: list[str] | None = None) -> int:
    """Make the slots of one hall's queue category on one day (idempotent: slots that exist stay as
    they are). Nothing on a day the working calendar says is not a working day. Returns how many the
    day has."""
    calendar = await working_calendar(rt)
    if not calendar.is_workday(day):
        return 0
    if hours is None:
        hours = (await get_hall_detail(rt, code=hall)).hours_workday
    existing = AppointmentSlot.filter(hall_id=hall, category=category, day=day)
    if not await existing.exists():
        shape = _settings(rt).slot_shape(hall, category)
        slots = [AppointmentSlot(hall_id=hall, category=category, day=day, starts_at=start, ends_at=end,
                                 capacity=shape.capacity)
                 for start, end in _slot_times(hours, day, shape.slot_minutes)]
        async with unit_of_work(rt) as uow:
            # a concurrent maker of the same day inserts the same rows: the unique index keeps one of each
            await AppointmentSlot.bulk_create(slots, ignore_conflicts=True, using_db=uow.tx)
    return await existing.count()


async def list_slots(rt: Runtime, *, hall: str, category: str, day: date) -> SlotList:
    """A day's slots of one queue category of a hall, made on the first request for a bookable day."""
    detail = await get_hall_detail(rt, code=hall)
    await get_queue_category(rt, hall=hall, prefix=category)
    if abs((day - clock.today()).days) > _LISTED_DAYS:   # nothing was or will be bookable then
        return SlotList(hall=hall, category=category, date=day, bookable=False, closes_at=None, items=[])
    calendar = await working_calendar(rt)
    first, last = _horizon(rt, calendar)
    workday, in_horizon = calendar.is_workday(day), first <= day <= last
    if workday and in_horizon:
        await generate_slots(rt, hall=hall, category=category, day=day, hours=detail.hours_workday)
    slots = await AppointmentSlot.filter(hall_id=hall, category=category, day=day).order_by("starts_at")
    closes_at = _closes_at(rt, day) if workday else None
    bookable = bool(slots) and in_horizon and closes_at is not None and clock.now() < closes_at
    return SlotList(hall=hall, category=category, date=day, bookable=bookable, closes_at=closes_at,
                    items=[SlotOut.from_model(slot) for slot in slots])


async def _get_slot(slot_id: int, uow: UnitOfWork) -> AppointmentSlot:
    slot = await AppointmentSlot.get_or_none(id=slot_id).using_db(uow.tx)
    if slot is None:
        raise AppError("slot_not_found", 404)
    return slot


def _check_open_for_booking(rt: Runtime, slot: AppointmentSlot, calendar: WorkingCalendar) -> None:
    """The slot is ahead, on a working day, within the horizon, and its day's bookings are still open."""
    now = clock.now()
    if slot.starts_at <= now:
        raise AppError("slot_past", 409)
    if not calendar.is_workday(slot.day):
        raise AppError("hall_closed_that_day", 409, date=slot.day.isoformat())
    first, last = _horizon(rt, calendar)
    if not first <= slot.day <= last:
        raise AppError("outside_booking_horizon", 409, first=first.isoformat(), last=last.isoformat())
    closes_at = _closes_at(rt, slot.day)
    if now >= closes_at:
        raise AppError("booking_closed", 409, closed_at=closes_at.isoformat(timespec="minutes"))


async def _check_item_served(rt: Runtime, *, slot: AppointmentSlot, item: ServiceItemDetail,
                             uow: UnitOfWork) -> None:
    """The item takes appointments and the slot's queue serves its department."""
    if not item.appointment:
        raise AppError("appointment_not_offered", 422)
    category = await get_queue_category(rt, hall=slot.hall_id, prefix=slot.category, tx=uow)
    if item.department not in category.departments:
        raise AppError("item_not_served_here", 422)


# --- suspension after no-shows -------------------------------------------------------------------------

async def suspended_until(rt: Runtime, *, citizen_id: int, now: datetime | None = None,
                          tx: UnitOfWork | None = None) -> datetime | None:
    """Until when the citizen may not book, if they may not at `now`: `no_show_limit` no-shows whose
    slots ended within `no_show_window_days` of each other suspend booking for `suspension_days` after
    the last of them."""
    settings, now = _settings(rt), now or clock.now()
    if not settings.suspension_days:
        return None
    window, suspension = timedelta(days=settings.no_show_window_days), timedelta(days=settings.suspension_days)
    query = Appointment.filter(citizen_id=citizen_id, status="no_show", ends_at__gte=now - window - suspension,
                               ends_at__lte=now).order_by("ends_at")
    ends = await (query.using_db(tx.tx) if tx else query).values_list("ends_at", flat=True)
    limit = settings.no_show_limit
    until = max((ends[i] + suspension for i in range(limit - 1, len(ends))
                 if ends[i] - ends[i - limit + 1] <= window), default=None)
    return until if until is not None and until > now else None


# --- booking -------------------------------------------------------------------------------------------

async def book_slot(rt: Runtime, *, citizen_id: int, slot_id: int, item_code: str,
                    tx: UnitOfWork | None = None) -> AppointmentOut:
    """Book a seat of a slot for one service item. One conditional UPDATE takes the seat and the insert
    follows in the same transaction; a refusal at any step leaves nothing behind."""
    async with unit_of_work(rt, tx) as uow:
        if not await is_real_name(rt, citizen_id=citizen_id, tx=uow):
            raise AppError("real_name_required", 403)
        until = await suspended_until(rt, citizen_id=citizen_id, tx=uow)
        if until is not None:
            raise AppError("booking_suspended", 403, until=_local(until).isoformat(timespec="minutes"))
        slot = await _get_slot(slot_id, uow)
        item = await get_service_item(rt, code=item_code, tx=uow)
        await _check_item_served(rt, slot=slot, item=item, uow=uow)
        _check_open_for_booking(rt, slot, await working_calendar(rt))
        # a clear answer for the common case; the unique index below is what holds under races
        if await Appointment.filter(citizen_id=citizen_id, item_code=item.code, day=slot.day,
                                    active_key=ACTIVE).using_db(uow.tx).exists():
            raise AppError("already_booked", 409)
        taken = await AppointmentSlot.filter(id=slot.id, booked__lt=F("capacity")).using_db(uow.tx) \
            .update(booked=F("booked") + 1)
        if not taken:
            raise AppError("slot_full", 409)
        try:
            appointment = await Appointment.create(
                citizen_id=citizen_id, slot_id=slot.id, hall_code=slot.hall_id, category=slot.category,
                item_code=item.code, day=slot.day, starts_at=slot.starts_at, ends_at=slot.ends_at,
                created_at=clock.now(), updated_at=clock.now(), using_db=uow.tx)
        except IntegrityError:  # the same citizen booked the same item and day a moment ago
            raise AppError("already_booked", 409) from None
        await uow.record("appointment.booked", f"appointment:{appointment.id}", appointment=appointment.id,
                         citizen=citizen_id, slot=slot.id, hall=slot.hall_id, category=slot.category,
                         item=item.code, starts_at=slot.starts_at.isoformat())
    return await _out(rt, appointment)


# --- the citizen's bookings ------------------------------------------------------------------------------

async def _names(rt: Runtime, *, hall: str, item: str) -> tuple[NamedRef, NamedRef]:
    """The hall's and the item's names, kept with the catalogue like its own answers."""
    summary = await get_hall_summary(rt, code=hall)
    detail = await get_service_item(rt, code=item)
    return (NamedRef(code=summary.code, name=summary.name, name_mn=summary.name_mn, name_en=summary.name_en),
            NamedRef(code=detail.code, name=detail.name, name_mn=detail.name_mn, name_en=detail.name_en))


async def _out(rt: Runtime, appointment: Appointment) -> AppointmentOut:
    settings = _settings(rt)
    hall, item = await _names(rt, hall=appointment.hall_code, item=appointment.item_code)
    starts_at, ends_at = _local(appointment.starts_at), _local(appointment.ends_at)
    return AppointmentOut(
        id=appointment.id, status=appointment.status, date=appointment.day,  # type: ignore[arg-type]
        category=appointment.category,
        slot=SlotRef(id=appointment.slot_id, starts_at=starts_at, ends_at=ends_at),  # type: ignore[attr-defined]
        hall=hall, item=item, booked_at=_local(appointment.created_at),
        cancellable_until=starts_at - timedelta(minutes=settings.cancel_before_minutes),
        check_in_from=starts_at - timedelta(minutes=settings.check_in_before_minutes),
        check_in_until=ends_at + timedelta(minutes=settings.check_in_after_minutes))


async def list_appointments(rt: Runtime, *, citizen_id: int, query: AppointmentQuery) -> AppointmentPage:
    """The citizen's bookings, latest slot first."""
    mine = Appointment.filter(citizen_id=citizen_id)
    if query.status:
        mine = mine.filter(status=query.status)
    total = await mine.count()
    rows = await mine.order_by("-starts_at", "-id").offset(query.offset).limit(query.page_size)
    return AppointmentPage(items=[await _out(rt, row) for row in rows], page=query.page,
                           page_size=query.page_size, total=total)


async def _own(citizen_id: int, appointment_id: int, uow: UnitOfWork | None = None, *,
               lock: bool = False) -> Appointment:
    """The citizen's booking; another citizen's is as unknown as one that does not exist."""
    query = Appointment.filter(id=appointment_id, citizen_id=citizen_id)
    if uow is not None:
        query = query.using_db(uow.tx)
    if lock:
        query = query.select_for_update()
    appointment = await query.first()
    if appointment is None:
        raise AppError("appointment_not_found", 404)
    return appointment


async def get_appointment(rt: Runtime, *, citizen_id: int, appointment_id: int) -> AppointmentOut:
    return await _out(rt, await _own(citizen_id, appointment_id))


def _check_changeable(rt: Runtime, appointment: Appointment) -> None:
    if appointment.status != "booked":
        raise AppError("appointment_not_active", 409, appointment_status=appointment.status)
    deadline = appointment.starts_at - timedelta(minutes=_settings(rt).cancel_before_minutes)
    if clock.now() > deadline:
        raise AppError("change_deadline_passed", 409, deadline=_local(deadline).isoformat(timespec="minutes"))


async def cancel_appointment(rt: Runtime, *, citizen_id: int, appointment_id: int,
                             tx: UnitOfWork | None = None) -> AppointmentOut:
    """Cancel until `cancel_before_minutes` before the slot; the seat goes back to the slot. Cancelling
    a cancelled booking again answers it as it is (a retry on a weak network)."""
    async with unit_of_work(rt, tx) as uow:
        appointment = await _own(citizen_id, appointment_id, uow, lock=True)
        if appointment.status == "cancelled":
            return await _out(rt, appointment)
        _check_changeable(rt, appointment)
        now = clock.now()
        cancelled = await Appointment.filter(id=appointment.id, status="booked").using_db(uow.tx) \
            .update(status="cancelled", active_key=None, cancelled_at=now, updated_at=now)
        if not cancelled:  # SQLite takes no row lock: a concurrent cancel or check-in came first
            raise AppError("appointment_not_active", 409, appointment_status=(await _own(citizen_id, appointment_id, uow)).status)
        await AppointmentSlot.filter(id=appointment.slot_id, booked__gt=0).using_db(uow.tx) \
            .update(booked=F("booked") - 1)  # type: ignore[attr-defined]
        await uow.record("appointment.cancelled", f"appointment:{appointment.id}", appointment=appointment.id,
                         citizen=citizen_id, slot=appointment.slot_id, hall=appointment.hall_code,  # type: ignore[attr-defined]
                         item=appointment.item_code, starts_at=appointment.starts_at.isoformat())
        appointment = await _own(citizen_id, appointment_id, uow)
    return await _out(rt, appointment)


async def reschedule_appointment(rt: Runtime, *, citizen_id: int, appointment_id: int, slot_id: int,
                                 tx: UnitOfWork | None = None) -> AppointmentOut:
    """Move a booking to another slot of the same hall: the new seat is taken before the old one is
    given back, in one transaction, so a full new slot (or any other refusal) keeps the old booking."""
    async with unit_of_work(rt, tx) as uow:
        appointment = await _own(citizen_id, appointment_id, uow, lock=True)
        _check_changeable(rt, appointment)
        old_slot_id: int = appointment.slot_id  # type: ignore[attr-defined]
        if slot_id == old_slot_id:
            return await _out(rt, appointment)
        slot = await _get_slot(slot_id, uow)
        if slot.hall_id != appointment.hall_code:  # type: ignore[attr-defined]
            raise AppError("reschedule_other_hall", 422)
        item = await get_service_item(rt, code=appointment.item_code, tx=uow)
        await _check_item_served(rt, slot=slot, item=item, uow=uow)
        _check_open_for_booking(rt, slot, await working_calendar(rt))
        # both slot rows locked in id order: two bookings crossing between the same two slots at once
        # wait for each other instead of deadlocking
        await AppointmentSlot.filter(id__in=sorted((old_slot_id, slot.id))).using_db(uow.tx) \
            .order_by("id").select_for_update()
        taken = await AppointmentSlot.filter(id=slot.id, booked__lt=F("capacity")).using_db(uow.tx) \
            .update(booked=F("booked") + 1)
        if not taken:
            raise AppError("slot_full", 409)
        try:
            moved = await Appointment.filter(id=appointment.id, status="booked", slot_id=old_slot_id) \
                .using_db(uow.tx).update(slot_id=slot.id, category=slot.category, day=slot.day,
                                         starts_at=slot.starts_at, ends_at=slot.ends_at, updated_at=clock.now())
        except IntegrityError:  # the citizen already holds this item on the new day
            raise AppError("already_booked", 409) from None
        if not moved:
            raise AppError("appointment_not_active", 409, appointment_status=(await _own(citizen_id, appointment_id, uow)).status)
        await AppointmentSlot.filter(id=old_slot_id, booked__gt=0).using_db(uow.tx).update(booked=F("booked") - 1)
        await uow.record("appointment.rescheduled", f"appointment:{appointment.id}", appointment=appointment.id,
                         citizen=citizen_id, from_slot=old_slot_id, to_slot=slot.id, hall=slot.hall_id,
                         item=appointment.item_code, starts_at=slot.starts_at.isoformat())
        appointment = await _own(citizen_id, appointment_id, uow)
    return await _out(rt, appointment)


# --- check-in code ---------------------------------------------------------------------------------------
# EHA1.<appointment id>.<hall code>.<expiry, unix seconds in base 36>.<20 base32 characters of HMAC-SHA256>
# Upper-case letters, digits and "." only: a QR code's alphanumeric mode packs them 5.5 bits a
# character, so the ~45 characters fit a version-3 code that a kiosk reads off a cracked phone screen.
# The key is derived from jwt_secret for this one purpose; rotating that secret retires old codes,
# which the app simply fetches again.

_CODE_VERSION = "EHA1"
_CODE = re.compile(r"EHA1\.([1-9][0-9]{0,18})\.([0-9]{6,12})\.([0-9A-Z]{1,13})\.([A-Z2-7]{20})", re.ASCII)


def _code_key(rt: Runtime) -> bytes:
    return hmac.new(rt.settings.jwt_secret.get_secret_value().encode(), b"ehall appointment check-in code v1",
                    hashlib.sha256).digest()


def _code_mac(rt: Runtime, appointment_id: int, hall: str, expires: str) -> str:
    digest = hmac.new(_code_key(rt), f"{_CODE_VERSION}.{appointment_id}.{hall}.{expires}".encode(),
                      hashlib.sha256).digest()
    return base64.b32encode(digest).decode()[:20]


def _base36(value: int) -> str:
    digits = ""
    while True:
        value, remainder = divmod(value, 36)
        digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[remainder] + digits
        if not value:
            return digits


def _check_in_until(rt: Runtime, appointment: Appointment) -> datetime:
    return appointment.ends_at + timedelta(minutes=_settings(rt).check_in_after_minutes)


def _sign(rt: Runtime, appointment: Appointment) -> str:
    expires = _base36(int(_check_in_until(rt, appointment).timestamp()))
    mac = _code_mac(rt, appointment.id, appointment.hall_code, expires)
    return f"{_CODE_VERSION}.{appointment.id}.{appointment.hall_code}.{expires}.{mac}"


async def check_in_code(rt: Runtime, *, citizen_id: int, appointment_id: int) -> str:
    """The signed code the kiosk of the booking's hall accepts (also after the booking is checked in:
    a second scan gives the same ticket)."""
    appointment = await _own(citizen_id, appointment_id)
    if appointment.status not in ("booked", "checked_in"):
        raise AppError("appointment_not_active", 409, appointment_status=appointment.status)
    return _sign(rt, appointment)


async def check_in_qr(rt: Runtime, *, citizen_id: int, appointment_id: int, image_format: str) -> QrImage:
    code = await check_in_code(rt, citizen_id=citizen_id, appointment_id=appointment_id)
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=4)
    qr.add_data(code)
    qr.make(fit=True)
    if image_format == "png":
        buffer = io.BytesIO()
        qr.make_image(image_factory=qrcode.image.pure.PyPNGImage).save(buffer)
        return QrImage(content=buffer.getvalue(), media_type="image/png")
    svg = qr.make_image(image_factory=qrcode.image.svg.SvgPathImage).to_string(encoding="unicode")
    return QrImage(content=svg.encode(), media_type="image/svg+xml")


async def verify_check_in_code(rt: Runtime, *, code: str, hall: str) -> int:
    """The booking a scanned code names, if the kiosk of `hall` may check it in now: a code we signed,
    for this hall, within its check-in window (`check_in_before_minutes` before the slot to
    `check_in_after_minutes` after it), of a booking not cancelled or missed. A checked-in booking's
    code passes again, so the flow can answer a second scan with the same ticket."""
    match = _CODE.fullmatch(code.strip().upper()) if isinstance(code, str) and len(code) <= 96 else None
    if match is None:
        raise AppError("check_in_code_invalid", 400)
    appointment_id, code_hall, expires = int(match[1]), match[2], match[3]
    if not hmac.compare_digest(match[4], _code_mac(rt, appointment_id, code_hall, expires)):
        raise AppError("check_in_code_invalid", 400)
    if code_hall != hall:
        raise AppError("check_in_code_other_hall", 403)
    now = clock.now()
    if now.timestamp() > int(expires, 36):
        raise AppError("check_in_code_expired", 410)
    appointment = await Appointment.get_or_none(id=appointment_id)
    if appointment is None or appointment.hall_code != hall:
        raise AppError("check_in_code_invalid", 400)
    if appointment.status not in ("booked", "checked_in"):
        raise AppError("appointment_not_active", 409, appointment_status=appointment.status)
    # the booking may have moved since the code was drawn: its window now is the one that counts
    opens = appointment.starts_at - timedelta(minutes=_settings(rt).check_in_before_minutes)
    if now < opens:
        raise AppError("check_in_too_early", 409, opens_at=_local(opens).isoformat(timespec="minutes"))
    if now > _check_in_until(rt, appointment) and appointment.status == "booked":
        raise AppError("check_in_code_expired", 410)
    return appointment.id


async def mark_checked_in(rt: Runtime, *, appointment_id: int, tx: UnitOfWork | None = None) -> AppointmentOut:
    """booked -> checked_in, a compare-and-swap; again for the same booking it changes nothing and
    answers the booking as it is. Called by the kiosk check-in flow after verify_check_in_code."""
    async with unit_of_work(rt, tx) as uow:
        now = clock.now()
        changed = await Appointment.filter(id=appointment_id, status="booked").using_db(uow.tx) \
            .update(status="checked_in", checked_in_at=now, updated_at=now)
        appointment = await Appointment.get_or_none(id=appointment_id).using_db(uow.tx)
        if appointment is None:
            raise AppError("appointment_not_found", 404)
        if appointment.status != "checked_in":
            raise AppError("appointment_not_active", 409, appointment_status=appointment.status)
        if changed:
            await uow.record("appointment.checked_in", f"appointment:{appointment.id}", appointment=appointment.id,
                             citizen=appointment.citizen_id, slot=appointment.slot_id,  # type: ignore[attr-defined]
                             hall=appointment.hall_code)
    return await _out(rt, appointment)


# --- no-shows --------------------------------------------------------------------------------------------

async def mark_no_shows(rt: Runtime, *, now: datetime | None = None) -> int:
    """Bookings not checked in by the end of their check-in window become no_show (爽约); returns how
    many this run marked. Idempotent, and safe beside a concurrent check-in (each row is a
    compare-and-swap). A citizen whose no-shows reach the limit gets a booking_suspended event."""
    now = now or clock.now()
    deadline = now - timedelta(minutes=_settings(rt).check_in_after_minutes)
    marked = 0
    while True:
        due = await Appointment.filter(status="booked", ends_at__lte=deadline).order_by("id") \
            .limit(_NO_SHOW_BATCH).values_list("id", "citizen_id", "slot_id", "hall_code", "starts_at")
        if not due:
            return marked
        async with unit_of_work(rt) as uow:
            citizens = {}
            for appointment_id, citizen_id, slot_id, hall_code, starts_at in due:
                if not await Appointment.filter(id=appointment_id, status="booked").using_db(uow.tx) \
                        .update(status="no_show", updated_at=now):
                    continue
                marked += 1
                citizens.setdefault(citizen_id, appointment_id)
                await uow.record("appointment.no_show", f"appointment:{appointment_id}", appointment=appointment_id,
                                 citizen=citizen_id, slot=slot_id, hall=hall_code, starts_at=starts_at.isoformat())
            for citizen_id, appointment_id in citizens.items():
                until = await suspended_until(rt, citizen_id=citizen_id, now=now, tx=uow)
                if until is not None:
                    await uow.record("appointment.booking_suspended", f"citizen:{citizen_id}", citizen=citizen_id,
                                     appointment=appointment_id, until=until.isoformat())
        if len(due) < _NO_SHOW_BATCH:
            return marked


# --- the day-before reminder ------------------------------------------------------------------------

async def remind_tomorrow(rt: Runtime, *, now: datetime | None = None) -> int:
    """From `appointments.reminder_time` (local) on, each booking of the next day gets one
    appointment.reminder event (notify sends it); returns how many this run recorded. Idempotent:
    reminded_at is set by a compare-and-swap in the same transaction as the event."""
    now = now or clock.now()
    local = now.astimezone(clock.business_zone())
    if local.time() < time.fromisoformat(_settings(rt).reminder_time):
        return 0
    tomorrow = local.date() + timedelta(days=1)
    reminded = 0
    while True:
        due = await Appointment.filter(status="booked", day=tomorrow, reminded_at__isnull=True).order_by("id") \
            .limit(_NO_SHOW_BATCH).values_list("id", "citizen_id", "hall_code", "item_code", "starts_at")
        if not due:
            return reminded
        async with unit_of_work(rt) as uow:
            for appointment_id, citizen_id, hall_code, item_code, starts_at in due:
                if not await Appointment.filter(id=appointment_id, status="booked", reminded_at__isnull=True) \
                        .using_db(uow.tx).update(reminded_at=now):
                    continue
                reminded += 1
                await uow.record("appointment.reminder", f"appointment:{appointment_id}", appointment=appointment_id,
                                 citizen=citizen_id, hall=hall_code, item=item_code, starts_at=starts_at.isoformat())
        if len(due) < _NO_SHOW_BATCH:
            return reminded
