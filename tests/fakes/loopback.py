"""A Sanic app of a fake provider served on a loopback port from a thread of its own.

Its own event loop keeps it answering while a test blocks (joining processes, waiting on a barrier) and
while a client library's synchronous calls run in threads. Subclasses build `self._app` and keep their
state behind `self._lock` (the test's thread reads it, the server's thread writes it)."""
from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Self

from sanic import Sanic

__all__ = ["LoopbackFake", "RecordingFake", "fake_app"]


def fake_app(prefix: str) -> Sanic:
    """A Sanic app for a fake: no sanic-ext, no banner, and no TouchUp (which rewrites methods for the
    primary app of a process; a fake must leave the real app alone)."""
    app = Sanic(f"{prefix}_{uuid.uuid4().hex[:12]}")
    app.config.AUTO_EXTEND = False
    app.config.MOTD = False
    app.config.TOUCHUP = False
    return app


class LoopbackFake:
    name = "fake"

    def __init__(self, app: Sanic):
        self._app = app
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._port = 0

    @property
    def address(self) -> str:
        """host:port, as the SDKs take their endpoint."""
        if not self._port:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"127.0.0.1:{self._port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.address}/"

    def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(sock, ready), name=self.name, daemon=True)
        self._thread.start()
        if not ready.wait(10) or not self._thread.is_alive():
            raise RuntimeError(f"{type(self).__name__} did not start (see the {self.name} thread's traceback)")
        return self

    def stop(self) -> None:
        if self._loop and self._stopping:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread:
            self._thread.join(10)
        Sanic.unregister_app(self._app)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.to_thread(self.stop)

    def _serve(self, sock: socket.socket, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop

        async def run() -> None:
            self._stopping = asyncio.Event()
            try:
                server = await self._app.create_server(sock=sock, access_log=False, return_asyncio_server=True)
                await server.startup()  # create_server is already listening; this finalizes the routes
            finally:
                ready.set()
            await self._stopping.wait()
            server.close()
            await server.wait_closed()
            # kept-alive client connections: end them before the loop closes
            pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        try:
            loop.run_until_complete(run())
        finally:
            loop.close()
            sock.close()


class RecordingFake(LoopbackFake):
    """A provider that keeps what it accepted (`sent`) and what it refused (`refused`, each with its
    code), and refuses the next calls with a code a test names (`fail_next`)."""

    def __init__(self, app: Sanic):
        self.sent: list[dict[str, Any]] = []       # accepted messages, as the provider would deliver them
        self.refused: list[dict[str, Any]] = []    # calls answered with an error code
        self._fail_next: list[str] = []
        # the provider's own clock, which stamps what it accepted; a test whose business time is frozen
        # sets it to kit.clock.now, so that "sent since" lookups speak of the same time
        self.now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
        # how long an answer takes to come back after the provider took the call (across the internet)
        self.answer_delay_seconds = 0.0
        super().__init__(app)

    async def _answer_delay(self) -> None:
        if self.answer_delay_seconds:
            await asyncio.sleep(self.answer_delay_seconds)

    def fail_next(self, code: str, times: int = 1, *, to: str | None = None) -> None:
        """Refuse the next `times` messages with the provider's `code` (a provider that answers each number
        of a send on its own counts each number as a message); with `to`, only messages to that number
        (a test sharing the fake with other tests' messages refuses its own)."""
        with self._lock:
            self._fail_next.extend([(code, to)] * times)

    def _forced_code(self, number: str = "") -> str | None:
        """The code a test asked for the message at hand, if any; the caller holds `_lock`."""
        for index, (code, to) in enumerate(self._fail_next):
            if to is None or number.endswith(to):
                del self._fail_next[index]
                return code
        return None
