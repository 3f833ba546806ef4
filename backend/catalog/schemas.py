"""The catalogue's requests and answers: the one definition of each (the OpenAPI document is made from them)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from backend.catalog.calendar import DayKind
from backend.kit.pagination import PageQuery

if TYPE_CHECKING:
    from backend.catalog.calendar import CalendarDay
    from backend.catalog.models import Department, Hall, HallItem, QueueCategory, ServiceItem, Topic, Window

HallLevel = Literal["city", "county", "township", "village"]
Audience = Literal["personal", "enterprise"]
HALL_CODE_PATTERN = r"^\d{6}(\d{3}(\d{3})?)?$"
TOPIC_CODE_PATTERN = r"^[0-9A-Za-z_-]{1,32}$"
CALENDAR_MAX_DAYS = 366


class HallQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    level: HallLevel | None = None
    parent: str | None = Field(None, pattern=HALL_CODE_PATTERN)
    view: Literal["tree", "flat"] | None = Field(
        None, description="tree (default without filters) nests children; flat lists halls")


class HallSummary(BaseModel):
    code: str
    name: str
    name_mn: str
    name_en: str
    level: HallLevel
    parent: str | None
    latitude: float | None = Field(description="GCJ-02 (国测局坐标), as wx.openLocation and Chinese map SDKs "
                                               "expect; not WGS-84 GPS. null until the centre gives it")
    longitude: float | None = Field(description="GCJ-02, see latitude")

    @classmethod
    def from_model(cls, hall: "Hall") -> Self:
        return cls(code=hall.code, name=hall.name, name_mn=hall.name_mn, name_en=hall.name_en,
                   level=hall.level, parent=hall.parent_id,  # type: ignore[arg-type]
                   latitude=hall.latitude, longitude=hall.longitude)


class HallNode(HallSummary):
    children: list["HallNode"] = []


class HallList(BaseModel):
    items: list[HallNode]


class DepartmentOut(BaseModel):
    code: str
    hall: str
    name: str
    short_name: str
    name_mn: str
    name_en: str

    @classmethod
    def from_model(cls, department: "Department") -> Self:
        return cls(code=department.code, hall=department.hall_id, name=department.name,
                   short_name=department.short_name, name_mn=department.name_mn, name_en=department.name_en)


class DepartmentList(BaseModel):
    items: list[DepartmentOut]


class DepartmentQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    hall: str | None = Field(None, pattern=HALL_CODE_PATTERN)


class QueueCategoryOut(BaseModel):
    prefix: str
    name: str
    name_mn: str
    name_en: str
    departments: list[str]
    mean_service_minutes: int

    @classmethod
    def from_model(cls, category: "QueueCategory") -> Self:
        return cls(prefix=category.prefix, name=category.name, name_mn=category.name_mn,
                   name_en=category.name_en, departments=category.departments,
                   mean_service_minutes=category.mean_service_minutes)


class WindowOut(BaseModel):
    number: str
    name: str
    categories: list[str]
    department: str
    status: Literal["open", "paused", "closed"]

    @classmethod
    def from_model(cls, window: "Window") -> Self:
        return cls(number=window.number, name=window.name, categories=window.categories,
                   department=window.department_code, status=window.status)


class AcceptedItemOut(BaseModel):
    """A service item a township hall accepts (and passes up) or a village agency point's agent takes."""
    code: str
    name: str
    name_mn: str
    name_en: str
    hall: str = Field(description="the hall whose department decides the item")
    mode: Literal["accept", "agent"] = Field(description="accept: 受理 here and passed up; agent: 代办员 takes it")

    @classmethod
    def from_model(cls, link: "HallItem") -> Self:
        """`link` with its item and the item's department fetched."""
        item = link.item
        return cls(code=item.code, name=item.name, name_mn=item.name_mn, name_en=item.name_en,
                   hall=item.department.hall_id, mode=link.mode)  # type: ignore[arg-type]


class AgencyVisit(BaseModel):
    date: dt.date
    hours: list[str] = Field(description="when the agent is at the point that day, Asia/Shanghai")


class AgencySchedule(HallSummary):
    """A village agency point's posted schedule (卓资县's practice: the agent visits each village on fixed
    days; the days and the contact are posted at the point)."""
    agent_name: str
    phone: str = Field(description="the agent's work line as posted at the point")
    visit_weekdays: list[int] = Field(description="ISO weekdays the agent is at the point, 1 = Monday")
    visit_hours: list[str]
    on_request: bool = Field(description="between visits the agent comes to the home when asked by phone (上门代办)")
    hours_note: str
    accepted_items: list[AcceptedItemOut] = Field(description="the items the agent takes in for the citizen")
    next_visits: list[AgencyVisit] = Field(
        description="live: the next visiting days from today: visiting weekdays that are working days on the "
                    "calendar (a holiday skips a visit)")


class HallDetail(HallSummary):
    address: str
    phone: str
    hours_workday: list[str] = Field(description="opening periods on working days, Asia/Shanghai")
    hours_note: str
    children: list[HallSummary]
    departments: list[DepartmentOut]
    queue_categories: list[QueueCategoryOut]
    accepted_items: list[AcceptedItemOut] = Field(
        description="township halls: items accepted here; village agency points: items their agent takes")
    windows: list[WindowOut] = Field(description="live")
    open_now: bool = Field(description="live: a working day (calendar) and within hours_workday")
    closes_at: dt.datetime | None = Field(description="live: when the current opening period ends, if open")
    next_opening_at: dt.datetime | None = Field(
        description="live: start of the next opening period after now (+08:00); null if none within a month")


class Material(BaseModel):
    name: str
    copies: int = 1
    original: bool = True
    note: str = ""


class ServiceItemOut(BaseModel):
    code: str
    name: str
    name_mn: str = Field(description="Traditional Mongolian script; empty where not yet translated")
    name_en: str
    department: str
    department_name: str
    hall: str
    kind: str
    promised_days: int = Field(description="承诺时限, working days; 0 for an instant item")
    legal_days: int = Field(description="法定时限, working days")
    instant: bool = Field(description="即办件: finished on the spot")
    fee_yuan: Decimal
    fee_note: str
    online: bool = Field(description="may be declared online (外网申报)")
    appointment: bool
    audience: list[Audience] = Field(description="个人办事 personal, 法人办事 enterprise")
    topics: list[str] = Field(description="topic codes (GET /api/v1/topics)")

    @classmethod
    def _fields(cls, item: "ServiceItem") -> dict:
        """`item` with its department and topic links fetched."""
        return dict(code=item.code, name=item.name, name_mn=item.name_mn, name_en=item.name_en,
                    department=item.department_id, department_name=item.department.name,
                    hall=item.department.hall_id, kind=item.kind, promised_days=item.promised_days,
                    legal_days=item.legal_days, instant=item.instant, fee_yuan=item.fee_yuan,
                    fee_note=item.fee_note, online=item.online, appointment=item.appointment,
                    audience=[a for a, wanted in (("personal", item.for_personal),
                                                  ("enterprise", item.for_enterprise)) if wanted],
                    topics=[link.topic_id for link in item.topic_links])

    @classmethod
    def from_model(cls, item: "ServiceItem") -> Self:
        return cls(**cls._fields(item))


class AcceptingHallOut(BaseModel):
    hall: str
    name: str
    level: HallLevel
    mode: Literal["accept", "agent"]

    @classmethod
    def from_model(cls, link: "HallItem") -> Self:
        """`link` with its hall fetched."""
        return cls(hall=link.hall.code, name=link.hall.name, level=link.hall.level,  # type: ignore[arg-type]
                   mode=link.mode)  # type: ignore[arg-type]


FormFieldType = Literal["text", "textarea", "integer", "decimal", "date", "choice", "multi_choice", "boolean",
                        "phone"]
ReviewKind = Literal["并联审批", "联合审图", "联合验收"]


class LocalizedText(BaseModel):
    zh: str
    mn: str = Field(description="Traditional Mongolian script")
    en: str


class FormChoiceOut(BaseModel):
    value: str = Field(description="what the declaration sends (ASCII, stable)")
    label: LocalizedText


class FormFieldOut(BaseModel):
    """One field of the item's application form (申报表单), in the order shown. The declaration is a JSON
    object of field name -> value; the backend checks it against this same definition and names each
    problem as `form.<name>`. Limits not given for a field's type are null."""
    name: str = Field(description="the key of this field in the declaration")
    type: FormFieldType = Field(description=(
        "text, textarea: a string of at most max_length characters; integer: a JSON integer from min to "
        "max; decimal: a string (or number) from min to max with at most `places` decimals; date: "
        "YYYY-MM-DD; choice: one choice value; multi_choice: a list of choice values; boolean; phone: an "
        "11-digit mainland mobile number"))
    label: LocalizedText
    required: bool = Field(description="a blank string or an empty list does not fill a required field")
    help: LocalizedText | None = Field(None, description="a line to show under the field")
    max_length: int | None = Field(None, description="text, textarea: characters at most")
    min: int | float | None = Field(None, description="integer, decimal: the smallest value")
    max: int | float | None = Field(None, description="integer, decimal: the largest value")
    places: int | None = Field(None, description="decimal: decimals at most; the value is kept with exactly these")
    not_after_today: bool | None = Field(None, description="date: today (Asia/Shanghai) or before")
    not_before_today: bool | None = Field(None, description="date: today (Asia/Shanghai) or after")
    choices: list[FormChoiceOut] | None = Field(None, description="choice, multi_choice: the values to pick from")

    @classmethod
    def from_definition(cls, field: dict) -> Self:
        """A stored field definition (config/catalog/forms.toml, checked by the loader)."""
        defaults = {"places": 2} if field["type"] == "decimal" else {}
        return cls.model_validate(defaults | field)


class ReviewDepartmentOut(BaseModel):
    code: str
    name: str
    name_mn: str
    name_en: str
    lead: bool = Field(description="the item's own department: it leads the review and decides")

    @classmethod
    def from_model(cls, department: "Department", *, lead: bool) -> Self:
        return cls(code=department.code, name=department.name, name_mn=department.name_mn,
                   name_en=department.name_en, lead=lead)


class ReviewOut(BaseModel):
    """Who reviews an application of the item: the item's own department (first, `lead`) and, in a joint
    procedure, the departments of the same hall that review at the same time (并联审批)."""
    kind: ReviewKind | None = Field(description=(
        "并联审批 parallel approval, 联合审图 joint review of construction drawings, 联合验收 joint completion "
        "acceptance; null when the item's department reviews alone"))
    departments: list[ReviewDepartmentOut] = Field(description="the lead first, then the others in the "
                                                               "catalogue's order")


class ServiceItemDetail(ServiceItemOut):
    materials: list[Material]
    keywords: list[str]
    conditions: list[str] = Field(description="受理条件")
    steps: list[str] = Field(description="办理流程, in order")
    legal_basis: list[str] = Field(description="设定依据")
    location: str = Field(description="where in the hall it is handled (floor, area, windows)")
    phone: str = Field(description="咨询电话")
    accepted_at: list[AcceptingHallOut] = Field(
        description="township halls that accept it and village agency points whose agent takes it")
    form: list[FormFieldOut] = Field(description="the application form (申报表单) to fill in, in order")
    review: ReviewOut

    @classmethod
    def from_model(cls, item: "ServiceItem", *, reviewers: "list[Department]") -> Self:
        """`item` with its department, topic links and hall links (with their halls) fetched;
        `reviewers` the departments of item.review_departments, in that order."""
        lead = ReviewDepartmentOut.from_model(item.department, lead=True)
        return cls(**cls._fields(item), materials=item.materials, keywords=item.keywords,
                   conditions=item.conditions, steps=item.steps, legal_basis=item.legal_basis,
                   location=item.location, phone=item.phone,
                   accepted_at=[AcceptingHallOut.from_model(link) for link in
                                sorted(item.hall_links, key=lambda link: link.hall_id)],
                   form=[FormFieldOut.from_definition(field) for field in item.form],
                   review=ReviewOut(kind=item.review_kind or None,  # type: ignore[arg-type]
                                    departments=[lead, *(ReviewDepartmentOut.from_model(d, lead=False)
                                                         for d in reviewers)]))


class ServiceItemPage(BaseModel):
    items: list[ServiceItemOut]
    page: int
    page_size: int
    total: int


class ServiceItemQuery(PageQuery):
    q: str | None = Field(None, max_length=50, description=(
        "keywords, space separated, all must match: Chinese, Mongolian or English (any case) names, "
        "keywords, department. Exact and leading name matches first, then the city hall's items"))
    hall: str | None = Field(None, pattern=HALL_CODE_PATTERN, description=(
        "items of this hall's departments, and those it accepts (township) or its agent takes (village)"))
    department: str | None = Field(None, max_length=32)
    instant: bool | None = None
    online: bool | None = None
    audience: Audience | None = Field(None, description="个人办事 personal or 法人办事 enterprise")
    topic: str | None = Field(None, pattern=TOPIC_CODE_PATTERN, description="a topic code (GET /api/v1/topics)")


class TopicOut(BaseModel):
    code: str
    name: str
    name_mn: str
    name_en: str

    @classmethod
    def from_model(cls, topic: "Topic") -> Self:
        return cls(code=topic.code, name=topic.name, name_mn=topic.name_mn, name_en=topic.name_en)


class TopicList(BaseModel):
    items: list[TopicOut]


class CalendarQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    from_: dt.date | None = Field(None, alias="from", description="first day, YYYY-MM-DD (default: today)")
    to: dt.date | None = Field(None, description=f"last day, YYYY-MM-DD, at most {CALENDAR_MAX_DAYS - 1} days "
                                              "after from (default: 30 days after from)")


class CalendarDayOut(BaseModel):
    date: dt.date
    workday: bool
    kind: DayKind = Field(
        description="makeup_workday: a Saturday or Sunday made a working day (调休上班)")
    name: str = Field(description="the holiday's name (国庆节, 国庆节调休上班), or empty")

    @classmethod
    def from_day(cls, day: "CalendarDay") -> Self:
        return cls(date=day.date, workday=day.workday, kind=day.kind, name=day.name)


class CalendarOut(BaseModel):
    items: list[CalendarDayOut]


class WindowStatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["open", "paused", "closed"]
