"""What the notification tests share: the SMS provider fakes, a server whose SMS goes through Alibaba
Cloud's official SDK to its fake, citizens reachable by WeChat and SMS, and a way to run the
dispatcher until it has nothing left to do."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import pytest

from backend.kit import clock
from backend.kit.uow import unit_of_work
from backend.runtime import Runtime
from backend.settings import AliyunSmsSettings, TencentSmsSettings
from notify.service import dispatch_once
from tests.conftest import RunningApp
from tests.factories import bearer, new_phone
from tests.fakes.aliyun_sms import FakeAliyunSms
from tests.fakes.tencent_sms import FakeTencentSms

# a Wednesday mid-morning in Ulanqab: a working day, outside quiet hours
WORKDAY_MORNING = datetime.fromisoformat("2026-11-25T10:00:00+08:00")


@pytest.fixture(scope="module")
async def aliyun():
    async with FakeAliyunSms() as fake:
        fake.now = clock.now   # the provider's records dated in the tests' business time
        yield fake


@pytest.fixture(scope="module")
async def tencent():
    async with FakeTencentSms() as fake:
        fake.now = clock.now
        yield fake


def aliyun_settings(fake: FakeAliyunSms, **changes) -> dict:
    return {"backend": "aliyun", "aliyun": AliyunSmsSettings(**{
        "access_key_id": fake.access_key_id, "access_key_secret": fake.access_key_secret, "endpoint": fake.address,
        "protocol": "http", **changes})}


def tencent_settings(fake: FakeTencentSms, **changes) -> dict:
    return {"backend": "tencent", "tencent": TencentSmsSettings(**{
        "secret_id": fake.secret_id, "secret_key": fake.secret_key, "sdk_app_id": fake.sdk_app_id,
        "endpoint": fake.address, "protocol": "http", **changes})}


@pytest.fixture
def morning(frozen_clock) -> datetime:
    frozen_clock(WORKDAY_MORNING)
    return WORKDAY_MORNING


@pytest.fixture
async def notifying(app_with, aliyun, morning) -> RunningApp:
    """A server whose notification SMS goes to the Alibaba Cloud fake. The per-phone SMS limits count
    real seconds (the frozen business clock does not move them): out of the way here, tested apart."""
    return await app_with(sms=aliyun_settings(aliyun), notify=UNLIMITED_SMS | {"retry_base_seconds": 60})


UNLIMITED_SMS = {"sms_per_phone_template_per_30_seconds": 1000, "sms_per_phone_per_hour": 1000,
                 "sms_per_phone_per_day": 1000}


async def drain(rt: Runtime, holder: str | None = None) -> int:
    """Run dispatcher rounds until one finds nothing due; answers the work done."""
    holder = holder or f"test-{uuid.uuid4().hex[:8]}"
    done = 0
    while found := await dispatch_once(rt, holder=holder):
        done += found
    return done


async def record(rt: Runtime, kind: str, aggregate: str, **payload) -> int:
    async with unit_of_work(rt) as uow:
        event = await uow.record(kind, aggregate, **payload)
    return event.id


@dataclass
class Person:
    citizen_id: int
    phone: str
    openid: str | None
    tokens: dict

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.tokens)


async def wechat_citizen(http, fake_wechat, *, language: str = "zh", phone: str | None = None) -> Person:
    """A mini-program user with a bound phone: reachable by WeChat (with a consent) and by SMS."""
    openid = f"o-{uuid.uuid4().hex[:20]}"
    login = (await http.post("/mp/v1/auth/login", json={"code": fake_wechat.issue_login_code(openid=openid)})).json()
    phone = phone or new_phone()
    bound = await http.post("/mp/v1/auth/phone", headers=bearer(login), json={"code": fake_wechat.issue_phone_code(phone)})
    assert bound.status_code == 200, bound.text
    tokens = bound.json()
    if language != "zh":
        changed = await http.patch("/api/v1/me", headers=bearer(tokens), json={"preferred_language": language})
        assert changed.status_code == 200, changed.text
    me = (await http.get("/api/v1/me", headers=bearer(tokens))).json()
    return Person(citizen_id=me["id"], phone=phone, openid=openid, tokens=tokens)


async def consent(http, person: Person, *template_ids: str) -> dict:
    answer = await http.post("/mp/v1/subscriptions", headers=person.headers,
                             json={"results": {template_id: "accept" for template_id in template_ids}})
    assert answer.status_code == 200, answer.text
    return answer.json()["credits"]
