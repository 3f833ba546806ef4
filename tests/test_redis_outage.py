"""With Redis gone, the endpoints that count in Redis answer 503 with Retry-After, never a 500; tokens
are checked against the database instead, so a hall keeps issuing and calling tickets; and a change
already committed is not turned into an error by a realtime message that cannot leave."""
import json
import uuid

import pytest
from redis.asyncio import Redis

from backend.kit import clock
from backend.kit.auth import Grant
from backend.kit.models import OutboxEvent
from backend.queueing.models import Ticket
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


async def test_tokens_are_checked_against_the_database_while_redis_is_unreachable(app_with, client, capsys):
    from tests.factories import bearer, login_citizen

    tokens = await login_citizen(client, capsys)
    ended = await login_citizen(client, capsys)
    assert (await client.post("/api/v1/auth/logout", json={"refresh_token": ended["refresh_token"]})).status_code \
        in (200, 204)
    running = await app_with(redis_url=DEAD_REDIS)
    capsys.readouterr()
    async with running.client() as http:
        me = await http.get("/api/v1/me", headers=bearer(tokens))
        refused = await http.get("/api/v1/me", headers=bearer(ended))
    assert me.status_code == 200, me.text
    # the database is the truth: a session ended before the outage stays ended during it
    assert refused.status_code == 401 and refused.json()["code"] == "session_ended"
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if '"ehall.sessions"' in line]
    assert [entry["level"] for entry in logged] == ["warning"] and "database" in logged[0]["msg"]


@pytest.fixture
def workday_morning():
    from tests.queueing.conftest import WORKDAY_MORNING

    clock.freeze(WORKDAY_MORNING)
    try:
        yield WORKDAY_MORNING
    finally:
        clock.unfreeze()


async def test_a_hall_takes_tickets_and_calls_them_while_redis_is_unreachable(app_with, client, capsys,
                                                                             workday_morning):
    from tests.factories import bearer, login_citizen, staff_tokens
    from tests.rows import make_category, make_hall, make_window

    hall = await make_hall(parent="150921", level="township")
    await make_category(hall.code, prefix="A")
    window = await make_window(hall.code, categories=["A"], status="open")
    kiosk = bearer(await staff_tokens(client, Grant("kiosk", hall=hall.code)))
    clerk = bearer(await staff_tokens(client, Grant("window_clerk", hall=hall.code)))
    citizen = bearer(await login_citizen(client, capsys))
    running = await app_with(redis_url=DEAD_REDIS)
    async with running.client() as http:
        printed = await http.post("/api/v1/kiosk/tickets", headers=kiosk, json={"hall": hall.code, "category": "A"})
        remote = await http.post("/api/v1/tickets", headers=citizen, json={"hall": hall.code, "category": "A"})
        called = await http.post(f"/api/v1/staff/halls/{hall.code}/windows/{window.number}/call-next",
                                 headers=clerk)
        mine = await http.get(f"/api/v1/tickets/{remote.json()['id']}", headers=citizen)
    assert printed.status_code == 201, printed.text
    assert remote.status_code == 201, remote.text
    assert called.status_code == 200 and called.json()["id"] == printed.json()["id"], called.text
    assert mine.status_code == 200 and mine.json()["people_ahead"] == 0
    assert (await Ticket.get(id=printed.json()["id"])).status == "called"


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
