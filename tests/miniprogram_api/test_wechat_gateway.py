"""WechatGateway end to end: the real wechatpy client, real Redis, a loopback fake of WeChat's API."""
from __future__ import annotations

import asyncio
import multiprocessing
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from backend.kit.errors import AppError
from backend.settings import Settings
from miniprogram_api.wechat import RedisTokenStore, WechatGateway
from tests.fakes.wechat import FakeWechat
from tests.miniprogram_api.token_race import fetch_token_in_process

REDIS_URL = "redis://127.0.0.1:6379/0"


def settings_for(fake: FakeWechat, prefix: str, redis_url: str = REDIS_URL, **wechat: Any) -> Settings:
    return Settings(redis_url=redis_url, redis_prefix=prefix, wechat={
        "appid": fake.appid, "secret": fake.secret, "api_base_url": fake.base_url, **wechat})


@pytest.fixture
async def fake() -> AsyncIterator[FakeWechat]:
    """A fake of its own per test, so its counters count this test's calls only."""
    async with FakeWechat() as fake:
        yield fake


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis: Redis) -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"ehall-test:{uuid.uuid4().hex}:"
    yield prefix
    keys = [key async for key in redis.scan_iter(match=prefix + "*")]
    if keys:
        await redis.delete(*keys)


@pytest.fixture
async def gateway(fake: FakeWechat, redis: Redis, prefix: str) -> AsyncIterator[WechatGateway]:
    gateway = WechatGateway(settings_for(fake, prefix), redis)
    yield gateway
    await gateway.close()


async def raised(call: Any) -> AppError:
    with pytest.raises(AppError) as caught:
        await call
    return caught.value


class TestCodeToSession:
    async def test_returns_the_users_openid_and_unionid(self, fake: FakeWechat, gateway: WechatGateway):
        session = await gateway.code_to_session(fake.issue_login_code("o-herder-1", unionid="u-herder-1"))

        assert (session.openid, session.unionid) == ("o-herder-1", "u-herder-1")
        assert session.session_key
        assert session.session_key not in repr(session)

    async def test_user_without_unionid_gets_none(self, fake: FakeWechat, gateway: WechatGateway):
        session = await gateway.code_to_session(fake.issue_login_code("o-herder-2"))

        assert (session.openid, session.unionid) == ("o-herder-2", None)

    async def test_a_login_code_works_once(self, fake: FakeWechat, gateway: WechatGateway):
        code = fake.issue_login_code("o-herder-3")
        await gateway.code_to_session(code)

        error = await raised(gateway.code_to_session(code))

        assert (error.code, error.status) == ("wechat_code_invalid", 400)

    async def test_an_unknown_code_is_invalid(self, gateway: WechatGateway):
        error = await raised(gateway.code_to_session("never-issued"))

        assert (error.code, error.status) == ("wechat_code_invalid", 400)

    async def test_wechat_rate_limit_asks_the_client_to_retry_in_a_minute(
            self, fake: FakeWechat, gateway: WechatGateway):
        fake.fail_next("sns/jscode2session", 45011)

        error = await raised(gateway.code_to_session(fake.issue_login_code("o-herder-4")))

        assert (error.code, error.status) == ("rate_limited", 429)
        assert error.headers == {"Retry-After": "60"}
        assert error.params == {"retry_after": 60}

    async def test_wechat_busy_is_unavailable(self, fake: FakeWechat, gateway: WechatGateway):
        fake.fail_next("sns/jscode2session", -1)

        error = await raised(gateway.code_to_session(fake.issue_login_code("o-herder-5")))

        assert (error.code, error.status) == ("wechat_unavailable", 503)

    async def test_risky_user_is_refused(self, fake: FakeWechat, gateway: WechatGateway):
        fake.fail_next("sns/jscode2session", 40226)

        error = await raised(gateway.code_to_session(fake.issue_login_code("o-herder-6")))

        assert (error.code, error.status) == ("wechat_risky_user", 403)

    async def test_wrong_secret_is_unavailable(self, fake: FakeWechat, prefix: str):
        gateway = WechatGateway(settings_for(fake, prefix, secret="not-the-secret"), None)

        error = await raised(gateway.code_to_session(fake.issue_login_code("o-herder-7")))

        assert (error.code, error.status) == ("wechat_unavailable", 503)

    async def test_unreachable_wechat_is_unavailable(self, fake: FakeWechat, prefix: str):
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]
        gateway = WechatGateway(settings_for(fake, prefix, api_base_url=f"http://127.0.0.1:{port}/"), None)

        error = await raised(gateway.code_to_session("any"))

        assert (error.code, error.status) == ("wechat_unavailable", 503)


class TestGetPhoneNumber:
    async def test_returns_the_phone_number_once(self, fake: FakeWechat, gateway: WechatGateway):
        code = fake.issue_phone_code("13800001111")

        assert await gateway.get_phone_number(code) == "13800001111"
        error = await raised(gateway.get_phone_number(code))
        assert (error.code, error.status) == ("wechat_code_invalid", 400)

    async def test_a_number_outside_mainland_china_is_refused(self, fake: FakeWechat, gateway: WechatGateway):
        error = await raised(gateway.get_phone_number(fake.issue_phone_code("2025550123", country_code="1")))

        assert (error.code, error.status) == ("validation_failed", 422)
        assert [(e.field, e.code) for e in error.errors] == [("phone", "field.phone")]


class TestAccessToken:
    async def test_two_processes_refreshing_the_token_at_once_fetch_it_once(self, fake: FakeWechat, prefix: str):
        fake.token_delay_seconds = 0.3  # a process that skipped the lock would surely fetch too
        context = multiprocessing.get_context("spawn")
        start, results = context.Barrier(2), context.Queue()
        settings = {"redis_url": REDIS_URL, "redis_prefix": prefix,
                    "wechat": {"appid": fake.appid, "secret": fake.secret, "api_base_url": fake.base_url}}
        processes = [context.Process(target=fetch_token_in_process, args=(settings, start, results))
                     for _ in range(2)]
        for process in processes:
            process.start()

        tokens = await asyncio.to_thread(lambda: [results.get(timeout=60) for _ in processes])
        for process in processes:
            await asyncio.to_thread(process.join, 60)

        assert not [token for token in tokens if token.startswith("error:")], tokens
        assert [process.exitcode for process in processes] == [0, 0]
        assert fake.token_fetches == 1
        assert tokens[0] == tokens[1]
        assert fake.is_token_valid(tokens[0])

    @pytest.mark.parametrize("store", ["memory", "redis"])
    async def test_eight_coroutines_needing_a_token_at_once_fetch_it_once(
            self, fake: FakeWechat, redis: Redis, prefix: str, store: str):
        fake.token_delay_seconds = 0.3
        gateway = WechatGateway(settings_for(fake, prefix), redis if store == "redis" else None)

        tokens = await asyncio.gather(*(gateway.access_token() for _ in range(8)))

        assert fake.token_fetches == 1
        assert len(set(tokens)) == 1
        await gateway.close()

    async def test_gateways_sharing_redis_share_the_token(
            self, fake: FakeWechat, redis: Redis, prefix: str, gateway: WechatGateway):
        other = WechatGateway(settings_for(fake, prefix), redis)

        assert await gateway.access_token() == await other.access_token()
        assert fake.token_fetches == 1
        assert await redis.pttl(f"{prefix}wechat:token:{fake.appid}") > 7000 * 1000
        await other.close()

    async def test_a_token_within_the_margin_of_expiry_is_refreshed_early(
            self, fake: FakeWechat, gateway: WechatGateway):
        fake.token_lifetime = 200  # less than the 300 s margin: every token is already due for refresh
        first = await gateway.access_token()

        second = await gateway.access_token()

        assert fake.token_fetches == 2
        assert second != first
        assert fake.is_token_valid(first)  # WeChat's overlap: the old one still works meanwhile

    async def test_a_token_with_time_to_spare_is_reused(self, fake: FakeWechat, gateway: WechatGateway):
        first = await gateway.access_token()

        assert await gateway.access_token() == first
        assert fake.token_fetches == 1

    async def test_a_process_keeps_the_token_it_read_without_asking_redis_each_call(
            self, fake: FakeWechat, redis: Redis, prefix: str, gateway: WechatGateway):
        first = await gateway.access_token()
        await redis.delete(f"{prefix}wechat:token:{fake.appid}")   # gone from the store: not read again

        assert await gateway.access_token() == first
        assert fake.token_fetches == 1

    async def test_a_kept_token_another_process_replaced_is_rejected_once_then_the_new_one_used(
            self, fake: FakeWechat, redis: Redis, prefix: str, gateway: WechatGateway):
        stale = await gateway.access_token()
        other = WechatGateway(settings_for(fake, prefix), redis)
        fake.invalidate_tokens()
        fresh = await other._refresh(rejected=stale)   # the other process met the rejection first

        assert await gateway.get_phone_number(fake.issue_phone_code("13800003333")) == "13800003333"

        assert fake.rejected_tokens == [stale]
        assert fake.token_fetches == 2            # this process read the other's token, fetched none
        assert await gateway.access_token() == fresh
        await other.close()

    @pytest.mark.parametrize("kill", ["invalidate_tokens", "expire_tokens"])
    async def test_a_rejected_token_is_refreshed_once_and_the_call_retried(
            self, fake: FakeWechat, gateway: WechatGateway, kill: str):
        stale = await gateway.access_token()
        getattr(fake, kill)()

        assert await gateway.get_phone_number(fake.issue_phone_code("13800002222")) == "13800002222"

        assert fake.rejected_tokens == [stale]
        assert fake.token_fetches == 2
        fresh = await gateway.access_token()
        assert fresh != stale and fake.is_token_valid(fresh)
        assert fake.token_fetches == 2

    async def test_a_call_rejected_twice_is_not_retried_again(self, fake: FakeWechat, gateway: WechatGateway):
        fake.fail_next("wxa/msg_sec_check", 40001, times=2)

        error = await raised(gateway.msg_sec_check("o-herder-1", "你好", scene=2))

        assert (error.code, error.status) == ("wechat_unavailable", 503)
        assert fake.token_fetches == 2
        assert fake.sec_checks == []

    async def test_a_failed_token_is_discarded_only_if_no_newer_one_replaced_it(
            self, redis: Redis, prefix: str):
        store = RedisTokenStore(redis, f"{prefix}wechat:token:wx1", lock_timeout=10)
        await store.put("newer", 7200)

        await store.discard("older")
        assert (await store.get()).value == "newer"
        await store.discard("newer")
        assert await store.get() is None

    async def test_wechat_failing_to_issue_a_token_is_unavailable(self, fake: FakeWechat, gateway: WechatGateway):
        fake.fail_next("cgi-bin/stable_token", -1)

        error = await raised(gateway.access_token())

        assert (error.code, error.status) == ("wechat_unavailable", 503)


class TestSubscribeMessage:
    async def test_sends_the_message_in_wechats_format(self, fake: FakeWechat, gateway: WechatGateway):
        await gateway.send_subscribe_message(
            "o-herder-1", "tpl-case-status", {"thing1": "营业执照办理", "phrase2": "已受理"},
            page="pages/cases/detail?id=42")

        assert fake.sent_messages == [{
            "touser": "o-herder-1", "template_id": "tpl-case-status", "page": "pages/cases/detail?id=42",
            "data": {"thing1": {"value": "营业执照办理"}, "phrase2": {"value": "已受理"}},
            "miniprogram_state": "formal", "lang": "zh_CN",
        }]

    async def test_a_refused_subscription_is_reported_as_such(self, fake: FakeWechat, gateway: WechatGateway):
        fake.refused_openids.add("o-herder-2")

        error = await raised(gateway.send_subscribe_message("o-herder-2", "tpl", {"thing1": "x"}))

        assert (error.code, error.status) == ("wechat_subscription_refused", 409)
        assert fake.sent_messages == []


class TestWxaCode:
    async def test_returns_the_png_for_the_scene(self, fake: FakeWechat, gateway: WechatGateway):
        image = await gateway.get_wxa_code_unlimited("h=150902&t=A", "pages/queue/take", check_path=False,
                                                     env_version="trial")

        assert image.startswith(b"\x89PNG\r\n\x1a\n")
        assert b"scene\x00h=150902&t=A" in image
        assert fake.wxacode_requests[0]["page"] == "pages/queue/take"
        assert fake.wxacode_requests[0]["check_path"] is False
        assert fake.wxacode_requests[0]["env_version"] == "trial"

    async def test_a_scene_wechat_refuses_is_an_error_not_an_image(self, fake: FakeWechat, gateway: WechatGateway):
        error = await raised(gateway.get_wxa_code_unlimited("x" * 33, "pages/queue/take"))

        assert (error.code, error.status) == ("wechat_unavailable", 503)
        assert fake.wxacode_requests == []


class TestMsgSecCheck:
    async def test_clean_text_passes_and_banned_text_is_risky(self, fake: FakeWechat, gateway: WechatGateway):
        fake.banned_words = ["代开发票"]

        assert await gateway.msg_sec_check("o-herder-1", "请问营业执照怎么办理？", scene=2) == "pass"
        assert await gateway.msg_sec_check("o-herder-1", "低价代开发票", scene=2) == "risky"
        assert [(c["version"], c["openid"], c["scene"]) for c in fake.sec_checks] == [(2, "o-herder-1", 2)] * 2
