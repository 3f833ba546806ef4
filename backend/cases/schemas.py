"""Applications' requests and answers: the one definition of each (the OpenAPI document is made from them)."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from backend.catalog.schemas import HALL_CODE_PATTERN
from backend.kit.pagination import PageQuery

CaseStatus = Literal["submitted", "accepted", "refused", "supplement_required", "in_review", "approved", "denied",
                     "certificate_issued", "delivered", "collected", "withdrawn"]
StepStatus = Literal["pending", "approved", "rejected", "closed"]
ITEM_CODE_PATTERN = r"^[0-9A-Za-z.-]{1,48}$"
DEPARTMENT_CODE_PATTERN = r"^[0-9A-Za-z.-]{1,32}$"
# what a person reads out or types: digits, maybe grouped with spaces or dashes, the last one may be X
RECEIPT_PATTERN = r"^[0-9Xx０-９Ｘｘ \-－\u3000]{8,40}$"   # full-width forms too: parse_receipt folds them
MAX_ID = 2**63 - 1
COMMENT_MAX = 500


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Texts(BaseModel):
    zh: str
    mn: str
    en: str


class NamedRef(BaseModel):
    code: str
    name: str
    name_mn: str
    name_en: str


# --- requests --------------------------------------------------------------------------------------

class EnterpriseApplicant(_Strict):
    kind: Literal["enterprise"]
    name: str = Field(min_length=2, max_length=128, description="the enterprise's registered name")
    uscc: str = Field(min_length=18, max_length=40, description="统一社会信用代码 (GB 32100), 18 characters")


class PersonApplicant(_Strict):
    kind: Literal["person"]


class DeclareRequest(_Strict):
    service_item: str = Field(pattern=ITEM_CODE_PATTERN)
    form: dict[str, Any] = Field(default_factory=dict, description="the item's form fields "
                                 "(GET /api/v1/service-items/{code}: form), by name")
    applicant: PersonApplicant | EnterpriseApplicant = Field(
        default_factory=lambda: PersonApplicant(kind="person"), discriminator="kind",
        description="the citizen themself (default), or an enterprise the citizen acts for")


class PersonIdentity(_Strict):
    """Who the application is for, as the window clerk or the agent takes it from the ID card."""
    name: str = Field(min_length=1, max_length=64)
    id_number: str = Field(min_length=15, max_length=40)
    phone: str = Field(min_length=11, max_length=20, description="the mobile phone the citizen logs in with "
                                                                 "to follow the application")


class WindowDeclareRequest(DeclareRequest):
    citizen: PersonIdentity


class AgentDeclareRequest(DeclareRequest):
    mandate_id: int = Field(ge=1, le=MAX_ID, description="the 委托 the citizen signed for this item")


class MandateRequest(_Strict):
    citizen: PersonIdentity
    items: list[str] = Field(min_length=1, max_length=20, description="service item codes the agent may "
                                                                      "declare for the citizen")
    reference: str = Field("", max_length=64, description=(
        "the number of the signed paper form; without it, the photo of the form must be uploaded "
        "(POST /api/v1/agent/mandates/{id}/signature) before the agent declares under the mandate"))


class ReuseMaterialRequest(_Strict):
    material: str = Field(min_length=1, max_length=64, description="the required material it is given for")
    document_id: int = Field(ge=1, le=MAX_ID, description="one of my documents (GET /api/v1/me/documents)")


class CommentRequest(_Strict):
    comment: str = Field("", max_length=COMMENT_MAX)


class ReasonRequest(_Strict):
    reason: str = Field(min_length=1, max_length=COMMENT_MAX)


class AcceptRequest(CommentRequest):
    finish: bool = Field(False, description="即办件: decide at once (approved on the spot)")


class SupplementRequest(CommentRequest):
    missing: list[str] = Field(min_length=1, max_length=20, description="what is missing or must be corrected")


class StepDecisionRequest(CommentRequest):
    decision: Literal["approve", "reject"]
    department: str | None = Field(None, pattern=DEPARTMENT_CODE_PATTERN, description=(
        "the step's department; may be left out by someone who approves for one department of the case"))


class DecisionRequest(CommentRequest):
    decision: Literal["approve", "deny"]


class DeliveryRequest(CommentRequest):
    method: Literal["delivered", "collected"] = Field(description="送达 (post, e-certificate) or 领取 at the window")


class CaseQuery(PageQuery):
    status: CaseStatus | None = None


class StaffCaseQuery(PageQuery):
    status: CaseStatus | None = None
    department: str | None = Field(None, pattern=DEPARTMENT_CODE_PATTERN)
    hall: str | None = Field(None, pattern=HALL_CODE_PATTERN)
    overdue: bool | None = Field(None, description="only cases past their deadline (true) or not (false)")
    receipt: str | None = Field(None, pattern=RECEIPT_PATTERN, description="find one case by its receipt number")
    waiting: bool = Field(False, description="only cases with a step of my department still to decide")


class WarningQuery(PageQuery):
    level: Literal["yellow", "red"] | None = None
    hall: str | None = Field(None, pattern=HALL_CODE_PATTERN)
    department: str | None = Field(None, pattern=DEPARTMENT_CODE_PATTERN)


class LookupRequest(_Strict):
    receipt: str = Field(pattern=RECEIPT_PATTERN)
    tail: str = Field(min_length=4, max_length=4, pattern=r"^[0-9Xx０-９ｘＸ]{4}$",
                      description="the last 4 characters of the applicant's ID number or phone")


# --- answers ---------------------------------------------------------------------------------------

class ApplicantOut(BaseModel):
    kind: Literal["person", "enterprise"]
    name: str | None = Field(description="masked")
    id_number: str | None = Field(description="masked")
    enterprise_name: str | None = None
    enterprise_uscc: str | None = None


class StepOut(BaseModel):
    department: NamedRef
    lead: bool
    status: StepStatus
    decided_at: dt.datetime | None
    comment: str


class HistoryOut(BaseModel):
    at: dt.datetime
    action: str
    from_status: CaseStatus | None
    to_status: CaseStatus
    department: str | None
    comment: str
    actor: str | None = Field(None, description="who (staff answers only)")


class ClockOut(BaseModel):
    """The promised time (承诺时限): counted in working days from acceptance; pauses push it back."""
    state: Literal["not_started", "running", "paused", "stopped"]
    promised_days: int
    deadline: dt.datetime | None
    paused_since: dt.datetime | None
    pause_kind: Literal["supplement", "special_procedure"] | None
    pause_reason: str | None
    paused_working_days: int
    warning: Literal["none", "yellow", "red"]


class MaterialOut(BaseModel):
    id: int
    material: str
    content_type: str
    size: int
    sha256: str
    attached_at: dt.datetime


class RequiredMaterialOut(BaseModel):
    name: str
    copies: int
    original: bool
    provided: bool
    note: str = ""


class CaseOut(BaseModel):
    id: int
    receipt: str
    status: CaseStatus
    status_text: Texts
    service_item: NamedRef
    department: NamedRef = Field(description="the lead department")
    hall: NamedRef
    applicant: ApplicantOut
    channel: Literal["online", "window", "agent"]
    submitted_by: Literal["citizen", "window", "agent"]
    form: dict[str, Any] = Field(description="the form as declared, personal values masked")
    submitted_at: dt.datetime
    accepted_at: dt.datetime | None
    decided_at: dt.datetime | None
    deadline: dt.datetime | None = Field(description="once accepted: when the promised time runs out")
    clock: ClockOut
    review_kind: str = Field(description="并联审批, 联合审图, 联合验收, or empty for one department")
    steps: list[StepOut]
    materials: list[MaterialOut]
    required_materials: list[RequiredMaterialOut]
    missing: list[str] = Field(description="补正: what the applicant must add or correct")
    next_action: Literal["upload_and_resubmit", "wait", "collect", "none"] = Field(
        description="what the applicant must do next")
    timeline: list[HistoryOut]


class CaseSummary(BaseModel):
    id: int
    receipt: str
    status: CaseStatus
    status_text: Texts
    service_item: NamedRef
    submitted_at: dt.datetime
    deadline: dt.datetime | None
    warning: Literal["none", "yellow", "red"]


class CasePage(BaseModel):
    items: list[CaseSummary]
    page: int
    page_size: int
    total: int


class ProgressOut(BaseModel):
    """What anyone holding the receipt and the tail learns: no comments, no names of staff, the applicant masked."""
    receipt: str
    status: CaseStatus
    status_text: Texts
    service_item: NamedRef
    hall: NamedRef
    applicant: str | None = Field(description="the applicant's name, masked, or the enterprise's name")
    submitted_at: dt.datetime
    deadline: dt.datetime | None
    clock: ClockOut
    steps: list[StepOut]
    timeline: list[HistoryOut]


class DocumentOut(BaseModel):
    id: int
    material: str
    content_type: str
    size: int
    sha256: str
    created_at: dt.datetime


class DocumentList(BaseModel):
    items: list[DocumentOut]


class EnterpriseOut(BaseModel):
    name: str
    uscc: str
    last_used_at: dt.datetime


class EnterpriseList(BaseModel):
    items: list[EnterpriseOut]


class MandateOut(BaseModel):
    id: int
    hall: str
    citizen_name: str | None = Field(description="masked")
    citizen_phone: str | None = Field(description="masked")
    items: list[str]
    reference: str
    signature_document_id: int | None
    created_at: dt.datetime


class WarningOut(BaseModel):
    case: CaseSummary
    level: Literal["yellow", "red"]
    hall: str
    department: str
    pending_departments: list[str]


class WarningPage(BaseModel):
    items: list[WarningOut]
    page: int
    page_size: int
    total: int


class InboundQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    token: str = Field("", max_length=200)


class AliyunInboundText(BaseModel):
    """One reply in Alibaba Cloud's SmsUp push (a JSON array of these)."""
    model_config = ConfigDict(extra="ignore")
    phone_number: str = Field(max_length=20)
    content: str = Field(max_length=500)
    send_time: str = Field("", max_length=32)
    sign_name: str = Field("", max_length=64)
    dest_code: str = Field("", max_length=32)
    sequence_id: int | str = Field(0)


class TencentInboundText(BaseModel):
    """Tencent Cloud's reply push (上行短信回调)."""
    model_config = ConfigDict(extra="ignore")
    mobile: str = Field(max_length=20)
    text: str = Field(max_length=500)
    nationcode: str = Field("86", max_length=8)
    sign: str = Field("", max_length=64)
    time: int = Field(0)
    extend: str | None = Field(None, max_length=32)   # null unless the channel's extended code is enabled


class InboundAnswer(BaseModel):
    """What both providers take as "received": Alibaba Cloud reads `code` (and `msg`), Tencent Cloud
    `result` and `errmsg`."""
    code: int = 0
    result: int = 0
    msg: str = "接收成功"
    errmsg: str = "OK"


class InboundPush(RootModel[Annotated[list[AliyunInboundText], Field(max_length=100)] | TencentInboundText]):
    """Alibaba Cloud pushes a JSON array of replies, Tencent Cloud one reply as an object."""


class DocumentQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    material: str | None = Field(None, max_length=64)


STATS_MAX_DAYS = 366


class CaseStatsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    from_: dt.date | None = Field(None, alias="from", description="first day of acceptance, YYYY-MM-DD "
                                                                  "(default: 30 days before to)")
    to: dt.date | None = Field(None, description="last day of acceptance, YYYY-MM-DD (default: today)")
    hall: str | None = Field(None, pattern=HALL_CODE_PATTERN)


class DepartmentCaseStats(BaseModel):
    department: str
    hall: str
    accepted: int = Field(description="applications accepted (受理) in the period")
    finished: int = Field(description="of those, decided (办结) by now")
    finished_late: int = Field(description="of those decided, after their deadline")
    overdue_running: int = Field(description="of those still running, past their deadline (红牌)")
    instant_accepted: int = Field(description="instant items (即办件) accepted")
    instant_finished_at_acceptance: int = Field(description="instant items decided on the spot")
    instant_completion_rate: float | None = Field(description="即时办结率: finished at acceptance / instant "
                                                              "items accepted; null without any")


class CaseStats(BaseModel):
    first_day: dt.date
    last_day: dt.date
    items: list[DepartmentCaseStats]


class ApplicantQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    reason: str = Field(min_length=2, max_length=100, description="why the unmasked identity is needed "
                                                                  "(written to the audit log)")


class ApplicantPii(BaseModel):
    """The applicant as declared, unmasked: for staff whose work on the case needs it, each read audited."""
    case: int
    name: str
    id_number: str
    enterprise_name: str | None
    enterprise_uscc: str | None
