"""Realtime hints to connected clients, published after commit on channels such as `hall:150900`,
`ticket:42`, `window:7`, `conversation:9`. A missed message is harmless: clients refetch state,
the database is the truth. MemoryBroker serves one process; RedisBroker spans workers and machines.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError, RedisError

__all__ = ["Broker", "Delivery", "MemoryBroker", "RedisBroker", "Taker"]

log = logging.getLogger("ehall.realtime")

# A slow subscriber never stalls publishers: its oldest messages are dropped past this many.
_QUEUE_LIMIT = 256


# A follower that can take a message at once, in the task that delivers it (a display board's socket
# writes it without waking its own task: the queue, the wake-up and the awaited send per socket were
# half of a call's CPU on 2,000 boards, bench/rush.py). Offered each message that finds the follower's
# queue empty, so nothing overtakes what waits there; True: taken, not queued. It must neither block nor
# raise: it runs in the broker's reader (MemoryBroker: in the publisher).
Taker = Callable[[dict[str, Any]], bool]


class Broker(Protocol):
    async def publish(self, channel: str, message: dict[str, Any]) -> None: ...

    def subscribe(self, *channels: str, take: Taker | None = None
                  ) -> AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]: ...

    async def close(self) -> None: ...


class Delivery(dict):
    """A message as the followers of its channel receive it: the published message and its "channel".
    One object for all the followers in a process, so what they derive from it alone can be made once
    and kept in `memo` (kit.sockets keeps there the frames a hall's 2,000 display boards are sent)."""

    __slots__ = ("memo",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.memo: dict[Any, Any] = {}


def _offer(queue: asyncio.Queue, message: dict[str, Any]) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(message)


class _LocalSubscribers:
    """Which queues of this process follow which channels: what a broker delivers a message to."""

    def __init__(self) -> None:
        self._queues: dict[str, set[asyncio.Queue]] = defaultdict(set)
        self._takers: dict[asyncio.Queue, Taker] = {}

    def add(self, queue: asyncio.Queue, channels: tuple[str, ...], take: Taker | None = None) -> list[str]:
        """Follow `channels`; answers those nobody in this process followed before."""
        if take is not None:
            self._takers[queue] = take
        new = [channel for channel in channels if not self._queues.get(channel)]
        for channel in channels:
            self._queues[channel].add(queue)
        return new

    def remove(self, queue: asyncio.Queue, channels: tuple[str, ...]) -> list[str]:
        """Stop following `channels`; answers those nobody in this process follows any more."""
        emptied = []
        self._takers.pop(queue, None)
        for channel in channels:
            followers = self._queues.get(channel)
            if followers is None:
                continue
            followers.discard(queue)
            if not followers:
                del self._queues[channel]
                emptied.append(channel)
        return emptied

    def deliver(self, channel: str, message: dict[str, Any]) -> None:
        """Every follower gets the SAME Delivery, made once here: followers read it and never change it."""
        delivered = Delivery({"channel": channel, **message})
        for queue in list(self._queues.get(channel, ())):
            take = self._takers.get(queue)
            if take is not None and queue.empty() and take(delivered):
                continue
            _offer(queue, delivered)

    def all_queues(self) -> set[asyncio.Queue]:
        return {queue for queues in self._queues.values() for queue in queues}

    def clear(self) -> None:
        self._queues.clear()
        self._takers.clear()


class MemoryBroker:
    def __init__(self) -> None:
        self._local = _LocalSubscribers()

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        self._local.deliver(channel, message)

    @asynccontextmanager
    async def subscribe(self, *channels: str, take: Taker | None = None
                        ) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        queue: asyncio.Queue = asyncio.Queue(maxsize=_QUEUE_LIMIT)
        channels = tuple(dict.fromkeys(channels))
        self._local.add(queue, channels, take)
        try:
            yield _drain(queue)
        finally:
            self._local.remove(queue, channels)

    async def close(self) -> None:
        self._local.clear()


_LOST = object()   # put in every queue when the process's Redis subscription breaks


async def _drain(queue: asyncio.Queue) -> AsyncIterator[dict[str, Any]]:
    while True:
        message = await queue.get()
        if message is _LOST:
            raise RedisConnectionError("the realtime subscription to Redis was lost")
        yield message


class RedisBroker:
    """Publishes on Redis; each process holds ONE Redis subscription, whatever the number of sockets,
    and a reader task hands each message to the queues of the sockets that follow its channel. A
    pubsub connection per socket ran the pool out of connections at a few hundred display boards
    (bench/rush.py) and made Redis send every message once per socket instead of once per process.

    When the subscription breaks (Redis restarted), every follower's feed ends with a connection error
    (the sockets close with "try again" and their clients reconnect); the next subscribe opens a new one."""

    def __init__(self, redis: Redis, prefix: str):
        self._redis = redis
        self._prefix = prefix + "rt:"
        self._local = _LocalSubscribers()
        self._pubsub = None
        self._reader: asyncio.Task | None = None
        self._changing = asyncio.Lock()             # one change of the Redis subscription at a time
        self._confirming: dict[str, asyncio.Future] = {}

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        await self._redis.publish(self._prefix + channel, json.dumps(message, ensure_ascii=False))

    @asynccontextmanager
    async def subscribe(self, *channels: str, take: Taker | None = None
                        ) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        queue: asyncio.Queue = asyncio.Queue(maxsize=_QUEUE_LIMIT)
        channels = tuple(dict.fromkeys(channels))
        async with self._changing:
            await self._connect()
            new = self._local.add(queue, channels, take)
            try:
                if new:
                    await self._subscribe_confirmed(new)
            except BaseException:  # cancelled or failed alike: forget the follower, then let it through
                self._local.remove(queue, channels)
                raise
        try:
            yield _drain(queue)
        finally:
            # under the lock: a follower that arrives meanwhile must not be unsubscribed with this one
            async with self._changing:
                emptied = self._local.remove(queue, channels)
                if emptied and self._pubsub is not None:
                    try:
                        await self._pubsub.unsubscribe(*(self._prefix + c for c in emptied))
                    except (RedisError, OSError):
                        pass  # the subscription is gone with its connection anyway

    async def _connect(self) -> None:
        """The process's subscription, made the first time (or again after it broke). It always follows
        a channel of its own, so that it stays open while no socket follows anything."""
        if self._pubsub is not None:
            return
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(self._prefix + "_process")
            # read its confirmation here: the reader's listen() only runs while something is subscribed
            confirmed = await pubsub.get_message(timeout=5)
            if confirmed is None or confirmed["type"] != "subscribe":
                raise RedisConnectionError("redis did not confirm the subscription")
        except BaseException:  # cancelled or failed alike: close the half-made subscription, re-raise
            try:
                await pubsub.aclose()
            except (RedisError, OSError):
                pass
            raise
        self._pubsub = pubsub
        self._reader = asyncio.create_task(self._read(pubsub), name="realtime-reader")

    async def _subscribe_confirmed(self, channels: list[str]) -> None:
        """Subscribe and wait until Redis has confirmed each channel: a publish right after subscribe()
        returns must not be missed."""
        loop = asyncio.get_running_loop()
        waiting = [self._confirming.setdefault(c, loop.create_future()) for c in channels]
        try:
            await self._pubsub.subscribe(*(self._prefix + c for c in channels))
            await asyncio.wait_for(asyncio.gather(*waiting), timeout=5)
        finally:
            for channel in channels:
                self._confirming.pop(channel, None)

    async def _read(self, pubsub) -> None:
        try:
            async for raw in pubsub.listen():
                channel = raw["channel"].decode() if isinstance(raw["channel"], bytes) else raw["channel"]
                channel = channel.removeprefix(self._prefix)
                if raw["type"] == "subscribe":
                    confirmed = self._confirming.get(channel)
                    if confirmed is not None and not confirmed.done():
                        confirmed.set_result(None)
                elif raw["type"] == "message":
                    self._local.deliver(channel, json.loads(raw["data"]))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("realtime subscription to Redis lost", exc_info=True)
        await self._lost(pubsub)

    async def _lost(self, pubsub) -> None:
        """Every follower's feed ends (clients reconnect and get a fresh snapshot); start afresh."""
        if self._pubsub is not pubsub:
            return
        self._pubsub = None
        for confirmed in self._confirming.values():
            if not confirmed.done():
                confirmed.set_exception(RedisConnectionError("the realtime subscription to Redis was lost"))
        for queue in self._local.all_queues():
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(_LOST)
        self._local.clear()
        try:
            await pubsub.aclose()
        except (RedisError, OSError):
            pass

    async def close(self) -> None:
        reader, pubsub = self._reader, self._pubsub
        self._pubsub = self._reader = None
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        if pubsub is not None:
            try:
                await pubsub.aclose()
            except (RedisError, OSError):
                pass
