"""notify's requests and answers: the one definition of each."""
from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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
