"""Presence: a person is online while one of their sockets is held, in any process (Redis: real Redis on
both runs, as tests/kit/test_realtime.py uses it), and no longer once the last is released or, for a
process that died holding it, once its heartbeat lapses."""
import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from backend.kit.presence import MemoryPresence, RedisPresence
from tests.conftest import REDIS_URL, delete_redis_prefix


@pytest.fixture
async def redis_presences():
    """Two RedisPresence on one prefix: two workers (or machines) of one deployment."""
    prefix = f"ehall-test-presence-{uuid.uuid4().hex[:8]}:"
    clients = [Redis.from_url(REDIS_URL), Redis.from_url(REDIS_URL)]
    yield [RedisPresence(client, prefix, ttl=1, heartbeat=0.3) for client in clients]
    for client in clients:
        await client.aclose()
    await delete_redis_prefix(prefix)


class TestRedisPresence:
    async def test_a_person_is_online_while_any_worker_holds_one_of_their_sockets(self, redis_presences):
        first, second = redis_presences
        async with first.hold("staff", 7):
            async with second.hold("staff", 7), second.hold("staff", 8):
                assert await first.online("staff") == {7, 8} and await first.is_online("staff", 8)
            assert await second.online("staff") == {7} and not await first.is_online("staff", 8)
            await asyncio.sleep(1.5)   # heartbeats keep a held socket alive past the ttl
            assert await second.is_online("staff", 7)
        assert await first.online("staff") == set() and not await second.is_online("staff", 7)

    async def test_kinds_are_apart(self, redis_presences):
        first, _ = redis_presences
        async with first.hold("citizen", 7):
            assert await first.online("staff") == set() and await first.is_online("citizen", 7)

    async def test_a_socket_of_a_worker_that_died_lapses_after_the_ttl(self, redis_presences):
        first, second = redis_presences
        await first._mark("staff", 9, "socket-of-a-dead-worker")   # held, never renewed nor released
        assert await second.online("staff") == {9}
        await asyncio.sleep(1.3)
        assert await second.online("staff") == set() and not await second.is_online("staff", 9)


class TestMemoryPresence:
    async def test_online_until_the_last_socket_closes(self):
        presence = MemoryPresence()
        async with presence.hold("staff", 1):
            async with presence.hold("staff", 1):
                assert await presence.online("staff") == {1}
            assert await presence.is_online("staff", 1)
        assert not await presence.is_online("staff", 1) and await presence.online("staff") == set()
