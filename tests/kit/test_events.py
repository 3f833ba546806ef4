"""Domain events are committed with the change they describe, or not at all."""
import uuid

import pytest
from tortoise.transactions import in_transaction

from backend.kit import events
from backend.kit.models import OutboxEvent


class Boom(Exception):
    pass


async def test_an_event_recorded_in_a_rolled_back_transaction_is_gone(database):
    aggregate = f"test:{uuid.uuid4().hex}"
    with pytest.raises(Boom):
        async with in_transaction() as tx:
            await events.record(tx, "test.happened", aggregate, n=1)
            raise Boom
    assert not await OutboxEvent.filter(aggregate=aggregate).exists()


async def test_a_committed_event_waits_in_the_outbox_for_notify(database):
    aggregate = f"test:{uuid.uuid4().hex}"
    async with in_transaction() as tx:
        await events.record(tx, "test.happened", aggregate, n=2)
    event = await OutboxEvent.get(aggregate=aggregate)
    assert event.kind == "test.happened" and event.payload == {"n": 2}
    assert event.processed_at is None and event.attempts == 0


async def test_a_login_records_the_new_citizen_without_personal_data(client, capsys):
    from tests.factories import bearer, login_citizen

    tokens = await login_citizen(client, capsys)
    citizen_id = (await client.get("/api/v1/me", headers=bearer(tokens))).json()["id"]
    event = await OutboxEvent.get(kind="citizen.registered", aggregate=f"citizen:{citizen_id}")
    assert event.payload == {"channel": "sms"}
    assert tokens["phone"] not in str(event.payload)
