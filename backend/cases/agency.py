"""Agency (代办): a village agent (代办员, role `agent`, posted to an agency point) records a citizen's 委托
and declares and follows applications for them.

The 委托 holds the citizen's name, ID number and phone (sealed) and the items it covers; the citizen is
the one who logs in with that phone, made now if they never have, so the applications appear in their
own account the first time they open the app. An agent reaches only the mandates they recorded and the
cases they declared, for items their agency point takes (catalogue: the point's agent items).
"""
from __future__ import annotations

from backend.accounts.citizens import RealName, citizen_for_phone
from backend.cases.materials import upload_document
from backend.cases.models import Case, Mandate
from backend.cases.schemas import AgentDeclareRequest, CaseOut, CasePage, CaseQuery, MandateOut, MandateRequest
from backend.cases.service import Declaration, case_page, declare_for, identity_of, item_detail
from backend.catalog.service import get_agency_schedule
from backend.kit import clock
from backend.kit.auth import Principal
from backend.kit.errors import AppError, FieldError
from backend.kit.pii import ID_NUMBER, NAME, PHONE, mask_name, mask_phone, reveal
from backend.kit.uow import unit_of_work
from backend.runtime import Runtime

__all__ = ["record_mandate", "get_mandate", "sign_mandate", "declare_as_agent", "list_agent_cases", "agency_point_of"]

AGENT_ROLES = ("agent",)


def agency_point_of(principal: Principal) -> str:
    """The agency point the agent is posted to: an agent grant covers exactly one hall."""
    points = sorted({grant.hall for grant in principal.grants if grant.role in AGENT_ROLES and grant.hall})
    if len(points) != 1:
        raise AppError("agent_point_unknown", 403)
    return points[0]


async def _agent_items(rt: Runtime, point: str) -> set[str]:
    schedule = await get_agency_schedule(rt, code=point)
    return {item.code for item in schedule.accepted_items}


def _mandate_out(rt: Runtime, mandate: Mandate) -> MandateOut:
    return MandateOut(id=mandate.id, hall=mandate.hall_code,
                      citizen_name=mask_name(reveal(rt.cipher, mandate.name_enc, NAME)),
                      citizen_phone=mask_phone(reveal(rt.cipher, mandate.phone_enc, PHONE)),
                      items=list(mandate.items), reference=mandate.reference,
                      signature_document_id=mandate.signature_document_id,
                      created_at=mandate.created_at.astimezone(clock.business_zone()))


async def record_mandate(rt: Runtime, *, principal: Principal, request: MandateRequest) -> MandateOut:
    """委托: who, for which of the point's items, signed how (a photo of the form, or its number)."""
    point = agency_point_of(principal)
    offered = await _agent_items(rt, point)
    unknown = [FieldError(field=f"items.{index}", code="field.item_not_taken_here")
               for index, code in enumerate(request.items) if code not in offered]
    if unknown:
        raise AppError("validation_failed", 422, errors=unknown)
    identity = identity_of(request.citizen)
    citizen_id = await citizen_for_phone(rt, phone=identity.phone or "", channel="agent")
    async with unit_of_work(rt) as uow:
        mandate = await Mandate.create(
            agent_id=principal.id, hall_code=point, citizen_id=citizen_id,
            name_enc=rt.cipher.encrypt(identity.name, purpose=NAME),
            id_number_enc=rt.cipher.encrypt(identity.id_number, purpose=ID_NUMBER),
            phone_enc=rt.cipher.encrypt(identity.phone or "", purpose=PHONE), items=sorted(set(request.items)),
            reference=request.reference.strip(),
            created_at=clock.now(), using_db=uow.tx)
        await uow.record("case.mandate_recorded", f"mandate:{mandate.id}", mandate=mandate.id, citizen=citizen_id,
                         agent=principal.id, hall=point)
    return _mandate_out(rt, mandate)


async def _own_mandate(principal: Principal, mandate_id: int) -> Mandate:
    mandate = await Mandate.get_or_none(id=mandate_id, agent_id=principal.id, revoked_at__isnull=True)
    if mandate is None:
        raise AppError("mandate_not_found", 404)
    return mandate


async def get_mandate(rt: Runtime, *, principal: Principal, mandate_id: int) -> MandateOut:
    return _mandate_out(rt, await _own_mandate(principal, mandate_id))


async def sign_mandate(rt: Runtime, *, principal: Principal, mandate_id: int, data: bytes,
                       declared: str | None) -> MandateOut:
    """The photo of the signed 委托 form, kept as one of the citizen's documents."""
    mandate = await _own_mandate(principal, mandate_id)
    document = await upload_document(rt, citizen_id=mandate.citizen_id, material="委托书", data=data,
                                     declared=declared, uploaded_by=principal.subject)
    async with unit_of_work(rt) as uow:
        await Mandate.filter(id=mandate.id).using_db(uow.tx).update(signature_document_id=document.id)
    mandate.signature_document_id = document.id
    return _mandate_out(rt, mandate)


async def declare_as_agent(rt: Runtime, *, principal: Principal, request: AgentDeclareRequest) -> CaseOut:
    """An application declared by the agent for the citizen of a mandate that covers the item: it shows
    who submitted it for whom, and the citizen sees it in their own account."""
    mandate = await _own_mandate(principal, request.mandate_id)
    if not mandate.reference and mandate.signature_document_id is None:
        raise AppError("mandate_unsigned", 409)
    if request.service_item not in mandate.items:
        raise AppError("mandate_does_not_cover_item", 403)
    item = await item_detail(rt, request.service_item)
    identity = identity_of_mandate(rt, mandate)
    return await declare_for(rt, item=item, request=request, declaration=Declaration(
        citizen_id=mandate.citizen_id, identity=identity, channel="agent", submitted_by=principal.subject,
        mandate_id=mandate.id))


def identity_of_mandate(rt: Runtime, mandate: Mandate) -> RealName:
    return RealName(name=reveal(rt.cipher, mandate.name_enc, NAME) or "",
                    id_number=reveal(rt.cipher, mandate.id_number_enc, ID_NUMBER) or "",
                    phone=reveal(rt.cipher, mandate.phone_enc, PHONE))


async def list_agent_cases(rt: Runtime, *, principal: Principal, query: CaseQuery) -> CasePage:
    """The applications this agent declared, newest first."""
    mine = Case.filter(submitted_by=principal.subject)
    if query.status:
        mine = mine.filter(status=query.status)
    return await case_page(rt, query, mine.order_by("-id"))
