"""Realtime hints to connected clients, published after commit on channels such as `hall:150900`,
`ticket:42`, `window:7`, `conversation:9`. A missed message is harmless: clients refetch state,
the database is the truth. MemoryBroker serves one process; RedisBroker spans workers and machines.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from redis.asyncio import Redis

__all__ = ["Broker", "MemoryBroker", "RedisBroker"]

log = logging.getLogger("ehall.realtime")

# A slow subscriber never stalls publishers: its oldest messages are dropped past this many.
_QUEUE_LIMIT = 256


class Broker(Protocol):
    async def publish(self, channel: str, message: dict[str, Any]) -> None: ...

    def subscribe(self, *channels: str) -> AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]: ...

    async def close(self) -> None: ...


def _offer(queue: asyncio.Queue, message: dict[str, Any]) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(message)


class MemoryBroker:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue]] = defaultdict(set)

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        for queue in list(self._subscribers.get(channel, ())):
            _offer(queue, {"channel": channel, **message})

    @asynccontextmanager
    async def subscribe(self, *channels: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        queue: asyncio.Queue = asyncio.Queue(maxsize=_QUEUE_LIMIT)
        for channel in channels:
            self._subscribers[channel].add(queue)
        try:
            yield _drain(queue)
        finally:
            for channel in channels:
                self._subscribers[channel].discard(queue)
                if not self._subscribers[channel]:
                    del self._subscribers[channel]

    async def close(self) -> None:
        self._subscribers.clear()


async def _drain(queue: asyncio.Queue) -> AsyncIterator[dict[str, Any]]:
    while True:
        yield await queue.get()


class RedisBroker:
    def __init__(self, redis: Redis, prefix: str):
        self._redis = redis
        self._prefix = prefix + "rt:"

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        await self._redis.publish(self._prefix + channel, json.dumps(message, ensure_ascii=False))

    @asynccontextmanager
    async def subscribe(self, *channels: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(*(self._prefix + c for c in channels))
        # wait for Redis to confirm every channel, so a publish right after subscribe() is not missed
        confirmed = 0
        while confirmed < len(set(channels)):
            message = await pubsub.get_message(timeout=5)
            if message is None:
                await pubsub.aclose()
                raise TimeoutError("redis did not confirm the subscription")
            confirmed += message["type"] == "subscribe"
        try:
            yield self._listen(pubsub)
        finally:
            await pubsub.unsubscribe()
            await pubsub.aclose()

    async def _listen(self, pubsub) -> AsyncIterator[dict[str, Any]]:
        async for raw in pubsub.listen():
            if raw.get("type") != "message":
                continue
            channel = raw["channel"].decode() if isinstance(raw["channel"], bytes) else raw["channel"]
            yield {"channel": channel.removeprefix(self._prefix), **json.loads(raw["data"])}

    async def close(self) -> None:
        return None
