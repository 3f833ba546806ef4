"""notify's requests and answers: the one definition of each."""
from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from backend.kit.pagination import Page, PageQuery

DeliveryStatus = Literal["pending", "sending", "sent", "delivered", "failed", "dead", "skipped"]
SubscribeResult = Literal["accept", "reject", "ban", "filter"]


class SubscriptionsIn(BaseModel):
    """What wx.requestSubscribeMessage answered, template id by template id."""
    model_config = ConfigDict(extra="forbid")
    results: dict[str, SubscribeResult] = Field(
        min_length=1, max_length=3,   # the mini-program asks for at most three templates at once
        description='{"<template id>": "accept" | "reject" | "ban" | "filter"}')


class SubscriptionsOut(BaseModel):
    credits: dict[str, int] = Field(description="template id -> subscribe messages it may still carry")


class NotificationOut(BaseModel):
    id: int
    kind: str = Field(description="the event: ticket.called, case.approved, ...")
    title: str
    body: str
    created_at: dt.datetime
    read_at: dt.datetime | None


class InboxQuery(PageQuery):
    unread: bool = False


class InboxPage(Page[NotificationOut]):
    unread: int = Field(description="unread notifications in all")


class DeliveryOut(BaseModel):
    """A delivery as the admins see it: who by id, never a phone or an openid."""
    id: int
    event_id: int
    kind: str
    channel: Literal["wechat", "sms"]
    recipient_kind: str
    recipient_id: int
    template: str
    language: str
    urgent: bool
    status: DeliveryStatus
    attempts: int
    next_attempt_at: dt.datetime
    provider_message_id: str | None
    last_error: str | None
    created_at: dt.datetime
    sent_at: dt.datetime | None
    delivered_at: dt.datetime | None


class DeliveryQuery(PageQuery):
    status: DeliveryStatus | None = None


class DeliveryPage(Page[DeliveryOut]):
    pass


# --- delivery receipts, in the providers' own formats ----------------------------------------------

class ReceiptQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    token: str = Field("", max_length=200)


class AliyunReport(BaseModel):
    """One entry of Alibaba Cloud's SmsReport push."""
    model_config = ConfigDict(extra="ignore")
    phone_number: str = Field(max_length=20)
    success: bool
    biz_id: str = Field(max_length=64)
    out_id: str | None = Field(None, max_length=64)
    err_code: str = Field("", max_length=64)
    err_msg: str = Field("", max_length=200)
    send_time: str = Field("", max_length=32)
    report_time: str = Field("", max_length=32)


class AliyunReports(RootModel[list[AliyunReport]]):
    root: list[AliyunReport] = Field(min_length=1, max_length=1000)


class AliyunReceiptAnswer(BaseModel):
    code: int = Field(description="0: taken (Alibaba Cloud stops pushing these)")
    msg: str


class TencentReport(BaseModel):
    """One entry of Tencent Cloud's delivery-status callback."""
    model_config = ConfigDict(extra="ignore")
    sid: str = Field(max_length=64, description="the SerialNo SendSms answered")
    report_status: Literal["SUCCESS", "FAIL"]
    mobile: str = Field(max_length=20)
    nationcode: str = Field("86", max_length=4)
    errmsg: str = Field("", max_length=64)
    description: str = Field("", max_length=200)
    user_receive_time: str = Field("", max_length=32)


class TencentReports(RootModel[list[TencentReport]]):
    root: list[TencentReport] = Field(min_length=1, max_length=1000)


class TencentReceiptAnswer(BaseModel):
    result: int = Field(description="0: taken")
    errmsg: str
