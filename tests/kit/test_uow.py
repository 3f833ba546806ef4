"""One unit of work per change: events are committed with the change they describe or not at all,
and realtime messages leave only after the commit."""
import asyncio
import uuid
from contextlib import asynccontextmanager

import pytest

from backend.kit.models import OutboxEvent
from backend.kit.uow import unit_of_work


class Boom(Exception):
    pass


@asynccontextmanager
async def listening(broker, channel: str):
    """Collect what `channel` hears into a list, from a task of its own (a timed-out read would close
    the subscription's iterator)."""
    heard: list[dict] = []
    async with broker.subscribe(channel) as messages:
        async def collect():
            async for message in messages:
                heard.append(message)
        task = asyncio.create_task(collect())
        try:
            yield heard
        finally:
            task.cancel()


async def heard_within(heard: list, seconds: float) -> list:
    deadline = asyncio.get_running_loop().time() + seconds
    while not heard and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    return heard


class TestUnitOfWork:
    async def test_a_rollback_records_nothing_and_sends_nothing(self, server):
        rt = server.rt
        aggregate = f"test:{uuid.uuid4().hex}"
        async with listening(rt.broker, aggregate) as heard:
            with pytest.raises(Boom):
                async with unit_of_work(rt) as uow:
                    await uow.record("test.happened", aggregate, n=1)
                    uow.publish(aggregate, {"event": "test.happened"})
                    raise Boom
            assert await heard_within(heard, 0.3) == []
        assert not await OutboxEvent.filter(aggregate=aggregate).exists()

    async def test_a_commit_records_the_event_then_sends_the_message(self, server):
        rt = server.rt
        aggregate = f"test:{uuid.uuid4().hex}"
        async with listening(rt.broker, aggregate) as heard:
            async with unit_of_work(rt) as uow:
                await uow.record("test.happened", aggregate, n=2)
                uow.publish(aggregate, {"event": "test.happened"})
                # nothing has left while the transaction is open
                assert await heard_within(heard, 0.2) == []
            assert await heard_within(heard, 5) == [{"channel": aggregate, "event": "test.happened"}]
        event = await OutboxEvent.get(aggregate=aggregate)
        assert event.kind == "test.happened" and event.payload == {"n": 2}
        assert event.processed_at is None and event.attempts == 0

    async def test_a_nested_call_joins_the_outer_transaction(self, server):
        rt = server.rt
        aggregate = f"test:{uuid.uuid4().hex}"
        async with listening(rt.broker, aggregate) as heard:
            with pytest.raises(Boom):
                async with unit_of_work(rt) as outer:
                    async with unit_of_work(rt, outer) as inner:
                        assert inner is outer
                        await inner.record("test.inner", aggregate)
                        inner.publish(aggregate, {"event": "test.inner"})
                    # the inner block has ended, yet nothing is committed or sent until the outer ends
                    assert await heard_within(heard, 0.2) == []
                    raise Boom
            assert await heard_within(heard, 0.3) == []
        assert not await OutboxEvent.filter(aggregate=aggregate).exists()


async def test_a_login_records_the_new_citizen_without_personal_data(client, capsys):
    from tests.factories import bearer, login_citizen

    tokens = await login_citizen(client, capsys)
    citizen_id = (await client.get("/api/v1/me", headers=bearer(tokens))).json()["id"]
    event = await OutboxEvent.get(kind="citizen.registered", aggregate=f"citizen:{citizen_id}")
    assert event.payload == {"channel": "sms"}
    assert tokens["phone"] not in str(event.payload)
