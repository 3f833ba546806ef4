"""Materials (申请材料): files uploaded for an application's required materials, and what a citizen has
given once and is offered again (一口录入、多部门共享): documents and enterprises.

A file is checked on its bytes (type and size, kit.filetypes), stored under a random name outside any
served folder (kit.storage), and only then recorded; if the record is refused or fails, the stored
file is deleted again, so a failed upload leaves nothing behind. Every department of a parallel
review reads the same document rows; a staff member's download is audited, as any read of personal
data is.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from tortoise.exceptions import IntegrityError

from backend.cases.models import Case, CaseMaterial, CaseStep, Document, Enterprise
from backend.cases.permissions import can_read
from backend.cases.schemas import DocumentList, DocumentOut, EnterpriseList, EnterpriseOut, MaterialOut
from backend.cases.service import applicant_case, case_scope, item_detail
from backend.kit import clock
from backend.kit.auth import Principal
from backend.kit.errors import AppError
from backend.kit.filetypes import check_upload
from backend.kit.storage import StoredFile
from backend.kit.ratelimit import Window, enforce
from backend.kit.uow import UnitOfWork, unit_of_work
from backend.runtime import Runtime

__all__ = ["upload_material", "attach_document", "list_documents", "list_enterprises", "read_material",
           "upload_document", "MaterialFile"]

# a case takes materials while the applicant may still change it: before intake, and during 补正
_OPEN_FOR_MATERIALS = ("submitted", "supplement_required")
DAY = 86_400


@dataclass(frozen=True)
class MaterialFile:
    content_type: str
    data: bytes


def _material_out(link: CaseMaterial, document: Document) -> MaterialOut:
    return MaterialOut(id=link.id, material=link.material, content_type=document.content_type, size=document.size,
                       sha256=document.sha256, attached_at=link.attached_at.astimezone(clock.business_zone()))


def _document_out(document: Document) -> DocumentOut:
    return DocumentOut(id=document.id, material=document.material, content_type=document.content_type,
                       size=document.size, sha256=document.sha256,
                       created_at=document.created_at.astimezone(clock.business_zone()))


async def _required_materials(rt: Runtime, item_code: str) -> set[str]:
    item = await item_detail(rt, item_code)
    return {material.name for material in item.materials}


async def _open_case(rt: Runtime, *, case_id: int, citizen_id: int | None, principal: Principal | None,
                     material: str, uow: UnitOfWork) -> Case:
    case = await applicant_case(rt, case_id=case_id, citizen_id=citizen_id, principal=principal, uow=uow)
    if case.status not in _OPEN_FOR_MATERIALS:
        raise AppError("case_materials_closed", 409, case_status=case.status)
    if material not in await _required_materials(rt, case.item_code):
        raise AppError("material_unknown", 422)
    count = await CaseMaterial.filter(case_id=case.id).using_db(uow.tx).count()
    if count >= rt.settings.cases.materials_per_case:
        raise AppError("too_many_materials", 409, limit=rt.settings.cases.materials_per_case)
    return case


async def _store(rt: Runtime, *, uploader: str, data: bytes, declared: str | None):
    """Count the upload, check its bytes, store it: the limit comes before the work it guards."""
    settings = rt.settings
    await enforce(rt.limiter, f"cases:upload:{uploader}", [Window(settings.cases.uploads_per_citizen_per_day, DAY)])
    content_type = check_upload(data, declared=declared, allowed=settings.files.allowed_types,
                                max_bytes=settings.files.max_upload_bytes)
    return await rt.files.put(data, content_type=content_type)


@asynccontextmanager
async def _recording(rt: Runtime, stored: StoredFile) -> AsyncIterator[UnitOfWork]:
    """The unit of work that records a stored file. If it does not commit (refused, failed, or the
    request cancelled) the file is deleted and the error goes on: BaseException, because a cancelled
    upload must not leave a file that no row names either; it is always re-raised."""
    try:
        async with unit_of_work(rt) as uow:
            yield uow
    except BaseException:
        await rt.files.delete(stored.key)
        raise


def _document(stored: StoredFile, *, citizen_id: int, material: str, uploaded_by: str, uow: UnitOfWork):
    return Document.create(citizen_id=citizen_id, material=material, storage_key=stored.key,
                           content_type=stored.content_type, size=stored.size, sha256=stored.sha256,
                           uploaded_by=uploaded_by, created_at=clock.now(), using_db=uow.tx)


async def upload_material(rt: Runtime, *, case_id: int, material: str, data: bytes, declared: str | None,
                          citizen_id: int | None = None, principal: Principal | None = None) -> MaterialOut:
    """A file for one of the case's required materials, from its applicant or the agent who declared
    it; it joins the citizen's documents too."""
    owner = {"case_id": case_id, "citizen_id": citizen_id, "principal": principal, "material": material}
    uploaded_by = principal.subject if principal is not None else f"citizen:{citizen_id}"
    async with unit_of_work(rt) as uow:   # refuse a closed case before the file is stored
        await _open_case(rt, uow=uow, **owner)
    stored = await _store(rt, uploader=uploaded_by, data=data, declared=declared)
    async with _recording(rt, stored) as uow:
        case = await _open_case(rt, uow=uow, **owner)
        document = await _document(stored, citizen_id=case.citizen_id, material=material, uploaded_by=uploaded_by,
                                   uow=uow)
        link = await CaseMaterial.create(case_id=case.id, document_id=document.id, material=material,
                                         attached_at=clock.now(), using_db=uow.tx)
    return _material_out(link, document)


async def upload_document(rt: Runtime, *, citizen_id: int, material: str, data: bytes, declared: str | None,
                          uploaded_by: str) -> DocumentOut:
    """A document not (yet) tied to a case: a mandate's signed form, or a citizen's file for later."""
    stored = await _store(rt, uploader=uploaded_by, data=data, declared=declared)
    async with _recording(rt, stored) as uow:
        document = await _document(stored, citizen_id=citizen_id, material=material, uploaded_by=uploaded_by,
                                   uow=uow)
    return _document_out(document)


async def attach_document(rt: Runtime, *, citizen_id: int, case_id: int, material: str, document_id: int,
                          tx: UnitOfWork | None = None) -> MaterialOut:
    """一口录入: a document the citizen gave before (an ID card copy, a business licence) given again."""
    async with unit_of_work(rt, tx) as uow:
        case = await _open_case(rt, case_id=case_id, citizen_id=citizen_id, principal=None, material=material,
                                uow=uow)
        document = await Document.get_or_none(id=document_id, citizen_id=citizen_id).using_db(uow.tx)
        if document is None:
            raise AppError("document_not_found", 404)
        if await CaseMaterial.filter(case_id=case.id, document_id=document.id).using_db(uow.tx).exists():
            raise AppError("material_already_attached", 409)
        try:
            link = await CaseMaterial.create(case_id=case.id, document_id=document.id, material=material,
                                             attached_at=clock.now(), using_db=uow.tx)
        except IntegrityError:
            raise AppError("material_already_attached", 409) from None
    return _material_out(link, document)


async def list_documents(rt: Runtime, *, citizen_id: int, material: str | None = None) -> DocumentList:
    """What I have given before, newest first, to offer again instead of asking again."""
    documents = Document.filter(citizen_id=citizen_id)
    if material:
        documents = documents.filter(material=material)
    return DocumentList(items=[_document_out(d) for d in await documents.order_by("-id").limit(100)])


async def list_enterprises(rt: Runtime, *, citizen_id: int) -> EnterpriseList:
    rows = await Enterprise.filter(citizen_id=citizen_id).order_by("-last_used_at").limit(50)
    return EnterpriseList(items=[EnterpriseOut(name=e.name, uscc=e.uscc,
                                               last_used_at=e.last_used_at.astimezone(clock.business_zone()))
                                 for e in rows])


async def read_material(rt: Runtime, *, case_id: int, material_id: int, citizen_id: int | None = None,
                        principal: Principal | None = None, request_id: str | None = None) -> MaterialFile:
    """The bytes of one of a case's materials: for its applicant, or for staff who can read the case
    (every department of a parallel review sees the same files), each staff read audited."""
    case = await Case.get_or_none(id=case_id, **({"citizen_id": citizen_id} if principal is None else {}))
    if case is None:
        raise AppError("case_not_found", 404)
    if principal is not None:
        scope = await case_scope(rt, hall=case.hall_code, department=case.department_code,
                                 steps=await CaseStep.filter(case_id=case.id))
        if not can_read(principal, scope, submitted_by=case.submitted_by):
            raise AppError("case_not_found", 404)
    link = await CaseMaterial.get_or_none(id=material_id, case_id=case.id).prefetch_related("document")
    if link is None:
        raise AppError("material_not_found", 404)
    try:
        data = await rt.files.read(link.document.storage_key)
    except FileNotFoundError:
        raise AppError("material_not_found", 404) from None
    if principal is not None:
        async with unit_of_work(rt) as uow:
            await uow.audit(actor=principal.subject, action="case.material.read", subject=f"case:{case.id}",
                            request_id=request_id, material=link.id)
    return MaterialFile(content_type=link.document.content_type, data=data)
