"""Applications (办件): declaring (外网申报, at the window, by an agent), materials, the applicant's and the
departments' reads, and every move of the status machine (backend/cases/machine.py).

Every move is one unit of work: the case row is locked, the move is checked against the table and the
actor's grant, the case changes by a compare-and-swap on its status, one history row is appended and
one domain event recorded (notify tells the applicant). A refused move changes nothing.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pypika_tortoise.terms import Parameterizer, Term
from tortoise.expressions import Q

from backend.accounts.citizens import RealName, citizen_for_phone, real_name
from backend.accounts.personal_data import count_pii_read, record_contact
from backend.cases import deadlines
from backend.cases.machine import EVENT_OF, STATUS_TEXT, move
from backend.cases.models import CLOCK_STATUSES, Case, CaseHistory, CaseMaterial, CaseStep, Document, Enterprise
from backend.cases.permissions import Scope, can_read, require_actor
from backend.cases.receipts import next_receipt, parse_receipt
from backend.cases.schemas import (
    AcceptRequest, ApplicantOut, ApplicantPii, CaseOut, CasePage, CaseQuery, CaseSummary, ClockOut, DecisionRequest,
    DeclareRequest, DeliveryRequest, HistoryOut, MaterialOut, NamedRef, PersonIdentity, RequiredMaterialOut,
    StaffCaseQuery, StepDecisionRequest, StepOut, SupplementRequest, Texts, WindowDeclareRequest,
)
from backend.catalog.schemas import ServiceItemDetail
from backend.catalog.service import (
    check_application_form, get_department, get_hall_summary, get_service_item, hall_lineage, halls_under, load_working_calendar,
)
from backend.kit import clock
from backend.kit.auth import Principal
from backend.kit.errors import AppError, FieldError
from backend.kit.identity import normalize_id_number, normalize_phone, normalize_uscc
from backend.kit.pii import ID_NUMBER, NAME, mask_id_number, mask_name, mask_phone
from backend.kit.ratelimit import Window, enforce
from backend.kit.uow import UnitOfWork, unit_of_work
from backend.runtime import Runtime

__all__ = [
    "declare_case", "declare_at_window", "declare_for", "get_my_case", "list_my_cases", "get_staff_case",
    "list_staff_cases", "withdraw_case", "resubmit_case", "accept_case", "refuse_case", "request_supplement",
    "decide_step", "decide_case", "pause_case", "resume_case", "issue_certificate", "deliver_case",
    "case_out", "case_summary", "case_page", "clock_out", "steps_out", "timeline_out", "status_text", "named_item",
    "named_hall", "named_department", "item_detail", "Declaration", "applicant_case", "tail_index", "identity_of", "lock_case", "case_scope", "move_citizen", "read_applicant",
]

# purposes of the sealed values and blind indexes this domain writes (kit.pii binds each to its purpose)
TAIL = "case.tail"
FORM = "case.form"
DAY = 86_400


# --- the item, its form and its review --------------------------------------------------------------

async def item_detail(rt: Runtime, code: str) -> ServiceItemDetail:
    return await get_service_item(rt, code=code)


def _form_fields(item: ServiceItemDetail) -> list[dict[str, Any]]:
    return [field.model_dump(exclude_none=True) for field in item.form]


def _review_departments(item: ServiceItemDetail) -> list[str]:
    """The departments that review an application of `item`, the lead (the item's own) first."""
    others = [d.code for d in item.review.departments if d.code != item.department]
    return [item.department, *others]


async def named_department(rt: Runtime, code: str) -> NamedRef:
    department = await get_department(rt, code=code)
    return NamedRef(code=department.code, name=department.name, name_mn=department.name_mn,
                    name_en=department.name_en)


async def named_hall(rt: Runtime, code: str) -> NamedRef:
    hall = await get_hall_summary(rt, code=code)
    return NamedRef(code=hall.code, name=hall.name, name_mn=hall.name_mn, name_en=hall.name_en)


def named_item(item: ServiceItemDetail) -> NamedRef:
    return NamedRef(code=item.code, name=item.name, name_mn=item.name_mn, name_en=item.name_en)


# --- the applicant ---------------------------------------------------------------------------------

def tail_index(rt: Runtime, value: str) -> str:
    """The blind index of the last 4 characters of an ID number or a phone (the lookup's `tail`)."""
    return rt.cipher.index(value[-4:].upper(), purpose=TAIL)


def identity_of(person: PersonIdentity) -> RealName:
    """The identity a clerk or an agent typed from the ID card, each field checked with its own code."""
    errors, name, id_number, phone = [], " ".join(person.name.split()), "", ""
    if not name:
        errors.append(FieldError(field="citizen.name", code="field.missing"))
    try:
        id_number = normalize_id_number(person.id_number)
    except ValueError as exc:
        errors.append(FieldError(field="citizen.id_number", code=str(exc)))
    try:
        phone = normalize_phone(person.phone)
    except ValueError as exc:
        errors.append(FieldError(field="citizen.phone", code=str(exc)))
    if errors:
        raise AppError("validation_failed", 422, errors=errors)
    return RealName(name=name, id_number=id_number, phone=phone)


def _seal_form(rt: Runtime, fields: list[dict[str, Any]], values: dict[str, Any]) -> dict[str, Any]:
    """Personal values of a form (phone fields) are sealed like every phone at rest."""
    phones = {field["name"] for field in fields if field["type"] == "phone"}
    return {key: rt.cipher.encrypt(value, purpose=FORM) if key in phones and value else value
            for key, value in values.items()}


def _masked_form(rt: Runtime, fields: list[dict[str, Any]], values: dict[str, Any]) -> dict[str, Any]:
    phones = {field["name"] for field in fields if field["type"] == "phone"}
    return {key: mask_phone(rt.cipher.decrypt(value, purpose=FORM)) if key in phones and value else value
            for key, value in values.items()}


@dataclass(frozen=True)
class Declaration:
    citizen_id: int | None  # None: the citizen who logs in with identity.phone, made once all is checked
    identity: RealName
    channel: str            # online | window | agent
    submitted_by: str       # citizen:42 | staff:7
    mandate_id: int | None = None


# --- declaring ---------------------------------------------------------------------------------------

async def declare_case(rt: Runtime, *, citizen_id: int, request: DeclareRequest,
                       tx: UnitOfWork | None = None) -> CaseOut:
    """外网申报: a real-name citizen declares an application online; it waits for the window's intake."""
    await enforce(rt.limiter, f"cases:declare:{citizen_id}",
                  [Window(rt.settings.cases.declarations_per_citizen_per_day, DAY)])
    identity = await real_name(rt, citizen_id=citizen_id)
    if identity is None:
        raise AppError("real_name_required", 403)
    item = await item_detail(rt, request.service_item)
    if not item.online:
        raise AppError("online_declaration_not_offered", 422)
    return await declare_for(rt, item=item, request=request, declaration=Declaration(
        citizen_id=citizen_id, identity=identity, channel="online", submitted_by=f"citizen:{citizen_id}"), tx=tx)


async def declare_at_window(rt: Runtime, *, principal: Principal, request: WindowDeclareRequest) -> CaseOut:
    """A window clerk registers an application taken at the window for a citizen; the citizen follows
    it in the app by logging in with the phone given."""
    item = await item_detail(rt, request.service_item)
    scope = await case_scope(rt, hall=item.hall, department=item.department, steps=[])
    require_actor(principal, "intake", scope)
    return await declare_for(rt, item=item, request=request, declaration=Declaration(
        citizen_id=None, identity=identity_of(request.citizen), channel="window", submitted_by=principal.subject))


def _applicant(request: DeclareRequest, item: ServiceItemDetail) -> tuple[str, str | None, str | None]:
    applicant = request.applicant
    if applicant.kind == "enterprise":
        if "enterprise" not in item.audience:
            raise AppError("enterprise_not_applicable", 422)
        try:
            uscc = normalize_uscc(applicant.uscc)
        except ValueError as exc:
            raise AppError("validation_failed", 422, errors=[FieldError(field="applicant.uscc", code=str(exc))]) \
                from None
        return "enterprise", " ".join(applicant.name.split()), uscc
    if item.audience == ["enterprise"]:
        raise AppError("enterprise_required", 422)
    return "person", None, None


async def declare_for(rt: Runtime, *, item: ServiceItemDetail, request: DeclareRequest,
                      declaration: Declaration, tx: UnitOfWork | None = None) -> CaseOut:
    """The one way an application begins, whoever declares it: the form checked against the item's,
    the applicant sealed as declared, a receipt number, the first history row and event."""
    kind, enterprise_name, uscc = _applicant(request, item)
    fields = _form_fields(item)
    form = _seal_form(rt, fields, await check_application_form(rt, item_code=item.code, data=request.form))
    identity, now, citizen_id = declaration.identity, clock.now(), declaration.citizen_id
    if citizen_id is None:   # only now that everything is checked: a refused declaration makes nobody
        citizen_id = await citizen_for_phone(rt, phone=identity.phone or "", channel=declaration.channel)
    async with unit_of_work(rt, tx) as uow:
        receipt = await next_receipt(rt.settings.cases.receipt_format, hall=item.hall, day=clock.today(), uow=uow)
        case = await Case.create(
            receipt=receipt, item_code=item.code, department_code=item.department, hall_code=item.hall,
            citizen_id=citizen_id, applicant_kind=kind,
            applicant_name_enc=rt.cipher.encrypt(identity.name, purpose=NAME),
            applicant_id_number_enc=rt.cipher.encrypt(identity.id_number, purpose=ID_NUMBER),
            enterprise_name=enterprise_name, enterprise_uscc=uscc,
            id_tail_index=tail_index(rt, identity.id_number),
            phone_tail_index=tail_index(rt, identity.phone) if identity.phone else None,
            form=form, channel=declaration.channel, submitted_by=declaration.submitted_by,
            mandate_id=declaration.mandate_id, instant=item.instant, promised_days=item.promised_days,
            submitted_at=now, updated_at=now, using_db=uow.tx)
        await _append(uow, case, actor=declaration.submitted_by, action="submit", from_status=None)
        await _record(uow, case, from_status=None)
        if uscc is not None:
            await _remember_enterprise(uow, citizen_id=citizen_id, uscc=uscc,
                                       name=enterprise_name or "")
        await record_contact(rt, citizen_id=citizen_id, hall=item.hall, source="case", uow=uow)
    # a clerk or an agent sees who did what, as in every staff answer; the citizen does not
    return await case_out(rt, case, staff=not declaration.submitted_by.startswith("citizen:"))


async def _remember_enterprise(uow: UnitOfWork, *, citizen_id: int, uscc: str, name: str) -> None:
    """一口录入: the enterprise is offered again next time (GET /api/v1/me/enterprises)."""
    await Enterprise.bulk_create([Enterprise(citizen_id=citizen_id, uscc=uscc, name=name, last_used_at=clock.now())],
                                 ignore_conflicts=True, using_db=uow.tx)
    await Enterprise.filter(citizen_id=citizen_id, uscc=uscc).using_db(uow.tx) \
        .update(name=name, last_used_at=clock.now())


# --- history and events ----------------------------------------------------------------------------

async def _append(uow: UnitOfWork, case: Case, *, actor: str, action: str, from_status: str | None,
                  department: str | None = None, comment: str = "", **detail: Any) -> None:
    await CaseHistory.create(case_id=case.id, at=clock.now(), actor=actor, action=action, from_status=from_status,
                             to_status=case.status, department_code=department, comment=comment, detail=detail,
                             using_db=uow.tx)


async def _record(uow: UnitOfWork, case: Case, *, from_status: str | None, **extra: Any) -> None:
    """The status change as a domain event, in the change's transaction (notify tells the applicant)."""
    await uow.record(EVENT_OF[case.status], f"case:{case.id}", case=case.id, citizen=case.citizen_id,
                     receipt=case.receipt, item=case.item_code, hall=case.hall_code,
                     department=case.department_code, **{"from": from_status, "to": case.status}, **extra)


# --- the answers -----------------------------------------------------------------------------------

def _warning(case: Case) -> str:
    return ("none", "yellow", "red")[case.warning_level]


def clock_out(case: Case) -> ClockOut:
    zone = clock.business_zone()
    if case.accepted_at is None:
        state = "not_started"
    elif case.status not in CLOCK_STATUSES:
        state = "stopped"
    else:
        state = "paused" if case.paused_since is not None else "running"
    return ClockOut(state=state, promised_days=case.promised_days,  # type: ignore[arg-type]
                    deadline=case.deadline_at.astimezone(zone) if case.deadline_at else None,
                    paused_since=case.paused_since.astimezone(zone) if case.paused_since else None,
                    pause_kind=case.pause_kind, pause_reason=case.pause_reason,  # type: ignore[arg-type]
                    paused_working_days=case.paused_working_days, warning=_warning(case))  # type: ignore[arg-type]


def _next_action(case: Case) -> str:
    if case.status == "supplement_required":
        return "upload_and_resubmit"
    if case.status == "certificate_issued":
        return "collect"
    if case.status in ("submitted", "accepted", "in_review", "approved"):
        return "wait"
    return "none"


async def steps_out(rt: Runtime, steps: Iterable[CaseStep]) -> list[StepOut]:
    zone = clock.business_zone()
    return [StepOut(department=await named_department(rt, step.department_code), lead=step.lead,
                    status=step.status, decided_at=step.decided_at.astimezone(zone) if step.decided_at else None,  # type: ignore[arg-type]
                    comment=step.comment)
            for step in sorted(steps, key=lambda s: (not s.lead, s.id))]


def timeline_out(history: Iterable[CaseHistory], *, staff: bool, comments: bool = True) -> list[HistoryOut]:
    zone = clock.business_zone()
    return [HistoryOut(at=row.at.astimezone(zone), action=row.action, from_status=row.from_status,  # type: ignore[arg-type]
                       to_status=row.to_status, department=row.department_code,  # type: ignore[arg-type]
                       comment=row.comment if comments else "", actor=row.actor if staff else None)
            for row in sorted(history, key=lambda r: r.id)]


def status_text(status: str) -> Texts:
    return Texts(**STATUS_TEXT[status])


async def case_out(rt: Runtime, case: Case, *, staff: bool = False) -> CaseOut:
    item = await item_detail(rt, case.item_code)
    steps = await CaseStep.filter(case_id=case.id)
    history = await CaseHistory.filter(case_id=case.id).order_by("id")
    materials = await CaseMaterial.filter(case_id=case.id).order_by("id").select_related("document")  # one JOIN
    provided = {m.material for m in materials}
    zone = clock.business_zone()
    return CaseOut(
        id=case.id, receipt=case.receipt, status=case.status, status_text=status_text(case.status),  # type: ignore[arg-type]
        service_item=named_item(item), department=await named_department(rt, case.department_code),
        hall=await named_hall(rt, case.hall_code),
        applicant=ApplicantOut(kind=case.applicant_kind,  # type: ignore[arg-type]
                               name=mask_name(rt.cipher.decrypt(case.applicant_name_enc, purpose=NAME)),
                               id_number=mask_id_number(rt.cipher.decrypt(case.applicant_id_number_enc,
                                                                          purpose=ID_NUMBER)),
                               enterprise_name=case.enterprise_name, enterprise_uscc=case.enterprise_uscc),
        channel=case.channel, submitted_by="citizen" if case.submitted_by.startswith("citizen:")  # type: ignore[arg-type]
        else ("agent" if case.channel == "agent" else "window"),
        form=_masked_form(rt, _form_fields(item), case.form),
        submitted_at=case.submitted_at.astimezone(zone),
        accepted_at=case.accepted_at.astimezone(zone) if case.accepted_at else None,
        decided_at=case.decided_at.astimezone(zone) if case.decided_at else None,
        deadline=case.deadline_at.astimezone(zone) if case.deadline_at else None, clock=clock_out(case),
        review_kind=item.review.kind or "", steps=await steps_out(rt, steps),
        materials=[MaterialOut(id=m.id, material=m.material, content_type=m.document.content_type,
                               size=m.document.size, sha256=m.document.sha256,
                               attached_at=m.attached_at.astimezone(zone)) for m in materials],
        required_materials=[RequiredMaterialOut(name=m.name, copies=m.copies, original=m.original, note=m.note,
                                                provided=m.name in provided) for m in item.materials],
        missing=list(case.missing or []), next_action=_next_action(case),  # type: ignore[arg-type]
        timeline=timeline_out(history, staff=staff))


async def case_summary(rt: Runtime, case: Case) -> CaseSummary:
    item = await item_detail(rt, case.item_code)
    return CaseSummary(id=case.id, receipt=case.receipt, status=case.status,  # type: ignore[arg-type]
                       status_text=status_text(case.status), service_item=named_item(item),
                       submitted_at=case.submitted_at.astimezone(clock.business_zone()),
                       deadline=case.deadline_at.astimezone(clock.business_zone()) if case.deadline_at else None,
                       warning=_warning(case))  # type: ignore[arg-type]


async def case_page(rt: Runtime, query, cases) -> CasePage:
    total = await cases.count()
    rows = await cases.offset(query.offset).limit(query.page_size)
    return CasePage(items=[await case_summary(rt, case) for case in rows], page=query.page,
                    page_size=query.page_size, total=total)


# --- the applicant's reads -------------------------------------------------------------------------

async def get_my_case(rt: Runtime, *, citizen_id: int, case_id: int) -> CaseOut:
    case = await Case.get_or_none(id=case_id, citizen_id=citizen_id)
    if case is None:
        raise AppError("case_not_found", 404)
    return await case_out(rt, case)


async def list_my_cases(rt: Runtime, *, citizen_id: int, query: CaseQuery) -> CasePage:
    """My applications, newest first."""
    mine = Case.filter(citizen_id=citizen_id)
    if query.status:
        mine = mine.filter(status=query.status)
    return await case_page(rt, query, mine.order_by("-id"))


# --- scope -------------------------------------------------------------------------------------------

async def case_scope(rt: Runtime, *, hall: str, department: str, steps: Iterable[CaseStep]) -> Scope:
    return Scope(lead=(await hall_lineage(rt, code=hall), department),
                 steps=[(await hall_lineage(rt, code=step.hall_code), step.department_code) for step in steps])


async def lock_case(rt: Runtime, *, case_id: int, uow: UnitOfWork, citizen_id: int | None = None) -> Case:
    """The case's row, locked until the unit of work ends: every move of one case waits for the others."""
    query = Case.filter(id=case_id)
    if citizen_id is not None:
        query = query.filter(citizen_id=citizen_id)
    case = await query.using_db(uow.tx).select_for_update().first()
    if case is None:
        raise AppError("case_not_found", 404)
    return case


async def _staff_case(rt: Runtime, *, principal: Principal, case_id: int,
                      uow: UnitOfWork) -> tuple[Case, list[CaseStep], Scope]:
    case = await lock_case(rt, case_id=case_id, uow=uow)
    steps = await CaseStep.filter(case_id=case.id).using_db(uow.tx).order_by("id")
    scope = await case_scope(rt, hall=case.hall_code, department=case.department_code, steps=steps)
    if not can_read(principal, scope, submitted_by=case.submitted_by):
        raise AppError("case_not_found", 404)   # another hall's or department's case: as if it did not exist
    return case, steps, scope


# --- moves ---------------------------------------------------------------------------------------------

async def _change(uow: UnitOfWork, case: Case, *, to: str, **columns: Any) -> str:
    """Compare-and-swap the case from the status it was read in; the row lock makes it hold, the
    condition makes a stale caller's change a 409 rather than a lost update."""
    previous, now = case.status, clock.now()
    changed = await Case.filter(id=case.id, status=previous).using_db(uow.tx) \
        .update(status=to, updated_at=now, **columns)
    if not changed:
        raise AppError("case_changed", 409)
    case.status, case.updated_at = to, now
    for key, value in columns.items():
        setattr(case, key, value)
    return previous


async def _moved(rt: Runtime, uow: UnitOfWork, case: Case, *, to: str, actor: str, action: str,
                 comment: str = "", department: str | None = None, detail: dict[str, Any] | None = None,
                 **columns: Any) -> None:
    previous = await _change(uow, case, to=to, **columns)
    await _append(uow, case, actor=actor, action=action, from_status=previous, department=department,
                  comment=comment, **(detail or {}))
    if previous != to:
        await _record(uow, case, from_status=previous)


async def _close_pending_steps(uow: UnitOfWork, case: Case) -> None:
    await CaseStep.filter(case_id=case.id, status="pending").using_db(uow.tx).update(status="closed")


async def withdraw_case(rt: Runtime, *, case_id: int, citizen_id: int | None = None, principal: Principal | None = None,
                        comment: str = "", tx: UnitOfWork | None = None) -> CaseOut:
    """撤回: the applicant (or the agent who declared it) takes the application back before a decision."""
    async with unit_of_work(rt, tx) as uow:
        case = await applicant_case(rt, case_id=case_id, citizen_id=citizen_id, principal=principal, uow=uow)
        move("withdraw", case.status)
        await _moved(rt, uow, case, to="withdrawn", actor=_actor(citizen_id, principal), action="withdraw",
                     comment=comment, paused_since=None, pause_kind=None, pause_reason=None)
        await _close_pending_steps(uow, case)
    return await case_out(rt, case)


async def resubmit_case(rt: Runtime, *, case_id: int, citizen_id: int | None = None,
                        principal: Principal | None = None, comment: str = "",
                        tx: UnitOfWork | None = None) -> CaseOut:
    """补正 done: the applicant has added what was missing; the case goes back where it was, and a
    clock the request paused runs again with the working days of the wait added."""
    async with unit_of_work(rt, tx) as uow:
        case = await applicant_case(rt, case_id=case_id, citizen_id=citizen_id, principal=principal, uow=uow)
        move("resubmit", case.status)
        columns: dict[str, Any] = {"missing": [], "resume_status": None}
        if case.pause_kind == "supplement":
            columns |= await _unpause(rt, uow, case)
        await _moved(rt, uow, case, to=case.resume_status or "submitted", actor=_actor(citizen_id, principal),
                     action="resubmit", comment=comment, **columns)
    return await case_out(rt, case)


def _actor(citizen_id: int | None, principal: Principal | None) -> str:
    return principal.subject if principal is not None else f"citizen:{citizen_id}"


async def applicant_case(rt: Runtime, *, case_id: int, citizen_id: int | None, principal: Principal | None,
                          uow: UnitOfWork) -> Case:
    """The applicant's own case, or one the calling agent declared."""
    if principal is None:
        return await lock_case(rt, case_id=case_id, uow=uow, citizen_id=citizen_id)
    case = await lock_case(rt, case_id=case_id, uow=uow)
    if case.submitted_by != principal.subject:
        raise AppError("case_not_found", 404)
    return case


async def _unpause(rt: Runtime, uow: UnitOfWork, case: Case) -> dict[str, Any]:
    """The columns that end a pause: its working days added to the count, the deadline moved, a
    warning given under the old deadline taken back if the new one is not near yet."""
    calendar = await load_working_calendar(rt, tx=uow)
    settings, now = rt.settings.cases, clock.now()
    days = case.paused_working_days + deadlines.paused_working_days(calendar, since=case.paused_since, until=now)
    deadline = deadlines.deadline_at(calendar, accepted_at=case.accepted_at, working_days=case.promised_days + days,
                                     close=settings.deadline_time)
    yellow = deadlines.yellow_at(calendar, deadline=deadline, working_days=settings.yellow_working_days,
                                 close=settings.deadline_time)
    due = 0 if now < yellow else (1 if now < deadline else 2)
    return {"paused_since": None, "pause_kind": None, "pause_reason": None, "paused_working_days": days,
            "deadline_at": deadline, "warning_level": min(due, case.warning_level)}


async def accept_case(rt: Runtime, *, principal: Principal, case_id: int, request: AcceptRequest,
                      tx: UnitOfWork | None = None) -> CaseOut:
    """受理: the clock starts (the deadline counted in working days), each reviewing department gets
    its step. An instant item (即办件) can be decided on the spot: it counts toward the instant rate."""
    async with unit_of_work(rt, tx) as uow:
        case, _, scope = await _staff_case(rt, principal=principal, case_id=case_id, uow=uow)
        require_actor(principal, move("accept", case.status).actor, scope)
        item = await item_detail(rt, case.item_code)
        if request.finish and not case.instant:
            raise AppError("not_instant_item", 422)
        calendar, now = await load_working_calendar(rt, tx=uow), clock.now()
        deadline = deadlines.deadline_at(calendar, accepted_at=now, working_days=case.promised_days,
                                         close=rt.settings.cases.deadline_time)
        await _moved(rt, uow, case, to="accepted", actor=principal.subject, action="accept", comment=request.comment,
                     accepted_at=now, deadline_at=deadline)
        for position, code in enumerate(_review_departments(item)):
            department = await get_department(rt, code=code)
            decided = {"status": "approved", "decided_by": principal.id, "decided_at": now} if request.finish else {}
            await CaseStep.create(case_id=case.id, department_code=code, hall_code=department.hall,
                                  lead=position == 0, using_db=uow.tx, **decided)
        if request.finish:
            await _moved(rt, uow, case, to="approved", actor=principal.subject, action="decide",
                         comment=request.comment, decided_at=now, finished_at_acceptance=True)
    return await case_out(rt, case, staff=True)


async def _plain_move(rt: Runtime, *, principal: Principal, case_id: int, action: str, to: str, comment: str,
                      tx: UnitOfWork | None, **columns: Any) -> CaseOut:
    """A move that needs nothing but its table row and its actor: lock, check, change, tell."""
    async with unit_of_work(rt, tx) as uow:
        case, _, scope = await _staff_case(rt, principal=principal, case_id=case_id, uow=uow)
        require_actor(principal, move(action, case.status).actor, scope)
        await _moved(rt, uow, case, to=to, actor=principal.subject, action=action, comment=comment, **columns)
    return await case_out(rt, case, staff=True)


async def refuse_case(rt: Runtime, *, principal: Principal, case_id: int, reason: str,
                      tx: UnitOfWork | None = None) -> CaseOut:
    """不予受理, with the reason the applicant is told."""
    return await _plain_move(rt, principal=principal, case_id=case_id, action="refuse", to="refused", comment=reason,
                             tx=tx, decided_at=clock.now())


async def request_supplement(rt: Runtime, *, principal: Principal, case_id: int, request: SupplementRequest,
                             tx: UnitOfWork | None = None) -> CaseOut:
    """补正: the list of what is missing goes to the applicant. At intake the clock has not started; in
    review it pauses until the applicant resubmits. The window (intake) or a reviewing department asks."""
    async with unit_of_work(rt, tx) as uow:
        case, steps, scope = await _staff_case(rt, principal=principal, case_id=case_id, uow=uow)
        require_actor(principal, move("request_supplement", case.status).actor, scope)
        if case.paused_since is not None:
            raise AppError("case_paused", 409)
        columns: dict[str, Any] = {"missing": request.missing, "resume_status": case.status}
        if case.status != "submitted":
            columns |= {"paused_since": clock.now(), "pause_kind": "supplement", "pause_reason": None}
        await _moved(rt, uow, case, to="supplement_required", actor=principal.subject, action="request_supplement",
                     comment=request.comment, detail={"missing": request.missing}, **columns)
    return await case_out(rt, case, staff=True)


def _step_of(principal: Principal, steps: list[CaseStep], scope: Scope, department: str | None) -> int:
    """Which of the case's steps the caller decides: the one named, or the only one they approve for."""
    if department is not None:
        for index, step in enumerate(steps):
            if step.department_code == department:
                return index
        raise AppError("case_step_not_found", 404)
    covered = [index for index, step in enumerate(steps) if principal.covers(*scope.steps[index], ("approver",))]
    # my department's step decided by a colleague a moment ago is that step (409 case_step_decided), not a riddle
    mine = [index for index in covered if steps[index].status == "pending"] or covered
    if len(mine) != 1:
        raise AppError("case_step_ambiguous", 422)
    return mine[0]


async def decide_step(rt: Runtime, *, principal: Principal, case_id: int, request: StepDecisionRequest,
                      tx: UnitOfWork | None = None) -> CaseOut:
    """并联审批: one department approves or rejects its step, independently of the others. Two
    approvers deciding one step at once: the first wins, the second is told the step's decision."""
    async with unit_of_work(rt, tx) as uow:
        case, steps, scope = await _staff_case(rt, principal=principal, case_id=case_id, uow=uow)
        actor = move("decide_step", case.status).actor
        index = _step_of(principal, steps, scope, request.department)
        step = steps[index]
        require_actor(principal, actor, scope, step=scope.steps[index])
        status = "approved" if request.decision == "approve" else "rejected"
        decided = await CaseStep.filter(id=step.id, status="pending").using_db(uow.tx) \
            .update(status=status, decided_by=principal.id, decided_at=clock.now(), comment=request.comment)
        if not decided:
            raise AppError("case_step_decided", 409, step_status=step.status)
        await _moved(rt, uow, case, to="in_review", actor=principal.subject, action="decide_step",
                     comment=request.comment, department=step.department_code, detail={"decision": status})
    return await case_out(rt, case, staff=True)


async def decide_case(rt: Runtime, *, principal: Principal, case_id: int, request: DecisionRequest,
                      tx: UnitOfWork | None = None) -> CaseOut:
    """办结: the lead department decides once every step is done. Approval needs every step approved;
    a rejected step lets the lead deny at once, closing the steps still pending."""
    async with unit_of_work(rt, tx) as uow:
        case, steps, scope = await _staff_case(rt, principal=principal, case_id=case_id, uow=uow)
        require_actor(principal, move("decide", case.status).actor, scope)
        statuses = {step.status for step in steps}
        if request.decision == "approve" and statuses != {"approved"}:
            raise AppError("case_steps_not_approved", 409)
        if request.decision == "deny" and "pending" in statuses and "rejected" not in statuses:
            raise AppError("case_steps_pending", 409)
        to = "approved" if request.decision == "approve" else "denied"
        await _moved(rt, uow, case, to=to, actor=principal.subject, action="decide", comment=request.comment,
                     decided_at=clock.now(), paused_since=None, pause_kind=None, pause_reason=None)
        await _close_pending_steps(uow, case)
    return await case_out(rt, case, staff=True)


async def pause_case(rt: Runtime, *, principal: Principal, case_id: int, reason: str,
                     tx: UnitOfWork | None = None) -> CaseOut:
    """特别程序 (hearing, expert review, inspection): the clock stops, shown with its reason."""
    async with unit_of_work(rt, tx) as uow:
        case, _, scope = await _staff_case(rt, principal=principal, case_id=case_id, uow=uow)
        require_actor(principal, move("pause", case.status).actor, scope)
        if case.paused_since is not None:
            raise AppError("case_paused", 409)
        await _moved(rt, uow, case, to=case.status, actor=principal.subject, action="pause", comment=reason,
                     paused_since=clock.now(), pause_kind="special_procedure", pause_reason=reason)
        await uow.record("case.paused", f"case:{case.id}", case=case.id, receipt=case.receipt, reason="special_procedure")
    return await case_out(rt, case, staff=True)


async def resume_case(rt: Runtime, *, principal: Principal, case_id: int, comment: str = "",
                      tx: UnitOfWork | None = None) -> CaseOut:
    async with unit_of_work(rt, tx) as uow:
        case, _, scope = await _staff_case(rt, principal=principal, case_id=case_id, uow=uow)
        require_actor(principal, move("resume", case.status).actor, scope)
        if case.pause_kind != "special_procedure":
            raise AppError("case_not_paused", 409)
        columns = await _unpause(rt, uow, case)
        await _moved(rt, uow, case, to=case.status, actor=principal.subject, action="resume", comment=comment,
                     detail={"paused_working_days": columns["paused_working_days"]}, **columns)
        await uow.record("case.resumed", f"case:{case.id}", case=case.id, receipt=case.receipt,
                         deadline=case.deadline_at.isoformat())
    return await case_out(rt, case, staff=True)


async def issue_certificate(rt: Runtime, *, principal: Principal, case_id: int, comment: str = "",
                            tx: UnitOfWork | None = None) -> CaseOut:
    """出证: the certificate (批文, licence) is ready to collect or to send."""
    return await _plain_move(rt, principal=principal, case_id=case_id, action="issue_certificate",
                             to="certificate_issued", comment=comment, tx=tx)


async def deliver_case(rt: Runtime, *, principal: Principal, case_id: int, request: DeliveryRequest,
                       tx: UnitOfWork | None = None) -> CaseOut:
    """送达 or 领取: the certificate has reached the applicant; the case is over."""
    return await _plain_move(rt, principal=principal, case_id=case_id, action="deliver", to=request.method,
                             comment=request.comment, tx=tx)


# --- the departments' reads ------------------------------------------------------------------------

async def get_staff_case(rt: Runtime, *, principal: Principal, case_id: int) -> CaseOut:
    case = await Case.get_or_none(id=case_id)
    if case is None:
        raise AppError("case_not_found", 404)
    steps = await CaseStep.filter(case_id=case.id)
    scope = await case_scope(rt, hall=case.hall_code, department=case.department_code, steps=steps)
    if not can_read(principal, scope, submitted_by=case.submitted_by):
        raise AppError("case_not_found", 404)
    return await case_out(rt, case, staff=True)


async def _reachable_steps(rt: Runtime, principal: Principal, roles: Iterable[str],
                           department: str | None, hall: str | None) -> Q | None:
    """The steps the caller's grants of `roles` reach, as one filter; None when they reach none."""
    wanted, reach = set(roles), None
    for grant in principal.grants:
        if grant.role not in wanted:
            continue
        if department is not None and grant.department not in (None, department):
            continue
        clause = Q()
        if grant.hall is not None:
            halls = await halls_under(rt, code=grant.hall) if grant.role in ("approver", "supervisor", "admin") \
                else [grant.hall]
            clause &= Q(hall_code__in=halls)
        if grant.department is not None or department is not None:
            clause &= Q(department_code=grant.department or department)
        reach = clause if reach is None else reach | clause
    if reach is not None and hall is not None:
        reach &= Q(hall_code=hall)
    return reach


async def list_staff_cases(rt: Runtime, *, principal: Principal, query: StaffCaseQuery) -> CasePage:
    """The cases of the departments the caller works for, oldest first: a department's queue."""
    reach = await _reachable_steps(rt, principal, ("window_clerk", "approver", "supervisor"), query.department,
                                   query.hall)
    if reach is None:
        return CasePage(items=[], page=query.page, page_size=query.page_size, total=0)
    steps = CaseStep.filter(reach)
    if query.waiting:
        steps = steps.filter(status="pending")
    # a case not accepted yet has no steps: its lead department's intake sees it by the case's own columns.
    # The two sets are read as one UNION of ids, each side from its own index, rather than as
    # `id IN (steps) OR (columns)`, which PostgreSQL can only answer by reading every case (bench/README.md)
    queue = (steps.values("case_id"), Case.filter(reach, status="submitted").values("id"))
    cases = Case.filter(id__in=_Union(*queue))
    narrowed = False
    if query.status:
        cases, narrowed = cases.filter(status=query.status), True
    if query.overdue is not None:
        # a paused clock (补正, 特别程序) cannot run out: its deadline moves when it runs again
        overdue = Q(deadline_at__lt=clock.now(), status__in=CLOCK_STATUSES, paused_since__isnull=True)
        cases, narrowed = cases.filter(overdue if query.overdue else ~overdue), True
    if query.receipt:
        cases, narrowed = cases.filter(receipt=parse_receipt(query.receipt)), True
    if narrowed:
        return await case_page(rt, query, cases.order_by("id"))
    # the whole queue: counted and cut into pages on the ids alone (every id of the union is a case's:
    # a step's by its foreign key), then only the page's rows are read
    total = await _Union(*queue).count()
    rows = await Case.filter(id__in=_Union(*queue, page=(query.offset, query.page_size))).order_by("id")
    return CasePage(items=[await case_summary(rt, case) for case in rows], page=query.page,
                    page_size=query.page_size, total=total)


class _Union(Term):
    """`(A UNION B ...)` of one-column querysets, as the right side of `id__in=`; with `page=(offset, limit)`,
    only that slice of the ids in ascending order. Parameters stay parameters (the outer query's)."""

    def __init__(self, *queries: Any, page: tuple[int, int] | None = None):
        super().__init__()
        self.queries, self.page = queries, page

    def get_sql(self, ctx: Any) -> str:
        parts = []
        for query in self.queries:
            query._choose_db_if_not_chosen()
            query._make_query()
            parts.append(query.query.get_sql(ctx.copy(subquery=False)))
        sql = " UNION ".join(parts)
        if self.page is not None:
            offset, limit = self.page
            sql = f'SELECT * FROM ({sql}) "queue" ORDER BY 1 LIMIT {int(limit)} OFFSET {int(offset)}'
        return f"({sql})"

    async def count(self) -> int:
        """How many distinct ids the union holds: `SELECT COUNT(*) FROM (A UNION B)`."""
        head = self.queries[0]
        head._choose_db_if_not_chosen()
        head._make_query()
        ctx = head.query.QUERY_CLS.SQL_CONTEXT.copy(parameterizer=Parameterizer())
        _, rows = await head._db.execute_query(f'SELECT COUNT(*) FROM {self.get_sql(ctx)} "queue"',
                                               ctx.parameterizer.values)
        return int(next(iter(dict(rows[0]).values())))


async def read_applicant(rt: Runtime, *, principal: Principal, case_id: int, reason: str,
                         request_id: str | None) -> ApplicantPii:
    """The applicant's name and ID number as declared, unmasked, for staff who can read the case (a
    certificate is made out to them): counted against the staff member's personal-data allowance
    before the read, and audited with the reason in the same transaction."""
    await count_pii_read(rt, principal=principal)
    async with unit_of_work(rt) as uow:
        case = await Case.get_or_none(id=case_id).using_db(uow.tx)
        if case is None:
            raise AppError("case_not_found", 404)
        steps = await CaseStep.filter(case_id=case.id).using_db(uow.tx)
        scope = await case_scope(rt, hall=case.hall_code, department=case.department_code, steps=steps)
        if not can_read(principal, scope, submitted_by=case.submitted_by):
            raise AppError("case_not_found", 404)
        await uow.audit(actor=principal.subject, action="case.applicant.read", subject=f"case:{case.id}",
                        request_id=request_id, reason=reason, fields=["name", "id_number"])
    return ApplicantPii(case=case.id, name=rt.cipher.decrypt(case.applicant_name_enc, purpose=NAME),
                        id_number=rt.cipher.decrypt(case.applicant_id_number_enc, purpose=ID_NUMBER),
                        enterprise_name=case.enterprise_name, enterprise_uscc=case.enterprise_uscc)


# --- one citizen record joins another ----------------------------------------------------------------

async def move_citizen(rt: Runtime, *, absorbed: int, into: int, tx: UnitOfWork | None = None) -> None:
    """A WeChat-only record joins the phone's citizen: its applications, documents and enterprises follow."""
    async with unit_of_work(rt, tx) as uow:
        await Case.filter(citizen_id=absorbed).using_db(uow.tx).update(citizen_id=into)
        await Document.filter(citizen_id=absorbed).using_db(uow.tx).update(citizen_id=into)
        for enterprise in await Enterprise.filter(citizen_id=absorbed).using_db(uow.tx):
            await _remember_enterprise(uow, citizen_id=into, uscc=enterprise.uscc, name=enterprise.name)
        await Enterprise.filter(citizen_id=absorbed).using_db(uow.tx).delete()

