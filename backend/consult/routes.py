"""Consulting's endpoints (thin handlers): the citizen's conversations, the staff's, FAQ, supervision."""
from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from backend.consult import schemas, service
from backend.consult.permissions import CONSULT_ROLES, SUPERVISION_ROLES
from backend.kit.auth import authenticated
from backend.kit.errors import AppError, FieldError
from backend.kit.http import json_response, language_of, parse_body, parse_query, path_id, validate
from backend.kit.openapi import doc

bp = Blueprint("consult", url_prefix="/api/v1")

CONVERSATION = {"conversation_id": schemas.CONVERSATION_ID}


def _conversation_id(value: int) -> int:
    return path_id(value, "conversation_not_found")


IMAGE_FORM = {"file": {"type": "string", "format": "binary"},
              "client_msg_id": {"type": "string", "pattern": schemas.CLIENT_MSG_ID_PATTERN}}


def _image_form(request: Request) -> tuple[bytes, str | None, str]:
    """The file and the client_msg_id of a multipart image message."""
    form = validate(schemas.ImageMessageIn, {key: values[0] for key, values in (request.form or {}).items()})
    files = request.files.getlist("file") if request.files else []
    if not files:
        raise AppError("validation_failed", 422, errors=[FieldError("file", "field.missing")])
    return files[0].body, files[0].type, form.client_msg_id


async def _send_image(request: Request, conversation_id: int):
    data, declared, client_msg_id = _image_form(request)
    message = await service.send_image(request.app.ctx.rt, principal=request.ctx.principal,
                                       conversation_id=_conversation_id(conversation_id), data=data,
                                       declared=declared, client_msg_id=client_msg_id)
    return json_response(message, status=201)


@bp.post("/conversations")
@doc(summary="Ask a department, a service item's department or a hall a question: opens a conversation "
             "(idempotent on client_msg_id); FAQ answers that match, and the hours when nobody is online",
     tag="consult", body=schemas.ConversationIn, response=schemas.ConversationOpened, status=201,
     errors=(404, 409, 503), secured=True)
@authenticated(kind="citizen")
async def open_conversation(request: Request):
    wanted = parse_body(request, schemas.ConversationIn)
    opened = await service.open_conversation(
        request.app.ctx.rt, citizen_id=request.ctx.principal.id, department=wanted.department,
        service_item=wanted.service_item, hall=wanted.hall, text=wanted.text, client_msg_id=wanted.client_msg_id,
        language=language_of(request))
    return json_response(opened, status=201)


@bp.get("/conversations")
@doc(summary="My conversations, latest activity first", tag="consult", query=schemas.ConversationQuery,
     response=schemas.ConversationList, secured=True)
@authenticated(kind="citizen")
async def list_my_conversations(request: Request):
    query = parse_query(request, schemas.ConversationQuery)
    return json_response(await service.list_my_conversations(request.app.ctx.rt, citizen_id=request.ctx.principal.id,
                                                             query=query))


@bp.get("/conversations/<conversation_id:int>")
@doc(summary="One of my conversations", tag="consult", response=schemas.ConversationOut, errors=(404,),
     secured=True, path_parameters=CONVERSATION)
@authenticated(kind="citizen")
async def get_my_conversation(request: Request, conversation_id: int):
    return json_response(await service.get_my_conversation(
        request.app.ctx.rt, citizen_id=request.ctx.principal.id, conversation_id=_conversation_id(conversation_id)))


@bp.get("/conversations/<conversation_id:int>/messages")
@doc(summary="A conversation's messages after a message id, oldest first (catch up after a reconnect)",
     tag="consult", query=schemas.MessagesQuery, response=schemas.MessagePage, errors=(404,), secured=True,
     path_parameters=CONVERSATION)
@authenticated(kind="citizen")
async def list_my_messages(request: Request, conversation_id: int):
    query = parse_query(request, schemas.MessagesQuery)
    return json_response(await service.list_my_messages(
        request.app.ctx.rt, citizen_id=request.ctx.principal.id, conversation_id=_conversation_id(conversation_id),
        query=query))


@bp.post("/conversations/<conversation_id:int>/messages")
@doc(summary="Send a message (idempotent on client_msg_id: a retry answers the first message); reopens a "
             "resolved conversation", tag="consult", body=schemas.MessageIn, response=schemas.MessageOut,
     status=201, errors=(404, 503), secured=True, path_parameters=CONVERSATION)
@authenticated(kind="citizen")
async def send_message(request: Request, conversation_id: int):
    wanted = parse_body(request, schemas.MessageIn)
    message = await service.send_citizen_message(
        request.app.ctx.rt, citizen_id=request.ctx.principal.id, conversation_id=_conversation_id(conversation_id),
        text=wanted.text, client_msg_id=wanted.client_msg_id)
    return json_response(message, status=201)


@bp.post("/conversations/<conversation_id:int>/images", ctx_upload=True)
@doc(summary="Send a photo (of a document): a JPEG or PNG by its bytes, at most files.max_upload_bytes "
             "(idempotent on client_msg_id)", tag="consult", upload=IMAGE_FORM, response=schemas.MessageOut,
     status=201, errors=(404,), secured=True, path_parameters=CONVERSATION)
@authenticated(kind="citizen")
async def send_citizen_image(request: Request, conversation_id: int):
    return await _send_image(request, conversation_id)


@bp.get("/conversations/<conversation_id:int>/messages/<message_id:int>/image")
@doc(summary="A message's image, for the citizen of the conversation or staff whose grants reach it",
     tag="consult", errors=(404,), secured=True, media_types=schemas.IMAGE_TYPES,
     path_parameters=CONVERSATION | {"message_id": schemas.MESSAGE_ID})
@authenticated()
async def read_image(request: Request, conversation_id: int, message_id: int):
    data, content_type = await service.read_image(
        request.app.ctx.rt, principal=request.ctx.principal, conversation_id=_conversation_id(conversation_id),
        message_id=path_id(message_id, "conversation_image_not_found"))
    return HTTPResponse(data, content_type=content_type, headers={"Cache-Control": "private, no-store",
                                                                  "X-Content-Type-Options": "nosniff"})


@bp.get("/faq")
@doc(summary="FAQ answers of a department or service item, those matching the words of `q` if given",
     tag="consult", query=schemas.FaqQuery, response=schemas.FaqList)
async def search_faq(request: Request):
    query = parse_query(request, schemas.FaqQuery)
    return json_response(await service.search_faq(request.app.ctx.rt, q=query.q, department=query.department,
                                                  service_item=query.service_item, language=language_of(request)))


@bp.get("/staff/conversations")
@doc(summary="Conversations my grants reach (window_clerk, approver, supervisor), latest activity first",
     tag="consult-staff", query=schemas.StaffConversationQuery, response=schemas.ConversationList, secured=True)
@authenticated(kind="staff", roles=CONSULT_ROLES)
async def list_staff_conversations(request: Request):
    query = parse_query(request, schemas.StaffConversationQuery)
    return json_response(await service.list_staff_conversations(request.app.ctx.rt, principal=request.ctx.principal,
                                                                query=query))


@bp.get("/staff/conversations/<conversation_id:int>/messages")
@doc(summary="A conversation's messages after a message id, oldest first", tag="consult-staff",
     query=schemas.MessagesQuery, response=schemas.MessagePage, errors=(404,), secured=True,
     path_parameters=CONVERSATION)
@authenticated(kind="staff", roles=CONSULT_ROLES)
async def list_staff_messages(request: Request, conversation_id: int):
    query = parse_query(request, schemas.MessagesQuery)
    return json_response(await service.list_staff_messages(
        request.app.ctx.rt, principal=request.ctx.principal, conversation_id=_conversation_id(conversation_id),
        query=query))


@bp.post("/staff/conversations/<conversation_id:int>/messages")
@doc(summary="Answer (idempotent on client_msg_id); the citizen hears of it by WeChat or SMS when offline",
     tag="consult-staff", body=schemas.MessageIn, response=schemas.MessageOut, status=201, errors=(404, 409),
     secured=True, path_parameters=CONVERSATION)
@authenticated(kind="staff", roles=CONSULT_ROLES)
async def send_staff_message(request: Request, conversation_id: int):
    wanted = parse_body(request, schemas.MessageIn)
    message = await service.send_staff_message(
        request.app.ctx.rt, principal=request.ctx.principal, conversation_id=_conversation_id(conversation_id),
        text=wanted.text, client_msg_id=wanted.client_msg_id)
    return json_response(message, status=201)


@bp.post("/staff/conversations/<conversation_id:int>/images", ctx_upload=True)
@doc(summary="Send the citizen a photo: a JPEG or PNG by its bytes (idempotent on client_msg_id)",
     tag="consult-staff", upload=IMAGE_FORM, response=schemas.MessageOut, status=201, errors=(404, 409),
     secured=True, path_parameters=CONVERSATION)
@authenticated(kind="staff", roles=CONSULT_ROLES)
async def send_staff_image(request: Request, conversation_id: int):
    return await _send_image(request, conversation_id)


@bp.post("/staff/conversations/<conversation_id:int>/claim")
@doc(summary="Take a conversation from the queue", tag="consult-staff", response=schemas.ConversationOut,
     errors=(404, 409), secured=True, path_parameters=CONVERSATION)
@authenticated(kind="staff", roles=CONSULT_ROLES)
async def claim(request: Request, conversation_id: int):
    return json_response(await service.claim_conversation(
        request.app.ctx.rt, principal=request.ctx.principal, conversation_id=_conversation_id(conversation_id)))


@bp.post("/staff/conversations/<conversation_id:int>/transfer")
@doc(summary="Hand a conversation to another department or staff member", tag="consult-staff",
     body=schemas.TransferIn, response=schemas.ConversationOut, errors=(404, 409), secured=True,
     path_parameters=CONVERSATION)
@authenticated(kind="staff", roles=CONSULT_ROLES)
async def transfer(request: Request, conversation_id: int):
    wanted = parse_body(request, schemas.TransferIn)
    return json_response(await service.transfer_conversation(
        request.app.ctx.rt, principal=request.ctx.principal, conversation_id=_conversation_id(conversation_id),
        department=wanted.department, staff=wanted.staff))


@bp.post("/staff/conversations/<conversation_id:int>/resolve")
@doc(summary="Close a conversation as answered (the citizen's next message reopens it)", tag="consult-staff",
     response=schemas.ConversationOut, errors=(404, 409), secured=True, path_parameters=CONVERSATION)
@authenticated(kind="staff", roles=CONSULT_ROLES)
async def resolve(request: Request, conversation_id: int):
    return json_response(await service.resolve_conversation(
        request.app.ctx.rt, principal=request.ctx.principal, conversation_id=_conversation_id(conversation_id)))


@bp.get("/staff/canned-answers")
@doc(summary="Canned answers of a department (and those for every department)", tag="consult-staff",
     query=schemas.CannedQuery, response=schemas.CannedAnswerList, errors=(404,), secured=True)
@authenticated(kind="staff", roles=CONSULT_ROLES)
async def canned_answers(request: Request):
    query = parse_query(request, schemas.CannedQuery)
    return json_response(await service.list_canned_answers(request.app.ctx.rt, principal=request.ctx.principal,
                                                           department=query.department,
                                                           language=language_of(request)))


@bp.get("/supervision/consulting")
@doc(summary="Consulting response times per department and day: first answer and resolution (supervisors)",
     tag="supervision", query=schemas.SupervisionQuery, response=schemas.ConsultingReport, secured=True)
@authenticated(kind="staff", roles=SUPERVISION_ROLES)
async def consulting_report(request: Request):
    query = parse_query(request, schemas.SupervisionQuery)
    return json_response(await service.consulting_report(request.app.ctx.rt, principal=request.ctx.principal,
                                                         query=query))
