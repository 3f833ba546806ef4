"""The citizen's notification inbox and the admins' view of deliveries (thin handlers)."""
from sanic import Blueprint, Request

from backend.kit.auth import authenticated
from backend.kit.http import json_response, parse_body, parse_query, path_id
from backend.kit.openapi import doc
from notify import schemas, service
from notify.permissions import DELIVERY_ADMIN_ROLES

bp = Blueprint("notify", url_prefix="/api/v1")

ID = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}


@bp.get("/me/notifications")
@doc(summary="My notifications, newest first (every one also sent by WeChat or SMS lands here)",
     tag="me", query=schemas.InboxQuery, response=schemas.InboxPage, secured=True)
@authenticated(kind="citizen")
async def list_my_notifications(request: Request):
    query = parse_query(request, schemas.InboxQuery)
    page = await service.list_inbox(request.app.ctx.rt, citizen_id=request.ctx.principal.id, query=query)
    return json_response(page)


@bp.post("/me/notifications/<notification_id:int>/read")
@doc(summary="Mark one of my notifications read", tag="me", response=schemas.NotificationOut, secured=True,
     errors=(404,), path_parameters={"notification_id": ID})
@authenticated(kind="citizen")
async def read_my_notification(request: Request, notification_id: int):
    entry = await service.mark_read(request.app.ctx.rt, citizen_id=request.ctx.principal.id,
                                    notification_id=path_id(notification_id, "notification_not_found"))
    return json_response(entry)


@bp.get("/admin/notifications")
@doc(summary="Deliveries by status (dead: given up after the configured tries), newest first",
     tag="admin", query=schemas.DeliveryQuery, response=schemas.DeliveryPage, secured=True)
@authenticated(kind="staff", roles=DELIVERY_ADMIN_ROLES)
async def list_deliveries(request: Request):
    query = parse_query(request, schemas.DeliveryQuery)
    return json_response(await service.list_deliveries(request.app.ctx.rt, principal=request.ctx.principal,
                                                       query=query))


@bp.post("/admin/notifications/<delivery_id:int>/retry")
@doc(summary="Try a dead or failed delivery again now, its tries counted afresh", tag="admin",
     response=schemas.DeliveryOut, secured=True, errors=(404, 409), path_parameters={"delivery_id": ID})
@authenticated(kind="staff", roles=DELIVERY_ADMIN_ROLES)
async def retry_delivery(request: Request, delivery_id: int):
    delivery = await service.retry_delivery(request.app.ctx.rt, principal=request.ctx.principal,
                                            delivery_id=path_id(delivery_id, "delivery_not_found"))
    return json_response(delivery)


@bp.post("/notify/receipts/aliyun")
@doc(summary="Alibaba Cloud's SMS delivery receipts (SmsReport push), with ?token= as registered there",
     tag="notify", query=schemas.ReceiptQuery, body=schemas.AliyunReports, response=schemas.AliyunReceiptAnswer,
     errors=(401, 404))
async def aliyun_receipts(request: Request):
    query = parse_query(request, schemas.ReceiptQuery)
    reports = parse_body(request, schemas.AliyunReports)
    await service.take_aliyun_receipts(request.app.ctx.rt, token=query.token, reports=reports)
    return json_response(schemas.AliyunReceiptAnswer(code=0, msg="接收成功"))


@bp.post("/notify/receipts/tencent")
@doc(summary="Tencent Cloud's SMS delivery-status callback, with ?token= as registered there",
     tag="notify", query=schemas.ReceiptQuery, body=schemas.TencentReports, response=schemas.TencentReceiptAnswer,
     errors=(401, 404))
async def tencent_receipts(request: Request):
    query = parse_query(request, schemas.ReceiptQuery)
    reports = parse_body(request, schemas.TencentReports)
    await service.take_tencent_receipts(request.app.ctx.rt, token=query.token, reports=reports)
    return json_response(schemas.TencentReceiptAnswer(result=0, errmsg="OK"))
