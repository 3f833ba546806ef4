"""The official account (公众号) callback: what a follower's message or event becomes, and the answer
WeChat passes back to them (a passive reply) within its 5 seconds.

- `subscribe`: a welcome saying what can be asked;
- `CX <receipt>` / `查询 <receipt>`: the application's progress line (application_progress_line), or the
  polite "not found";
- other text: a consulting message in the follower's conversation (consult.take_follower_message);
- anything else (images, voice, unsubscribe, unknown types): nothing ("success").
WeChat retries a callback it got no answer to: a MsgId (an event: its sender and time) already taken is
ignored, and the rows it made were made once, in the same transaction as the key that dedupes it.
"""
from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path

from tortoise.exceptions import IntegrityError

from backend.accounts.citizens import citizen_of_wechat_user
from backend.cases.progress import case_of_owner, progress_line, progress_query
from backend.consult.models import OfficialAccountInbound
from backend.consult.schemas import TEXT_MAX
from backend.consult.service import consult_text, take_follower_message
from backend.kit import clock
from backend.kit.uow import unit_of_work
from backend.runtime import Runtime
from notify.sms import SmsTemplates

__all__ = ["take_callback_message", "application_progress_line"]

log = logging.getLogger("ehall.official_account")

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


async def application_progress_line(rt: Runtime, *, receipt: str, citizen_id: int | None,
                                    language: str) -> str | None:
    """The one line a follower gets for `CX <receipt>`: the application's progress, or None when there is
    no such application *of this follower* (`citizen_id`: the citizen their openid is bound to, None when
    unbound), so that receipts cannot be tried one after another to read strangers' applications. The
    line is the one the SMS answer to "CX <receipt>" sends (config/templates/sms.toml case_status_line)."""
    case = await case_of_owner(receipt, citizen_id=citizen_id)
    if case is None:
        return None
    return _sms_texts(rt.settings.resolved_config_dir() / "templates" / "sms.toml").render(
        "case_status_line", language, **progress_line(case, language))


@lru_cache(maxsize=2)
def _sms_texts(path: Path) -> SmsTemplates:
    return SmsTemplates(path)


async def take_callback_message(rt: Runtime, *, kind: str, event: str | None, openid: str, msg_id: str | None,
                                created: int, content: str | None) -> str | None:
    """Take one callback message; answers the text of the passive reply, or None for none ("success")."""
    key = f"msg:{msg_id}" if msg_id else f"event:{openid}:{created}:{event or kind}"
    if await OfficialAccountInbound.exists(key=key[:96]):
        return None
    try:
        async with unit_of_work(rt) as uow:
            await OfficialAccountInbound.create(key=key[:96], received_at=clock.now(), using_db=uow.tx)
            if kind == "event" and (event or "").lower() == "subscribe":
                return consult_text(rt, "oa_welcome", "zh")
            if kind != "text" or not content:
                return None
            citizen_id = await citizen_of_wechat_user(rt, appid=rt.settings.official_account.appid, openid=openid)
            receipt = progress_query(content)
            if receipt:
                line = await application_progress_line(rt, receipt=receipt, citizen_id=citizen_id, language="zh")
                return line or consult_text(rt, "oa_not_found", "zh", receipt=receipt)
            text = _CONTROL.sub(" ", content).strip()[:TEXT_MAX]
            if not text:
                return None
            await take_follower_message(rt, openid=openid, msg_id=msg_id or key, text=text, citizen_id=citizen_id,
                                        uow=uow)
            return None
    except IntegrityError:
        # the same message, delivered twice at once: the other delivery took it
        if await OfficialAccountInbound.exists(key=key[:96]):
            return None
        raise
