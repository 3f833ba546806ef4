from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from backend.kit.pagination import PageQuery

if TYPE_CHECKING:
    from backend.catalog.models import Department, Hall, QueueCategory, ServiceItem, Window

HallLevel = Literal["city", "county", "township", "village"]
HALL_CODE_PATTERN = r"^\d{6}(\d{3}(\d{3})?)?$"


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

    @classmethod
    def from_model(cls, hall: "Hall") -> Self:
        return cls(code=hall.code, name=hall.name, name_mn=hall.name_mn, name_en=hall.name_en,
                   level=hall.level, parent=hall.parent_id)  # type: ignore[arg-type]


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


class HallDetail(HallSummary):
    address: str
    phone: str
    hours_workday: list[str]
    hours_note: str
    children: list[HallSummary]
    departments: list[DepartmentOut]
    queue_categories: list[QueueCategoryOut]
    windows: list[WindowOut]


class Material(BaseModel):
    name: str
    copies: int = 1
    original: bool = True
    note: str = ""


class ServiceItemOut(BaseModel):
    code: str
    name: str
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

    @classmethod
    def _fields(cls, item: "ServiceItem") -> dict:
        """`item` with its department fetched."""
        return dict(code=item.code, name=item.name, name_en=item.name_en, department=item.department_id,
                    department_name=item.department.name, hall=item.department.hall_id, kind=item.kind,
                    promised_days=item.promised_days, legal_days=item.legal_days, instant=item.instant,
                    fee_yuan=item.fee_yuan, fee_note=item.fee_note, online=item.online,
                    appointment=item.appointment)

    @classmethod
    def from_model(cls, item: "ServiceItem") -> Self:
        return cls(**cls._fields(item))


class ServiceItemDetail(ServiceItemOut):
    materials: list[Material]
    keywords: list[str]

    @classmethod
    def from_model(cls, item: "ServiceItem") -> Self:
        return cls(**cls._fields(item), materials=item.materials, keywords=item.keywords)


class ServiceItemPage(BaseModel):
    items: list[ServiceItemOut]
    page: int
    page_size: int
    total: int


class ServiceItemQuery(PageQuery):
    q: str | None = Field(None, max_length=50, description="Chinese keywords, space separated; all must match")
    hall: str | None = Field(None, pattern=HALL_CODE_PATTERN)
    department: str | None = Field(None, max_length=32)
    instant: bool | None = None
    online: bool | None = None


class WindowStatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["open", "paused", "closed"]
