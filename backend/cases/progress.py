"""Progress for people without an account: a receipt number and the last 4 characters of the applicant's
ID number or phone (on the web, by phone to a clerk), or a text message "CX <receipt>" from the phone on
the application.

Nothing here may help anyone collect receipt numbers or personal data: every try counts against the
client's address and against the receipt before anything is looked up; a receipt nobody issued and a
wrong tail get the same answer; the answer leaves out comments and staff, and masks the applicant.
A mistyped receipt (its check character does not match) is told as such: that needs no lookup and
says nothing about which numbers exist.
"""
from __future__ import annotations

import hmac
import logging
import re
from dataclasses import dataclass

from backend.accounts.citizens import find_by_phone
from backend.cases.machine import STATUS_TEXT
from backend.cases.models import Case, CaseHistory, CaseStep
from backend.cases.receipts import parse_receipt
from backend.cases.schemas import AliyunInboundText, InboundPush, ProgressOut
from backend.cases.service import (
    clock_out, item_detail, named_hall, named_item, status_text, steps_out, tail_index, timeline_out,
)
from backend.kit import clock
from backend.kit.errors import AppError
from backend.kit.gateways import SmsError
from backend.kit.identity import fold_full_width, normalize_phone
from backend.kit.pii import NAME, mask_name
from backend.kit.ratelimit import Window, enforce
from backend.runtime import Runtime

__all__ = ["lookup_progress", "InboundText", "answer_inbound_text", "progress_line", "take_inbound_push",
           "case_of_owner", "progress_query"]

log = logging.getLogger("ehall.cases")
HOUR, DAY = 3_600, 86_400
# "CX 150900261203000017", "查询150900-261203-00001-7", "cx: ..." (case and width folded first)
_QUERY = re.compile(r"^(?:CX|查询)\s*[:：]?\s*([0-9X \-]{8,40})$")


async def lookup_progress(rt: Runtime, *, receipt: str, tail: str, client_ip: str) -> ProgressOut:
    settings = rt.settings.cases
    await enforce(rt.limiter, f"cases:lookup:ip:{client_ip}", [Window(settings.lookups_per_ip_per_hour, HOUR)])
    number = parse_receipt(receipt)
    await enforce(rt.limiter, f"cases:lookup:receipt:{number}",
                  [Window(settings.lookups_per_receipt_per_hour, HOUR)])
    case = await Case.get_or_none(receipt=number)
    wanted = tail_index(rt, fold_full_width(tail))
    # compared in constant time whatever was found; an unknown number and a wrong tail answer alike
    matches = case is not None and (hmac.compare_digest(case.id_tail_index, wanted)
                                    or hmac.compare_digest(case.phone_tail_index or "", wanted))
    if not matches:
        raise AppError("progress_not_found", 404)
    return await _progress(rt, case)


async def _progress(rt: Runtime, case: Case) -> ProgressOut:
    item = await item_detail(rt, case.item_code)
    steps = await CaseStep.filter(case_id=case.id)
    history = await CaseHistory.filter(case_id=case.id).order_by("id")
    applicant = case.enterprise_name if case.applicant_kind == "enterprise" \
        else mask_name(rt.cipher.decrypt(case.applicant_name_enc, purpose=NAME))
    zone = clock.business_zone()
    return ProgressOut(receipt=case.receipt, status=case.status, status_text=status_text(case.status),  # type: ignore[arg-type]
                       service_item=named_item(item), hall=await named_hall(rt, case.hall_code),
                       applicant=applicant, submitted_at=case.submitted_at.astimezone(zone),
                       deadline=case.deadline_at.astimezone(zone) if case.deadline_at else None,
                       clock=clock_out(case), steps=[step.model_copy(update={"comment": ""})
                                                  for step in await steps_out(rt, steps)],
                       timeline=timeline_out(history, staff=False, comments=False))


# --- by text message ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class InboundText:
    """One text message a provider pushed to us (上行短信)."""
    phone: str
    text: str


def progress_line(case: Case, language: str) -> dict[str, str]:
    """The parameters of the one-line SMS answer: status and, while it runs, the deadline's date."""
    deadline = case.deadline_at.astimezone(clock.business_zone()).strftime("%Y-%m-%d") if case.deadline_at else "-"
    return {"receipt": case.receipt, "status": STATUS_TEXT[case.status].get(language) or STATUS_TEXT[case.status]["zh"],
            "deadline": deadline}


async def answer_inbound_text(rt: Runtime, message: InboundText) -> str:
    """Answer one "CX <receipt>" by SMS: the status line when the phone is the application's, a polite
    fixed answer for anything else. Returns what was answered (for the log and the tests)."""
    try:
        phone = normalize_phone(message.phone)
    except ValueError:
        return "ignored"    # not a mainland mobile: nothing to answer to
    settings = rt.settings.cases
    try:
        await enforce(rt.limiter, f"cases:sms-reply:{phone}", [Window(settings.sms_replies_per_phone_per_hour, HOUR),
                                                               Window(settings.sms_replies_per_phone_per_day, DAY)])
    except AppError:
        return "limited"    # a loop between two robots, or someone paying nothing to cost us a lot
    citizen = await find_by_phone(rt, phone=phone)
    language = citizen.preferred_language if citizen is not None else "zh"
    case = await _case_asked_for(message.text, citizen_id=citizen.id if citizen is not None else None)
    if case is None:
        template, params = "case_status_unknown", {}
    else:
        template, params = "case_status_line", progress_line(case, language)
    try:
        await rt.sms.send(phone, template, language, **params)
    except SmsError:
        log.warning("progress SMS not sent", exc_info=True)
        return "failed"
    return "answered" if case is not None else "unknown"


def progress_query(text: str) -> str | None:
    """The receipt a text asks about ("CX <receipt>", "查询<receipt>", any case or width, spaced or
    dashed as read out), or None when the text is not such a question."""
    match = _QUERY.match(" ".join(fold_full_width(text).upper().split()))
    return match[1] if match else None


async def _case_asked_for(text: str, *, citizen_id: int | None) -> Case | None:
    """The case a "CX <receipt>" names, if the sender's phone is the account the case belongs to."""
    receipt = progress_query(text)
    return await case_of_owner(receipt, citizen_id=citizen_id) if receipt else None


async def case_of_owner(receipt_text: str, *, citizen_id: int | None) -> Case | None:
    """The case with this receipt if it is `citizen_id`'s own (a phone or a WeChat follower bound to the
    account): a channel that proves nothing more than who is asking answers nobody else's case, so
    receipts cannot be tried one after another to read strangers' applications."""
    if citizen_id is None:
        return None
    try:
        receipt = parse_receipt(receipt_text)
    except AppError:
        return None
    return await Case.get_or_none(receipt=receipt, citizen_id=citizen_id)


async def take_inbound_push(rt: Runtime, *, token: str, push: InboundPush) -> list[str]:
    """A provider's push of replies: authenticated by the shared secret registered with the provider
    (the one its delivery receipts carry), then each "CX <receipt>" answered."""
    expected = rt.settings.notify.receipt_token.get_secret_value()
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        raise AppError("receipt_unauthenticated", 401)
    texts = push.root if isinstance(push.root, list) else [push.root]
    return [await answer_inbound_text(rt, InboundText(phone=text.phone_number, text=text.content)
                                      if isinstance(text, AliyunInboundText)
                                      else InboundText(phone=text.mobile, text=text.text))
            for text in texts]
