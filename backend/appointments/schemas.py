"""Appointments' requests and answers: the one definition of each (the OpenAPI document is made from them)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from backend.catalog.schemas import HALL_CODE_PATTERN
from backend.kit import clock
from backend.kit.pagination import PageQuery
from backend.queueing.schemas import TicketOut

if TYPE_CHECKING:
    from backend.appointments.models import AppointmentSlot

AppointmentStatus = Literal["booked", "checked_in", "cancelled", "no_show"]
CATEGORY_PATTERN = r"^[A-Z]$"
ITEM_CODE_PATTERN = r"^[0-9A-Za-z.-]{1,48}$"
MAX_ID = 2**63 - 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SlotQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    category: str = Field(pattern=CATEGORY_PATTERN, description="the queue category's prefix letter (A, B ...)")
    date: dt.date = Field(description="the day, YYYY-MM-DD (Asia/Shanghai)")


class SlotOut(BaseModel):
    id: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    capacity: int
    remaining: int

    @classmethod
    def from_model(cls, slot: "AppointmentSlot") -> Self:
        zone = clock.business_zone()   # the halls' time, as the catalogue gives opening hours
        return cls(id=slot.id, starts_at=slot.starts_at.astimezone(zone), ends_at=slot.ends_at.astimezone(zone),
                   capacity=slot.capacity,
                   remaining=max(0, slot.capacity - slot.booked))


class SlotList(BaseModel):
    hall: str
    category: str
    date: dt.date
    bookable: bool = Field(description="the day is a working day within the booking horizon and its "
                                       "bookings have not closed yet")
    closes_at: dt.datetime | None = Field(description="when bookings for this day close (the day before, "
                                                      "at the cut-off time); null on a day without slots")
    items: list[SlotOut]


class BookingRequest(_Strict):
    slot_id: int = Field(ge=1, le=MAX_ID)
    service_item: str = Field(pattern=ITEM_CODE_PATTERN, description="事项编码 of the item to be handled")


class RescheduleRequest(_Strict):
    slot_id: int = Field(ge=1, le=MAX_ID, description="the new slot, in the same hall")


class AppointmentQuery(PageQuery):
    status: AppointmentStatus | None = None


class SlotRef(BaseModel):
    id: int
    starts_at: dt.datetime
    ends_at: dt.datetime


class NamedRef(BaseModel):
    code: str
    name: str
    name_mn: str
    name_en: str


class AppointmentOut(BaseModel):
    id: int
    status: AppointmentStatus
    date: dt.date
    category: str = Field(description="the queue category's prefix letter")
    slot: SlotRef
    hall: NamedRef
    item: NamedRef
    booked_at: dt.datetime
    cancellable_until: dt.datetime = Field(description="cancel or reschedule until then")
    check_in_from: dt.datetime = Field(description="the kiosk takes the check-in code from then ...")
    check_in_until: dt.datetime = Field(description="... until then; not checked in by then: no_show")


class AppointmentPage(BaseModel):
    items: list[AppointmentOut]
    page: int
    page_size: int
    total: int


class QrQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    format: Literal["svg", "png"] = "svg"


@dataclass(frozen=True)
class QrImage:
    """A booking's check-in code drawn as a QR code."""
    content: bytes
    media_type: str


class CheckInRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    code: str = Field(min_length=1, max_length=96, pattern=r"^[0-9A-Za-z.]+$",
                      description="what the kiosk's scanner read from the booking's QR code")
    hall: str | None = Field(None, pattern=HALL_CODE_PATTERN,
                             description="the kiosk's hall; may be left out when the grant names one hall")


class CheckInOut(BaseModel):
    """The booking, now checked in, and the priority ticket it became (the same on a second scan)."""
    appointment: AppointmentOut
    ticket: TicketOut
