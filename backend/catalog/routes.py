"""Public catalogue reads (cacheable, ETag/304) and the staff window switch."""
from collections.abc import Awaitable, Callable

from pydantic import BaseModel
from sanic import Blueprint, HTTPResponse, Request

from backend.catalog import schemas, service
from backend.catalog.permissions import WINDOW_ROLES
from backend.kit import clock
from backend.kit.auth import authenticated
from backend.kit.http import (
    Representation, conditional_response, etagged_json, json_response, parse_body, parse_query, path_value,
    represent,
)
from backend.kit.openapi import doc

bp = Blueprint("catalog", url_prefix="/api/v1")

HALL_CODE = {"type": "string", "pattern": schemas.HALL_CODE_PATTERN}
ITEM_CODE = {"type": "string", "pattern": r"^[0-9A-Za-z.-]{1,48}$"}
WINDOW_NUMBER = {"type": "string", "pattern": r"^[0-9A-Za-z]{1,8}$"}
NOT_MODIFIED = {304: "Not modified: the client's If-None-Match matches the ETag"}


def _max_age(request: Request) -> int:
    return request.app.ctx.rt.settings.catalog.max_age_seconds


async def _cached(request: Request, key: tuple, build: Callable[[], Awaitable[BaseModel]]) -> HTTPResponse:
    """The finished answer (bytes, ETag, gzip) of the schema model `build()` returns, kept under the
    catalogue revision."""
    async def build_representation() -> Representation:
        return represent((await build()).model_dump(mode="json"))

    representation = await service.kept(request.app.ctx.rt, key=key, build=build_representation)
    return conditional_response(request, representation, max_age=_max_age(request))


@bp.get("/halls")
@doc(summary="Service halls: the four-level tree, or a flat list filtered by level/parent", tag="catalog",
     query=schemas.HallQuery, response=schemas.HallList, extra_responses=NOT_MODIFIED)
async def list_halls(request: Request):
    rt = request.app.ctx.rt
    query = parse_query(request, schemas.HallQuery)
    if query.view == "tree" or (query.view is None and not (query.level or query.parent)):
        return await _cached(request, ("hall-tree",), lambda: service.hall_tree(rt))
    return await _cached(request, ("halls", query.level, query.parent),
                         lambda: service.list_halls(rt, level=query.level, parent=query.parent))


@bp.get("/halls/<code:str>")
@doc(summary="One hall: departments, queues, windows, the items a township/village point accepts, and "
             "whether it is open now (GCJ-02 coordinates for wx.openLocation)", tag="catalog",
     response=schemas.HallDetail, errors=(404,), path_parameters={"code": HALL_CODE},
     extra_responses=NOT_MODIFIED)
async def get_hall(request: Request, code: str):
    code = path_value(code, HALL_CODE, "hall_not_found")
    detail = await service.get_hall_detail(request.app.ctx.rt, code=code)
    return etagged_json(request, detail.model_dump(mode="json"), max_age=_max_age(request))


@bp.get("/halls/<code:str>/agency")
@doc(summary="A village agency point's agent (代办员): name, work phone, visiting days and hours, the next "
             "visits on the working calendar, and the items the agent takes in", tag="catalog",
     response=schemas.AgencySchedule, errors=(404,), path_parameters={"code": HALL_CODE},
     extra_responses=NOT_MODIFIED)
async def get_agency(request: Request, code: str):
    code = path_value(code, HALL_CODE, "hall_not_found")
    schedule = await service.get_agency_schedule(request.app.ctx.rt, code=code)
    return etagged_json(request, schedule.model_dump(mode="json"), max_age=_max_age(request))


@bp.get("/departments")
@doc(summary="Departments stationed in the halls (进驻部门)", tag="catalog",
     query=schemas.DepartmentQuery, response=schemas.DepartmentList, extra_responses=NOT_MODIFIED)
async def list_departments(request: Request):
    query = parse_query(request, schemas.DepartmentQuery)
    return await _cached(request, ("departments", query.hall),
                         lambda: service.list_departments(request.app.ctx.rt, hall=query.hall))


@bp.get("/service-items")
@doc(summary="Search service items (事项) by keywords (zh/mn/en), hall, department, audience and topic",
     tag="catalog",
     query=schemas.ServiceItemQuery, response=schemas.ServiceItemPage, extra_responses=NOT_MODIFIED)
async def search_service_items(request: Request):
    query = parse_query(request, schemas.ServiceItemQuery)
    key = ("service-items", *sorted(query.model_dump(exclude_none=True).items()))
    return await _cached(request, key, lambda: service.search_service_items(request.app.ctx.rt, query=query))


@bp.get("/service-items/<code:str>")
@doc(summary="One service item: materials, fee, time limits, its application form (申报表单) and the "
             "departments that review it (the lead first; 并联审批)", tag="catalog",
     response=schemas.ServiceItemDetail, errors=(404,), extra_responses=NOT_MODIFIED,
     path_parameters={"code": ITEM_CODE})
async def get_service_item(request: Request, code: str):
    code = path_value(code, ITEM_CODE, "service_item_not_found")
    return await _cached(request, ("service-item", code),
                         lambda: service.get_service_item(request.app.ctx.rt, code=code))


@bp.get("/topics")
@doc(summary="Topics to browse service items by (主题), in zh, mn and en", tag="catalog",
     response=schemas.TopicList, extra_responses=NOT_MODIFIED)
async def list_topics(request: Request):
    return await _cached(request, ("topics",), lambda: service.list_topics(request.app.ctx.rt))


@bp.get("/calendar")
@doc(summary="The working calendar: working days, weekends, holidays and make-up working days (调休)",
     tag="catalog", query=schemas.CalendarQuery, response=schemas.CalendarOut, extra_responses=NOT_MODIFIED)
async def get_calendar(request: Request):
    query = parse_query(request, schemas.CalendarQuery)
    key = ("calendar", query.from_, query.to, clock.today())   # today: the default range starts there
    return await _cached(request, key, lambda: service.calendar_days(request.app.ctx.rt, start=query.from_,
                                                                     end=query.to))


@bp.patch("/staff/halls/<code:str>/windows/<number:str>")
@doc(summary="Open, pause or close a window of a hall you are posted to", tag="staff",
     body=schemas.WindowStatusChange, response=schemas.WindowOut, errors=(404,), secured=True,
     path_parameters={"code": HALL_CODE, "number": WINDOW_NUMBER})
@authenticated(kind="staff", roles=WINDOW_ROLES)
async def set_window_status(request: Request, code: str, number: str):
    code = path_value(code, HALL_CODE, "hall_not_found")
    number = path_value(number, WINDOW_NUMBER, "window_not_found")
    change = parse_body(request, schemas.WindowStatusChange)
    window = await service.set_window_status(request.app.ctx.rt, principal=request.ctx.principal,
                                             hall_code=code, number=number, status=change.status)
    return json_response(window.model_dump(mode="json"))
