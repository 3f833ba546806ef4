import asyncio
import uuid
from contextlib import AsyncExitStack

import pytest
from redis.asyncio import Redis

from backend.kit.realtime import MemoryBroker, RedisBroker
from tests.conftest import REDIS_URL


@pytest.fixture(params=["memory", "redis"])
async def brokers(request):
    """Two brokers as two workers would have them: the same object in memory, two clients on Redis."""
    if request.param == "memory":
        broker = MemoryBroker()
        yield broker, broker
        return
    prefix = f"ehall-test-rt-{uuid.uuid4().hex}:"
    a, b = Redis.from_url(REDIS_URL), Redis.from_url(REDIS_URL)
    publisher, subscriber = RedisBroker(a, prefix), RedisBroker(b, prefix)
    try:
        yield publisher, subscriber
    finally:
        await publisher.close()
        await subscriber.close()
        await a.aclose()
        await b.aclose()


async def test_a_subscriber_receives_what_is_published_on_its_channel_only(brokers):
    publisher, subscriber = brokers
    async with subscriber.subscribe("hall:150921") as messages:
        await publisher.publish("hall:150902", {"event": "elsewhere"})
        await publisher.publish("hall:150921", {"event": "window.status_changed", "window": "01"})
        received = await asyncio.wait_for(anext(messages), timeout=5)
    assert received == {"channel": "hall:150921", "event": "window.status_changed", "window": "01"}


async def test_memory_broker_drops_the_oldest_for_a_subscriber_that_does_not_read():
    broker = MemoryBroker()
    async with broker.subscribe("ticket:1") as messages:
        for n in range(300):
            await broker.publish("ticket:1", {"n": n})
        first = await asyncio.wait_for(anext(messages), timeout=1)
    assert first["n"] == 300 - 256


async def test_a_process_holds_one_redis_subscription_whatever_the_number_of_followers():
    """300 display boards on one worker: Redis sees one subscriber of the hall's channel, and each
    board still hears every message; once the last leaves, the channel is given up."""
    prefix = f"ehall-test-rt-{uuid.uuid4().hex}:"
    redis = Redis.from_url(REDIS_URL)
    broker = RedisBroker(redis, prefix)
    channel = f"{prefix}rt:hall:150900"
    try:
        async with AsyncExitStack() as stack:
            feeds = await asyncio.gather(*(stack.enter_async_context(broker.subscribe("hall:150900"))
                                           for _ in range(300)))
            assert (await redis.pubsub_numsub(channel))[0][1] == 1
            await broker.publish("hall:150900", {"event": "ticket.called", "number": "A001"})
            heard = await asyncio.wait_for(asyncio.gather(*(anext(feed) for feed in feeds)), timeout=5)
            assert all(message["number"] == "A001" for message in heard)
        assert (await redis.pubsub_numsub(channel))[0][1] == 0
    finally:
        await broker.close()
        await redis.aclose()


async def test_a_taker_takes_a_message_only_when_nothing_waits_before_it_in_its_queue(brokers):
    """A follower with a taker (a display board's socket writing at once) is offered each message that
    finds its queue empty; what it refuses is queued, and what comes after it is queued behind it until
    the follower has read it: the order it hears things in is the order they were published."""
    publisher, subscriber = brokers
    taken: list[int] = []
    refusing = {1}

    def take(message: dict) -> bool:
        if message["n"] in refusing:
            return False
        taken.append(message["n"])
        return True

    async with subscriber.subscribe("hall:150921", take=take) as messages:
        for n in range(4):
            await publisher.publish("hall:150921", {"n": n})
        queued = [(await asyncio.wait_for(anext(messages), timeout=5))["n"] for _ in range(3)]
        await publisher.publish("hall:150921", {"n": 4})      # the queue is empty again
        for _ in range(50):
            if 4 in taken:
                break
            await asyncio.sleep(0.02)
    assert taken == [0, 4] and queued == [1, 2, 3]


async def test_every_follower_in_a_process_is_handed_the_same_message(brokers):
    """One object per message and process, whatever the number of followers: what they make of it
    alone (a board's frames) is made once, on the message's memo."""
    publisher, subscriber = brokers
    async with subscriber.subscribe("hall:150921") as first, subscriber.subscribe("hall:150921") as second:
        await publisher.publish("hall:150921", {"event": "queue.changed"})
        a = await asyncio.wait_for(anext(first), timeout=5)
        b = await asyncio.wait_for(anext(second), timeout=5)
    assert a is b and a.memo == {}
