"""Queue tickets' requests and answers, and the messages of the live feeds: the one definition of each."""
from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.catalog.schemas import HALL_CODE_PATTERN, WindowOut

TicketStatus = Literal["waiting", "called", "serving", "done", "missed", "cancelled", "closed"]
TicketSource = Literal["kiosk", "remote", "appointment"]
Priority = Literal["normal", "appointment", "elderly", "disabled", "green_channel"]
# what a kiosk (or a clerk at the kiosk) may mark a ticket with; `appointment` comes only from check-in
KioskPriority = Literal["normal", "elderly", "disabled", "green_channel"]
PREFIX_PATTERN = r"^[A-Z]$"


class RemoteTicketIn(BaseModel):
    """A ticket taken from the app or the mini-program before arriving."""
    model_config = ConfigDict(extra="forbid")
    hall: str = Field(pattern=HALL_CODE_PATTERN)
    category: str = Field(pattern=PREFIX_PATTERN, description="the queue's prefix letter (A, B, ...)")


class KioskTicketIn(RemoteTicketIn):
    priority: KioskPriority = Field("normal", description="elderly, disabled or green_channel (绿色通道) "
                                                          "are called before the others")


class TicketPriorityIn(BaseModel):
    """A clerk marks a waiting ticket (an elderly or disabled holder seen in the hall, 绿色通道)."""
    model_config = ConfigDict(extra="forbid")
    priority: KioskPriority = Field(description="normal, elderly, disabled or green_channel; appointment "
                                                "comes only from check-in")


class TicketOut(BaseModel):
    id: int
    number: str = Field(description="prefix + number of the day: A001")
    status: TicketStatus
    category: str = Field(description="the queue it waits in now (a transfer may move it)")
    hall: str
    priority: Priority
    source: TicketSource
    business_date: dt.date
    issued_at: dt.datetime
    people_ahead: int | None = Field(description="waiting tickets called before this one (while waiting)")
    estimated_wait_minutes: int | None = Field(
        description="people ahead x recent mean service time of the queue / windows open for it")
    window: str | None = Field(description="the window it is called to (while called or being served)")
    called_at: dt.datetime | None


class TicketList(BaseModel):
    items: list[TicketOut]


class WindowTicketIn(BaseModel):
    """The ticket the clerk's console shows: an action on a ticket that has moved on is refused (409)."""
    model_config = ConfigDict(extra="forbid")
    ticket: int = Field(ge=1, le=2**63 - 1)


class TransferIn(WindowTicketIn):
    """To another queue (category) or to one window; the ticket keeps its place by arrival time."""
    category: str | None = Field(None, pattern=PREFIX_PATTERN)
    window: str | None = Field(None, pattern=r"^[0-9A-Za-z]{1,8}$")

    @model_validator(mode="after")
    def _one_target(self) -> "TransferIn":
        if (self.category is None) == (self.window is None):
            raise ValueError("field.transfer_target")
        return self


class QueuedTicketOut(BaseModel):
    id: int
    number: str
    priority: Priority
    source: TicketSource
    arrived_at: dt.datetime
    window: str | None = Field(description="transferred to this window only")


class CategoryQueueOut(BaseModel):
    category: str
    name: str
    name_mn: str
    name_en: str
    waiting: int
    tickets: list[QueuedTicketOut] = Field(description="in the order they will be called")


class HallQueueOut(BaseModel):
    hall: str
    business_date: dt.date
    categories: list[CategoryQueueOut]


class DayClosedOut(BaseModel):
    """What close_day closed, by the status the tickets had; their rows (and counts) are kept."""
    closed: int
    by_status: dict[str, int]


class CallText(BaseModel):
    zh: str
    mn: str
    en: str


class CallOut(BaseModel):
    ticket: int
    number: str
    category: str
    window: str
    called_at: dt.datetime
    text: CallText = Field(description="what the board shows and says, in zh, mn (traditional script) and en")


class BoardCategoryOut(BaseModel):
    category: str
    name: str
    name_mn: str
    name_en: str


class DisplayBoardOut(BaseModel):
    """The hall display board's snapshot: recent calls (newest first) and the waiting count per queue."""
    hall: str
    name: str
    name_mn: str
    categories: list[BoardCategoryOut]
    waiting: dict[str, int]
    calls: list[CallOut]


class ConsoleOut(BaseModel):
    """A window clerk's console: the window, its current ticket, the waiting counts of its queues."""
    window: WindowOut
    current: TicketOut | None
    waiting: dict[str, int]
