"""Applications (办件) driven through the running server: a declared case, the staff who move it, and a
look at what a move left behind (history rows, outbox events).

Cases of the catalogue's own parallel items (zjw.XK007: zjw leads, rfb and qxj review; fgw.XK014) live
in the city hall 150900 beside other tests' cases, so a test that counts a list or a sequence makes
its own hall, departments and item (tests/rows.py)."""
from __future__ import annotations

import random
from dataclasses import dataclass

import httpx

from backend.cases.models import CaseHistory
from backend.catalog.models import Department, Hall, ServiceItem
from backend.kit.auth import Grant
from backend.kit.identity import uscc_check_char
from backend.kit.models import OutboxEvent
from tests.factories import bearer, staff_tokens
from tests.rows import make_department, make_hall, make_item

CITY = "150900"
# 建筑工程施工许可证核发: enterprises apply; zjw leads, 人防 (rfb) and 气象 (qxj) review in parallel
PERMIT = "zjw.XK007"
PERMIT_DEPARTMENTS = ("zjw", "rfb", "qxj")
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def new_uscc() -> str:
    """A unified social credit code with a right check character (GB 32100), random enough to be a test's own."""
    first17 = "91150900" + "".join(random.choice(USCC_CHARS) for _ in range(9))
    return first17 + uscc_check_char(first17)


def enterprise(uscc: str | None = None, name: str = "乌兰察布市测试建设有限公司") -> dict:
    return {"kind": "enterprise", "name": name, "uscc": uscc or new_uscc()}


def permit_form(phone: str = "13904741234") -> dict:
    return {"project_name": "集宁区测试综合楼", "project_address": "集宁区恩和路1号", "floor_area_m2": "1200.50",
            "contract_price": "880", "builder_name": "测试建工集团", "legal_representative_phone": phone,
            "delivery": "window"}


def problem(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code, body
    return body


async def declare(client: httpx.AsyncClient, citizen: dict, item: str, *, form: dict | None = None,
                  applicant: dict | None = None) -> dict:
    body: dict = {"service_item": item, "form": form if form is not None else {}}
    if applicant is not None:
        body["applicant"] = applicant
    response = await client.post("/api/v1/cases", headers=bearer(citizen), json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def declare_permit(client: httpx.AsyncClient, citizen: dict) -> dict:
    return await declare(client, citizen, PERMIT, form=permit_form(), applicant=enterprise())


async def act(client: httpx.AsyncClient, staff: dict, case: dict | int, action: str, **body) -> httpx.Response:
    case_id = case if isinstance(case, int) else case["id"]
    return await client.post(f"/api/v1/staff/cases/{case_id}/{action}", headers=bearer(staff), json=body)


async def moved(client: httpx.AsyncClient, staff: dict, case: dict | int, action: str, **body) -> dict:
    response = await act(client, staff, case, action, **body)
    assert response.status_code == 200, response.text
    return response.json()


async def history(case_id: int) -> list[CaseHistory]:
    return await CaseHistory.filter(case_id=case_id).order_by("id")


async def events(case_id: int) -> list[OutboxEvent]:
    return await OutboxEvent.filter(aggregate=f"case:{case_id}").order_by("id")


async def event_kinds(case_id: int) -> list[str]:
    return [event.kind for event in await events(case_id)]


@dataclass
class Office:
    """A hall of the test's own whose item is reviewed by a lead and two more departments."""
    hall: Hall
    lead: Department
    others: list[Department]
    item: ServiceItem

    @property
    def departments(self) -> list[str]:
        return [self.lead.code, *(d.code for d in self.others)]

    async def staff(self, client: httpx.AsyncClient, role: str, department: str | None = None) -> dict:
        """One staff member of `role` for one department (the lead's by default) of this hall."""
        return await staff_tokens(client, Grant(role, hall=self.hall.code, department=department or self.lead.code))


async def make_office(reviewers: int = 2, **item_fields) -> Office:
    hall = await make_hall()
    lead = await make_department(hall.code)
    others = [await make_department(hall.code) for _ in range(reviewers)]
    fields = {"for_personal": True, "for_enterprise": True, "review_kind": "并联审批" if others else "",
              "review_departments": [d.code for d in others]} | item_fields
    item = await make_item(lead, **fields)
    return Office(hall=hall, lead=lead, others=others, item=item)
