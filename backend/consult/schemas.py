"""Consulting's requests and answers, and the messages of its live feeds: the one definition of each."""
from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from backend.catalog.schemas import HALL_CODE_PATTERN

ConversationStatus = Literal["open", "pending", "resolved"]
Channel = Literal["app", "oa"]
SenderKind = Literal["citizen", "staff", "follower"]

DEPARTMENT_PATTERN = r"^[0-9A-Za-z_-]{1,32}$"
ITEM_PATTERN = r"^[0-9A-Za-z.-]{1,48}$"
# chosen by the client for each message it sends, kept across its retries
CLIENT_MSG_ID_PATTERN = r"^[0-9A-Za-z_-]{8,64}$"
TEXT_MAX = 2000
# ids are ASCII digits; sanic's <id:int> route takes only those
CONVERSATION_ID = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
MESSAGE_ID = CONVERSATION_ID
IMAGE_TYPES = ("image/jpeg", "image/png")


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("field.blank")
    return text


class MessageIn(BaseModel):
    """One message. `client_msg_id` is the client's own id for it, kept when it retries on a weak
    network: the retry answers the message the first try made, never a second one."""
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=TEXT_MAX)
    client_msg_id: str = Field(pattern=CLIENT_MSG_ID_PATTERN)

    _text = field_validator("text")(_not_blank)


class ConversationIn(MessageIn):
    """A question to a department, to the department of a service item, or to a hall's comprehensive
    desk (hall alone); `hall` with a department must be the department's hall."""
    department: str | None = Field(None, pattern=DEPARTMENT_PATTERN)
    service_item: str | None = Field(None, pattern=ITEM_PATTERN)
    hall: str | None = Field(None, pattern=HALL_CODE_PATTERN)

    @model_validator(mode="after")
    def _one_subject(self) -> "ConversationIn":
        if self.department is None and self.service_item is None and self.hall is None:
            raise ValueError("field.consult_subject")
        if self.department is not None and self.service_item is not None:
            raise ValueError("field.consult_subject")
        return self


class ImageOut(BaseModel):
    content_type: Literal["image/jpeg", "image/png"]
    size: int
    path: str = Field(description="where the image is read, for the reader's side (citizen or staff)")


class ImageMessageIn(BaseModel):
    """The form fields beside the file of an image message."""
    model_config = ConfigDict(extra="forbid")
    client_msg_id: str = Field(pattern=CLIENT_MSG_ID_PATTERN)


class MessageOut(BaseModel):
    id: int
    conversation: int
    sender: SenderKind
    sender_id: int | None = Field(description="the staff member's id; None for the citizen's own messages")
    client_msg_id: str
    text: str = Field(description='"" for an image without words')
    image: ImageOut | None = Field(None, description="a photo (of a document), checked on its bytes and size")
    review: bool = Field(description="WeChat content security asked for a person to review it (staff see it)")
    created_at: dt.datetime


class MessagePage(BaseModel):
    """Oldest first, after the message id asked for; `has_more`: ask again with the last id."""
    items: list[MessageOut]
    has_more: bool


class ConversationOut(BaseModel):
    id: int
    channel: Channel
    status: ConversationStatus
    hall: str
    department: str = Field(description='"" for the hall\'s comprehensive desk')
    service_item: str | None
    assignee: int | None = Field(description="the staff member answering it; None while in the queue")
    flagged: bool = Field(description="a message waits for staff to review it (content security)")
    created_at: dt.datetime
    last_message_at: dt.datetime
    first_answered_at: dt.datetime | None
    resolved_at: dt.datetime | None
    citizen_read_up_to: int
    staff_read_up_to: int


class ConversationList(BaseModel):
    items: list[ConversationOut]
    page: int
    page_size: int
    total: int


class FaqOut(BaseModel):
    id: str
    department: str | None
    service_item: str | None
    question: str
    answer: str


class FaqList(BaseModel):
    items: list[FaqOut]


class WaitingNotice(BaseModel):
    """Nobody of the department is online: the conversation waits in its queue until the hall opens."""
    hall: str
    hours_workday: list[str] = Field(description="the hall's opening periods on working days, Asia/Shanghai")
    open_now: bool
    next_opening_at: dt.datetime | None
    text: str = Field(description="what to tell the citizen, in the request's language")


class ConversationOpened(BaseModel):
    conversation: ConversationOut
    message: MessageOut
    faq: list[FaqOut] = Field(description="answers whose keywords the question matches, offered before a person answers")
    waiting: WaitingNotice | None


class ConversationQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    page: int = Field(1, ge=1, le=10_000)
    page_size: int = Field(20, ge=1, le=100)


class StaffConversationQuery(ConversationQuery):
    status: ConversationStatus | None = None
    department: str | None = Field(None, pattern=DEPARTMENT_PATTERN)
    assigned: Literal["me", "none"] | None = Field(None, description="me: mine; none: the queue")


class MessagesQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    after: int = Field(0, ge=0, le=2**63 - 1, description="the last message id the client has (0: from the start)")
    limit: int = Field(50, ge=1, le=200)


class TransferIn(BaseModel):
    """To another department (its queue, or an online member of it), or to one staff member."""
    model_config = ConfigDict(extra="forbid")
    department: str | None = Field(None, pattern=DEPARTMENT_PATTERN)
    staff: int | None = Field(None, ge=1, le=2**63 - 1)

    @model_validator(mode="after")
    def _one_target(self) -> "TransferIn":
        if (self.department is None) == (self.staff is None):
            raise ValueError("field.transfer_target")
        return self


class FaqQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    q: str | None = Field(None, max_length=200)
    department: str | None = Field(None, pattern=DEPARTMENT_PATTERN)
    service_item: str | None = Field(None, pattern=ITEM_PATTERN)


class CannedAnswerOut(BaseModel):
    id: str
    department: str | None = Field(description="None: for every department")
    title: str
    text: str


class CannedAnswerList(BaseModel):
    items: list[CannedAnswerOut]


class CannedQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    department: str = Field(pattern=DEPARTMENT_PATTERN)


class SupervisionQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    start: dt.date = Field(alias="from")
    end: dt.date = Field(alias="to")
    department: str | None = Field(None, pattern=DEPARTMENT_PATTERN)

    @model_validator(mode="after")
    def _range(self) -> "SupervisionQuery":
        if self.end < self.start or (self.end - self.start).days > 366:
            raise ValueError("field.date_range")
        return self


class ConsultingDayOut(BaseModel):
    """One department's conversations opened on one local day."""
    department: str
    hall: str
    date: dt.date
    opened: int
    answered: int
    answered_within_hour: int = Field(description="first answer within 60 minutes of the question")
    first_answer_seconds_median: float | None
    first_answer_seconds_max: float | None
    resolved: int
    resolution_seconds_median: float | None


class ConsultingReport(BaseModel):
    items: list[ConsultingDayOut]


class ConversationSnapshot(BaseModel):
    """A conversation socket's snapshot: the conversation and its latest messages, oldest first."""
    conversation: ConversationOut
    messages: list[MessageOut]


class InboxSnapshot(BaseModel):
    """A staff inbox socket's snapshot: my open and pending conversations, and the queues I can take from."""
    assigned: list[ConversationOut]
    queue: list[ConversationOut]
