"""Websockets, one way for every feed: authenticate, subscribe, send a snapshot, then the updates.

A socket that needs a user authenticates on the upgrade request with `Authorization: Bearer <token>`
(the app and wx.connectSocket can set it); a browser page, which cannot set headers on a websocket,
sends `{"type": "auth", "token": "<access token>"}` as its first message within a short time. Either
way the token passes the same check as an HTTP request (signature, expiry on kit.clock, revoked
session).

A feed subscribes to its channels *before* it reads its snapshot, so nothing committed between the
two is lost; each broker message becomes zero or more messages to the client. A client that sends
`{"type": "refresh"}` (or reconnects) gets a fresh snapshot: realtime is a hint, the DB is the truth.
A feed that sends every client the same (a hall's display boards, 2,000 of them in issue 7) declares
`broadcast` instead of `update`: a process serialises each message once, and writes the frames to each
of its sockets as the broker delivers the message (_WriteAtOnce) unless something is being sent to it.
Failures are told to the client as `{"type": "error", "code", "detail"}` and the socket is closed with
a 44xx code (4401 unauthenticated, 4403 out of scope, 4404 not found) or 1011 (try again later).
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from redis.exceptions import RedisError
from sanic import Request
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from backend.kit.auth import Principal, bearer_token, principal_from_token
from backend.kit.errors import AppError
from backend.kit.http import language_of

__all__ = ["Feed", "authenticate_socket", "serve_feed", "close_with_error", "CLOSE_CODES"]

log = logging.getLogger("ehall.sockets")

# websocket close codes for the statuses a request would have answered (4000-4999: the application's)
CLOSE_CODES = {401: 4401, 403: 4403, 404: 4404}
_TRY_AGAIN = 1011

Message = dict[str, Any]


@dataclass
class Feed:
    channels: tuple[str, ...]
    snapshot: Callable[[], Awaitable[BaseModel]]          # the whole state, read from the database
    # what one broker message becomes for this client (nothing: return [])
    update: Callable[[Message], Awaitable[list[Message]]] | None = None
    # what the client may send besides {"type": "refresh"} (typing, read up to); None: it is ignored.
    # A message it cannot take raises AppError, which is told to the client without closing the socket
    receive: Callable[[Message], Awaitable[None]] | None = None
    # instead of `update`, for a feed that sends every client the same (a hall's display boards): what
    # one broker message becomes, from the message alone. Its frames are then made once per message and
    # process, for every socket whose feed has this same function (a module-level one), not once a socket
    broadcast: Callable[[Message], list[Message]] | None = None

    def __post_init__(self) -> None:
        if (self.update is None) == (self.broadcast is None):
            raise TypeError("a Feed has either update or broadcast")


def _dump(kind: str, body: BaseModel | Message) -> str:
    payload = body.model_dump(mode="json") if isinstance(body, BaseModel) else dict(body)
    payload.pop("channel", None)
    return json.dumps({"type": kind, **payload} if "type" not in payload else payload, ensure_ascii=False)


async def close_with_error(request: Request, ws, error: AppError) -> None:
    """Tell the client why (in its language), then close with the matching code."""
    messages = request.app.ctx.rt.messages
    language = language_of(request)
    try:
        await ws.send(json.dumps({"type": "error", "code": error.code, "status": error.status,
                                  "detail": messages.render(error.code, language, **error.params)},
                                 ensure_ascii=False))
        await ws.close(CLOSE_CODES.get(error.status, _TRY_AGAIN), error.code)
    except ConnectionClosed:
        pass


async def authenticate_socket(request: Request, ws) -> Principal:
    """The socket's principal: from the upgrade request's Bearer token, or else from a first message
    {"type": "auth", "token": ...} sent within settings.queueing.socket_auth_seconds. AppError 401 if
    neither comes, or the token is not valid now."""
    rt = request.app.ctx.rt
    token = bearer_token(request)
    if token is None:
        try:
            raw = await ws.recv(timeout=rt.settings.queueing.socket_auth_seconds)
        except ConnectionClosed:
            raw = None
        try:
            message = json.loads(raw) if raw is not None else None
        except (ValueError, UnicodeDecodeError):
            message = None
        if not (isinstance(message, dict) and message.get("type") == "auth"
                and isinstance(message.get("token"), str) and message["token"]):
            raise AppError("unauthenticated", 401)
        token = message["token"]
    principal = await principal_from_token(rt.settings, rt.revocations, token)
    request.ctx.principal = principal
    return principal


async def _from_client(request: Request, ws, resend: Callable[[], Awaitable[None]], feed: Feed) -> None:
    """Read what the client sends until it goes away; {"type": "refresh"} asks for a fresh snapshot,
    anything else goes to the feed's `receive`."""
    async for raw in ws:
        try:
            message = json.loads(raw)
        except (ValueError, UnicodeDecodeError, TypeError, RecursionError):
            continue
        if not isinstance(message, dict):
            continue
        if message.get("type") == "refresh":
            await resend()
        elif feed.receive is not None:
            try:
                await feed.receive(message)
            except AppError as error:
                language = language_of(request)
                await ws.send(json.dumps({"type": "error", "code": error.code, "status": error.status,
                                          "detail": request.app.ctx.rt.messages.render(error.code, language,
                                                                                       **error.params)},
                                         ensure_ascii=False))


def _frames(outs: list[Message]) -> list[str]:
    return [_dump(str(out.get("event", "update")), out) for out in outs]


@dataclass(frozen=True)
class _Rendered:
    texts: list[str]
    wire: bytes     # the same texts as websocket frames from a server: unmasked, no extension


def _render(broadcast: Callable[[Message], list[Message]], message: Message) -> _Rendered:
    texts = _frames(broadcast(message))
    return _Rendered(texts, b"".join(Frame(Opcode.TEXT, text.encode()).serialize(mask=False) for text in texts))


def _broadcast_frames(broadcast: Callable[[Message], list[Message]], message: Message) -> _Rendered:
    """A broadcast feed's message as sent, made by the first of the process's sockets to take it and
    kept on the delivered message for the others (serialising per socket was about a tenth of the
    server's CPU of a call on 2,000 display boards, bench/rush.py)."""
    memo = getattr(message, "memo", None)     # a Delivery (kit.realtime), or a broker that sends plain dicts
    if memo is None:
        return _render(broadcast, message)
    rendered = memo.get(broadcast)
    if rendered is None:
        rendered = memo[broadcast] = _render(broadcast, message)
    return rendered


# past this many bytes waiting in a socket's transport (a slow client), its messages wait in its queue
# for its task, which waits for the transport to drain, as ws.send does
_WRITE_AT_ONCE_LIMIT = 64 * 1024


class _WriteAtOnce:
    """The broker's taker (kit.realtime) for a socket of a broadcast feed: writes a message's frames to
    the transport in the broker's task, without waking the socket's task, whenever nothing else is being
    sent to the socket. Otherwise (the first snapshot not sent yet, a send under way: a refresh, an error,
    a queued update; a full buffer; closing) the message goes to the socket's queue as before, so every
    message still follows the snapshot and keeps its order.

    It writes what ws.send would, on Sanic's connection (its ws_proto, io_proto and conn_mutex): a
    server's text frame is the same bytes for every socket without extensions, which Sanic does not
    negotiate (checked, or the queue is used)."""

    def __init__(self, ws, broadcast: Callable[[Message], list[Message]]):
        self.ws = ws
        self.broadcast = broadcast
        self.live = False       # set once the first snapshot is sent

    def __call__(self, message: Message) -> bool:
        ws = self.ws
        if not self.live or ws.conn_mutex.locked() or ws.ws_proto.state is not State.OPEN \
                or ws.ws_proto.extensions:
            return False
        transport = ws.io_proto.transport if ws.io_proto is not None else None
        if transport is None or transport.is_closing() or transport.get_write_buffer_size() > _WRITE_AT_ONCE_LIMIT:
            return False
        rendered = _broadcast_frames(self.broadcast, message)
        if rendered.wire:
            transport.write(rendered.wire)
        return True


async def _to_client(ws, messages: AsyncIterator[Message], feed: Feed) -> None:
    async for message in messages:
        if feed.broadcast is not None:
            texts = _broadcast_frames(feed.broadcast, message).texts
        else:
            texts = _frames(await feed.update(message))
        for text in texts:
            await ws.send(text)


async def serve_feed(request: Request, ws, feed: Feed) -> None:
    """Run `feed` on `ws` until the client leaves (or the broker fails: the client reconnects and gets
    a fresh snapshot)."""
    broker = request.app.ctx.rt.broker
    write_at_once = _WriteAtOnce(ws, feed.broadcast) if feed.broadcast is not None else None
    try:
        async with broker.subscribe(*feed.channels, take=write_at_once) as messages:
            async def send_snapshot() -> None:
                await ws.send(_dump("snapshot", await feed.snapshot()))

            await send_snapshot()
            if write_at_once is not None:
                write_at_once.live = True
            tasks = {asyncio.create_task(_from_client(request, ws, send_snapshot, feed)),
                     asyncio.create_task(_to_client(ws, messages, feed))}
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
    except ConnectionClosed:
        return
    except AppError as error:
        await close_with_error(request, ws, error)
    except (RedisError, OSError, TimeoutError):
        # the broker went away: the client reconnects and gets a fresh snapshot from the database
        log.warning("socket feed stopped: broker unavailable", exc_info=True,
                    extra={"ehall": {"channels": list(feed.channels)}})
        await close_with_error(request, ws, AppError("service_unavailable", 503))
