"""Applications (办件): the applicant's, the departments', the agents' and the supervisors' routes, and
the progress lookups that need no account."""
from sanic import Blueprint, HTTPResponse, Request

from backend.cases import agency, materials, progress, schemas, service, supervision
from backend.accounts.personal_data import PII_READ_ROLES
from backend.cases.machine import INTAKE_ROLES, READ_ROLES, REVIEW_ROLES
from backend.cases.permissions import SUPERVISION_ROLES
from backend.kit.auth import authenticated
from backend.kit.errors import AppError
from backend.kit.http import client_ip, json_response, parse_body, parse_query, path_id, path_value
from backend.kit.openapi import doc

bp = Blueprint("cases", url_prefix="/api/v1")

CASE_ID = {"type": "integer", "format": "int64", "minimum": 1, "maximum": schemas.MAX_ID}
# the segment as it arrives: ASCII digits only (Sanic's int would also take "٣" or "３")
_ID_SEGMENT = {"pattern": r"^[0-9]{1,19}$"}
STAFF_ROLES = tuple(sorted(set(INTAKE_ROLES) | set(REVIEW_ROLES) | set(READ_ROLES) | {"agent"}))


def _id(raw: str, not_found: str) -> int:
    return path_id(int(path_value(raw, _ID_SEGMENT, not_found)), not_found)


def _upload(request: Request) -> tuple[str, bytes, str | None]:
    """The multipart form's `material` and its one `file` (the bytes decide its type, not the name)."""
    upload = request.files.get("file") if request.files else None
    material = (request.form.get("material") or "").strip() if request.form else ""
    if upload is None:
        raise AppError("upload_missing", 422)
    if not material or len(material) > 64:
        raise AppError("material_unknown", 422)
    return material, upload.body, upload.type


def _file(content_type: str, data: bytes) -> HTTPResponse:
    # personal documents: never in a shared cache, never sniffed into something the browser runs
    return HTTPResponse(data, content_type=content_type, headers={
        "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff",
        "Content-Disposition": "attachment"})


# --- the applicant ---------------------------------------------------------------------------------

@bp.post("/cases")
@doc(summary="Declare an application online (外网申报): real-name citizens; the form as the item asks",
     tag="cases", body=schemas.DeclareRequest, response=schemas.CaseOut, status=201, errors=(404, 429),
     secured=True)
@authenticated(kind="citizen")
async def declare_case(request: Request):
    body = parse_body(request, schemas.DeclareRequest)
    case = await service.declare_case(request.app.ctx.rt, citizen_id=request.ctx.principal.id, request=body)
    return json_response(case, status=201)


@bp.get("/cases")
@doc(summary="My applications, newest first", tag="cases", query=schemas.CaseQuery, response=schemas.CasePage,
     secured=True)
@authenticated(kind="citizen")
async def list_cases(request: Request):
    query = parse_query(request, schemas.CaseQuery)
    return json_response(await service.list_my_cases(request.app.ctx.rt, citizen_id=request.ctx.principal.id,
                                                     query=query))


@bp.get("/cases/<case_id:str>")
@doc(summary="One of my applications: timeline, each department's step, the deadline, what to do next",
     tag="cases", response=schemas.CaseOut, errors=(404,), secured=True, path_parameters={"case_id": CASE_ID})
@authenticated(kind="citizen")
async def get_case(request: Request, case_id: str):
    case = await service.get_my_case(request.app.ctx.rt, citizen_id=request.ctx.principal.id,
                                     case_id=_id(case_id, "case_not_found"))
    return json_response(case)


@bp.post("/cases/<case_id:str>/materials", ctx_upload=True)
@doc(summary="Upload a file for one of the application's required materials (multipart: material, file; "
             "PDF, JPEG or PNG, checked on its bytes)", tag="cases", response=schemas.MaterialOut, status=201,
     errors=(404, 409, 413, 415, 422, 429), secured=True, path_parameters={"case_id": CASE_ID})
@authenticated(kind="citizen")
async def upload_material(request: Request, case_id: str):
    case_id_ = _id(case_id, "case_not_found")
    material, data, declared = _upload(request)
    uploaded = await materials.upload_material(request.app.ctx.rt, citizen_id=request.ctx.principal.id,
                                               case_id=case_id_, material=material, data=data, declared=declared)
    return json_response(uploaded, status=201)


@bp.post("/cases/<case_id:str>/materials/reuse")
@doc(summary="Give one of my earlier documents for a required material (一口录入: not asked again)",
     tag="cases", body=schemas.ReuseMaterialRequest, response=schemas.MaterialOut, status=201,
     errors=(404, 409), secured=True, path_parameters={"case_id": CASE_ID})
@authenticated(kind="citizen")
async def reuse_material(request: Request, case_id: str):
    case_id_ = _id(case_id, "case_not_found")
    body = parse_body(request, schemas.ReuseMaterialRequest)
    attached = await materials.attach_document(request.app.ctx.rt, citizen_id=request.ctx.principal.id,
                                               case_id=case_id_, material=body.material, document_id=body.document_id)
    return json_response(attached, status=201)


@bp.get("/cases/<case_id:str>/materials/<material_id:str>")
@doc(summary="The file of one of my application's materials", tag="cases",
     media_types=("application/pdf", "image/jpeg", "image/png"), errors=(404,), secured=True,
     path_parameters={"case_id": CASE_ID, "material_id": CASE_ID})
@authenticated(kind="citizen")
async def read_material(request: Request, case_id: str, material_id: str):
    found = await materials.read_material(request.app.ctx.rt, citizen_id=request.ctx.principal.id,
                                          case_id=_id(case_id, "case_not_found"),
                                          material_id=_id(material_id, "material_not_found"))
    return _file(found.content_type, found.data)


@bp.post("/cases/<case_id:str>/withdraw")
@doc(summary="Withdraw my application (撤回) before it is decided", tag="cases", body=schemas.CommentRequest,
     response=schemas.CaseOut, errors=(404, 409), secured=True, path_parameters={"case_id": CASE_ID})
@authenticated(kind="citizen")
async def withdraw_case(request: Request, case_id: str):
    case_id_ = _id(case_id, "case_not_found")
    body = parse_body(request, schemas.CommentRequest)
    return json_response(await service.withdraw_case(request.app.ctx.rt, citizen_id=request.ctx.principal.id,
                                                     case_id=case_id_, comment=body.comment))


@bp.post("/cases/<case_id:str>/resubmit")
@doc(summary="Resubmit after adding what 补正 asked for; a paused deadline runs again", tag="cases",
     body=schemas.CommentRequest, response=schemas.CaseOut, errors=(404, 409), secured=True,
     path_parameters={"case_id": CASE_ID})
@authenticated(kind="citizen")
async def resubmit_case(request: Request, case_id: str):
    case_id_ = _id(case_id, "case_not_found")
    body = parse_body(request, schemas.CommentRequest)
    return json_response(await service.resubmit_case(request.app.ctx.rt, citizen_id=request.ctx.principal.id,
                                                     case_id=case_id_, comment=body.comment))


@bp.get("/me/documents")
@doc(summary="Documents I have given before, offered again for new applications (一口录入)", tag="cases",
     query=schemas.DocumentQuery, response=schemas.DocumentList, secured=True)
@authenticated(kind="citizen")
async def list_documents(request: Request):
    query = parse_query(request, schemas.DocumentQuery)
    return json_response(await materials.list_documents(request.app.ctx.rt, citizen_id=request.ctx.principal.id,
                                                        material=query.material))


@bp.get("/me/enterprises")
@doc(summary="Enterprises I have applied for, offered again", tag="cases", response=schemas.EnterpriseList,
     secured=True)
@authenticated(kind="citizen")
async def list_enterprises(request: Request):
    return json_response(await materials.list_enterprises(request.app.ctx.rt, citizen_id=request.ctx.principal.id))


# --- without an account --------------------------------------------------------------------------

@bp.post("/progress/lookup")
@doc(summary="Progress of an application by its receipt number and the last 4 characters of the "
             "applicant's ID number or phone; personal data masked", tag="progress", body=schemas.LookupRequest,
     response=schemas.ProgressOut, errors=(404, 429))
async def lookup_progress(request: Request):
    body = parse_body(request, schemas.LookupRequest)
    return json_response(await progress.lookup_progress(request.app.ctx.rt, receipt=body.receipt, tail=body.tail,
                                                        client_ip=client_ip(request)))


@bp.post("/sms/inbound")
@doc(summary="Text messages sent to the centre's number (上行短信), as Alibaba Cloud or Tencent Cloud push "
             "them, with ?token= as registered there: \"CX <receipt>\" is answered by SMS",
     tag="progress", query=schemas.InboundQuery, body=schemas.InboundPush, response=schemas.InboundAnswer,
     errors=(401,))
async def inbound_sms(request: Request):
    query = parse_query(request, schemas.InboundQuery)
    push = parse_body(request, schemas.InboundPush)
    await progress.take_inbound_push(request.app.ctx.rt, token=query.token, push=push)
    return json_response(schemas.InboundAnswer())


# --- staff ---------------------------------------------------------------------------------------------

@bp.post("/staff/cases")
@doc(summary="Register an application taken at the window for a citizen (the citizen follows it in the app "
             "with the phone given)", tag="staff-cases", body=schemas.WindowDeclareRequest,
     response=schemas.CaseOut, status=201, errors=(404,), secured=True)
@authenticated(kind="staff", roles=INTAKE_ROLES)
async def declare_at_window(request: Request):
    body = parse_body(request, schemas.WindowDeclareRequest)
    case = await service.declare_at_window(request.app.ctx.rt, principal=request.ctx.principal, request=body)
    return json_response(case, status=201)


@bp.get("/staff/cases")
@doc(summary="The cases of my departments, oldest first (a department's queue); find one by receipt",
     tag="staff-cases", query=schemas.StaffCaseQuery, response=schemas.CasePage, secured=True)
@authenticated(kind="staff", roles=READ_ROLES)
async def list_staff_cases(request: Request):
    query = parse_query(request, schemas.StaffCaseQuery)
    return json_response(await service.list_staff_cases(request.app.ctx.rt, principal=request.ctx.principal,
                                                        query=query))


@bp.get("/staff/cases/<case_id:str>")
@doc(summary="A case of my departments, with who did what", tag="staff-cases", response=schemas.CaseOut,
     errors=(404,), secured=True, path_parameters={"case_id": CASE_ID})
@authenticated(kind="staff", roles=STAFF_ROLES)
async def get_staff_case(request: Request, case_id: str):
    return json_response(await service.get_staff_case(request.app.ctx.rt, principal=request.ctx.principal,
                                                      case_id=_id(case_id, "case_not_found")))


@bp.get("/staff/cases/<case_id:str>/applicant")
@doc(summary="The applicant's name and ID number unmasked, with a reason: counted against my personal-data "
             "allowance and audited", tag="staff-cases", query=schemas.ApplicantQuery,
     response=schemas.ApplicantPii, errors=(404, 429), secured=True, path_parameters={"case_id": CASE_ID})
@authenticated(kind="staff", roles=PII_READ_ROLES)
async def read_applicant(request: Request, case_id: str):
    case_id_ = _id(case_id, "case_not_found")
    query = parse_query(request, schemas.ApplicantQuery)
    applicant = await service.read_applicant(request.app.ctx.rt, principal=request.ctx.principal, case_id=case_id_,
                                             reason=query.reason, request_id=request.ctx.request_id)
    return HTTPResponse(applicant.model_dump_json(), content_type="application/json",
                        headers={"Cache-Control": "no-store"})


@bp.get("/staff/cases/<case_id:str>/materials/<material_id:str>")
@doc(summary="The file of a case's material (every reviewing department sees the same; each read audited)",
     tag="staff-cases", media_types=("application/pdf", "image/jpeg", "image/png"), errors=(404,), secured=True,
     path_parameters={"case_id": CASE_ID, "material_id": CASE_ID})
@authenticated(kind="staff", roles=STAFF_ROLES)
async def read_staff_material(request: Request, case_id: str, material_id: str):
    found = await materials.read_material(request.app.ctx.rt, principal=request.ctx.principal,
                                          case_id=_id(case_id, "case_not_found"),
                                          material_id=_id(material_id, "material_not_found"),
                                          request_id=request.ctx.request_id)
    return _file(found.content_type, found.data)


def _move_route(path: str, summary: str, body_schema, roles, call):
    """One staff move: parse its body, call its service function, answer the case."""
    @bp.post(f"/staff/cases/<case_id:str>/{path}", name=f"case_{path.replace('-', '_')}")
    @doc(summary=summary, tag="staff-cases", body=body_schema, response=schemas.CaseOut, errors=(404, 409),
         secured=True, path_parameters={"case_id": CASE_ID})
    @authenticated(kind="staff", roles=roles)
    async def handler(request: Request, case_id: str):
        case_id_ = _id(case_id, "case_not_found")
        body = parse_body(request, body_schema)
        return json_response(await call(request.app.ctx.rt, principal=request.ctx.principal, case_id=case_id_,
                                        body=body))
    handler.__name__ = f"case_{path.replace('-', '_')}"
    return handler


_move_route("accept", "受理: accept the application; the deadline starts (finish: decide an instant item at once)",
            schemas.AcceptRequest, INTAKE_ROLES,
            lambda rt, body, **kw: service.accept_case(rt, request=body, **kw))
_move_route("refuse", "不予受理: refuse at intake, with the reason", schemas.ReasonRequest, INTAKE_ROLES,
            lambda rt, body, **kw: service.refuse_case(rt, reason=body.reason, **kw))
_move_route("request-supplement", "补正: ask for what is missing (in review, the deadline pauses)",
            schemas.SupplementRequest, INTAKE_ROLES,
            lambda rt, body, **kw: service.request_supplement(rt, request=body, **kw))
_move_route("decide-step", "并联审批: approve or reject my department's step", schemas.StepDecisionRequest,
            REVIEW_ROLES, lambda rt, body, **kw: service.decide_step(rt, request=body, **kw))
_move_route("decide", "办结: the lead department's decision once the steps are done", schemas.DecisionRequest,
            REVIEW_ROLES, lambda rt, body, **kw: service.decide_case(rt, request=body, **kw))
_move_route("pause", "特别程序: stop the clock, with the reason shown to the applicant", schemas.ReasonRequest,
            REVIEW_ROLES, lambda rt, body, **kw: service.pause_case(rt, reason=body.reason, **kw))
_move_route("resume", "End the special procedure: the clock runs again, the deadline moved by the pause",
            schemas.CommentRequest, REVIEW_ROLES,
            lambda rt, body, **kw: service.resume_case(rt, comment=body.comment, **kw))
_move_route("issue-certificate", "出证: the certificate is ready", schemas.CommentRequest, INTAKE_ROLES,
            lambda rt, body, **kw: service.issue_certificate(rt, comment=body.comment, **kw))
_move_route("deliver", "送达 or 领取: the certificate has reached the applicant", schemas.DeliveryRequest,
            INTAKE_ROLES, lambda rt, body, **kw: service.deliver_case(rt, request=body, **kw))


@bp.get("/supervision/warnings")
@doc(summary="Running cases with a 黄牌 (deadline near) or 红牌 (overdue) in the halls I oversee",
     tag="supervision", query=schemas.WarningQuery, response=schemas.WarningPage, secured=True)
@authenticated(kind="staff", roles=SUPERVISION_ROLES)
async def list_warnings(request: Request):
    query = parse_query(request, schemas.WarningQuery)
    return json_response(await supervision.list_warnings(request.app.ctx.rt, principal=request.ctx.principal,
                                                         query=query))


@bp.get("/supervision/cases")
@doc(summary="Per department: applications accepted in a period, decided, late, overdue, and the "
             "instant-completion rate (即时办结率)", tag="supervision", query=schemas.CaseStatsQuery,
     response=schemas.CaseStats, secured=True)
@authenticated(kind="staff", roles=SUPERVISION_ROLES)
async def case_stats(request: Request):
    query = parse_query(request, schemas.CaseStatsQuery)
    return json_response(await supervision.case_stats(request.app.ctx.rt, principal=request.ctx.principal,
                                                      query=query))


# --- village agents (代办) ------------------------------------------------------------------------

@bp.post("/agent/mandates")
@doc(summary="Record a citizen's 委托 for items my agency point takes", tag="agency", body=schemas.MandateRequest,
     response=schemas.MandateOut, status=201, secured=True)
@authenticated(kind="staff", roles=agency.AGENT_ROLES)
async def record_mandate(request: Request):
    body = parse_body(request, schemas.MandateRequest)
    return json_response(await agency.record_mandate(request.app.ctx.rt, principal=request.ctx.principal,
                                                     request=body), status=201)


@bp.get("/agent/mandates/<mandate_id:str>")
@doc(summary="One of my mandates", tag="agency", response=schemas.MandateOut, errors=(404,), secured=True,
     path_parameters={"mandate_id": CASE_ID})
@authenticated(kind="staff", roles=agency.AGENT_ROLES)
async def get_mandate(request: Request, mandate_id: str):
    return json_response(await agency.get_mandate(request.app.ctx.rt, principal=request.ctx.principal,
                                                  mandate_id=_id(mandate_id, "mandate_not_found")))


@bp.post("/agent/mandates/<mandate_id:str>/signature", ctx_upload=True)
@doc(summary="The photo of the signed 委托 form (multipart: file; JPEG, PNG or PDF)", tag="agency",
     response=schemas.MandateOut, errors=(404, 413, 415, 422, 429), secured=True,
     path_parameters={"mandate_id": CASE_ID})
@authenticated(kind="staff", roles=agency.AGENT_ROLES)
async def sign_mandate(request: Request, mandate_id: str):
    mandate_id_ = _id(mandate_id, "mandate_not_found")
    upload = request.files.get("file") if request.files else None
    if upload is None:
        raise AppError("upload_missing", 422)
    return json_response(await agency.sign_mandate(request.app.ctx.rt, principal=request.ctx.principal,
                                                   mandate_id=mandate_id_, data=upload.body, declared=upload.type))


@bp.post("/agent/cases")
@doc(summary="Declare an application for the citizen of one of my mandates", tag="agency",
     body=schemas.AgentDeclareRequest, response=schemas.CaseOut, status=201, errors=(404, 409), secured=True)
@authenticated(kind="staff", roles=agency.AGENT_ROLES)
async def declare_as_agent(request: Request):
    body = parse_body(request, schemas.AgentDeclareRequest)
    return json_response(await agency.declare_as_agent(request.app.ctx.rt, principal=request.ctx.principal,
                                                       request=body), status=201)


@bp.get("/agent/cases")
@doc(summary="The applications I declared for citizens, newest first", tag="agency", query=schemas.CaseQuery,
     response=schemas.CasePage, secured=True)
@authenticated(kind="staff", roles=agency.AGENT_ROLES)
async def list_agent_cases(request: Request):
    query = parse_query(request, schemas.CaseQuery)
    return json_response(await agency.list_agent_cases(request.app.ctx.rt, principal=request.ctx.principal,
                                                       query=query))


@bp.post("/agent/cases/<case_id:str>/materials", ctx_upload=True)
@doc(summary="Upload a material of an application I declared (multipart: material, file)", tag="agency",
     response=schemas.MaterialOut, status=201, errors=(404, 409, 413, 415, 422, 429), secured=True,
     path_parameters={"case_id": CASE_ID})
@authenticated(kind="staff", roles=agency.AGENT_ROLES)
async def agent_upload_material(request: Request, case_id: str):
    case_id_ = _id(case_id, "case_not_found")
    material, data, declared = _upload(request)
    uploaded = await materials.upload_material(request.app.ctx.rt, principal=request.ctx.principal,
                                               case_id=case_id_, material=material, data=data, declared=declared)
    return json_response(uploaded, status=201)


@bp.post("/agent/cases/<case_id:str>/resubmit")
@doc(summary="Resubmit an application I declared after 补正", tag="agency", body=schemas.CommentRequest,
     response=schemas.CaseOut, errors=(404, 409), secured=True, path_parameters={"case_id": CASE_ID})
@authenticated(kind="staff", roles=agency.AGENT_ROLES)
async def agent_resubmit(request: Request, case_id: str):
    case_id_ = _id(case_id, "case_not_found")
    body = parse_body(request, schemas.CommentRequest)
    return json_response(await service.resubmit_case(request.app.ctx.rt, principal=request.ctx.principal,
                                                     case_id=case_id_, comment=body.comment))
