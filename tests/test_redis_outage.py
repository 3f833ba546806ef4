"""With Redis gone, the endpoints that count or check in Redis answer 503 with Retry-After, never a
500, and a change already committed is not turned into an error by a realtime message that cannot leave."""
import uuid

import pytest
from redis.asyncio import Redis

from backend.kit.models import OutboxEvent
from backend.kit.realtime import RedisBroker
from backend.kit.uow import unit_of_work

DEAD_REDIS = "redis://127.0.0.1:1/0"


@pytest.mark.parametrize("path, body", [
    ("/api/v1/auth/sms-code", {"phone": "13900001111"}),
    ("/api/v1/auth/login", {"phone": "13900001111", "code": "123456"}),
    ("/api/v1/staff/login", {"username": "somebody", "password": "whatever"}),
])
async def test_limits_that_cannot_be_counted_answer_503_with_retry_after(app_with, path, body):
    running = await app_with(redis_url=DEAD_REDIS)
    async with running.client() as http:
        response = await http.post(path, json=body)
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "service_unavailable"
    assert int(response.headers["retry-after"]) > 0


async def test_a_token_cannot_be_checked_against_revoked_sessions_so_503(app_with, client, capsys):
    from tests.factories import bearer, login_citizen

    tokens = await login_citizen(client, capsys)
    running = await app_with(redis_url=DEAD_REDIS)
    async with running.client() as http:
        response = await http.get("/api/v1/me", headers=bearer(tokens))
    assert response.status_code == 503


async def test_a_committed_change_stands_when_its_realtime_message_cannot_leave(server):
    dead = Redis.from_url(DEAD_REDIS)
    rt = server.rt
    original = rt.broker
    aggregate = f"test:{uuid.uuid4().hex}"
    rt.broker = RedisBroker(dead, "ehall-test-dead:")   # a real client of a Redis that is not there
    try:
        async with unit_of_work(rt) as uow:
            await uow.record("test.happened", aggregate)
            uow.publish(aggregate, {"event": "test.happened"})
    finally:
        rt.broker = original
        await dead.aclose()
    assert await OutboxEvent.filter(aggregate=aggregate).exists()
