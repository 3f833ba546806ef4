"""Redis going away and coming back while a hall's display board is connected (a server of the test's
own, on a Redis of the test's own that the test stops and starts again). The database is the truth:
the board is told to reconnect when its feed breaks, and once Redis is back it gets a snapshot that
includes what happened meanwhile and the live updates resume."""
import asyncio
import socket
import uuid

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.queueing.conftest import kiosk_ticket
from tests.sockets import next_message, ws_url


class PrivateRedis:
    """A redis-server process on a free loopback port, without persistence: stopped, it forgets."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        probe = Redis.from_url(self.url)
        try:
            async with asyncio.timeout(10):
                while True:
                    try:
                        if await probe.ping():
                            return
                    except (OSError, RedisConnectionError):  # not listening yet
                        await asyncio.sleep(0.05)
        finally:
            await probe.aclose()

    async def stop(self) -> None:
        if self._process and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()


@pytest.fixture
async def private_redis():
    redis = PrivateRedis()
    await redis.start()
    try:
        yield redis
    finally:
        await redis.stop()


async def test_the_board_is_told_to_reconnect_and_resumes_once_redis_is_back(app_with, private_redis, queue_hall,
                                                                          kiosk, clerk):
    running = await app_with(redis_url=private_redis.url, redis_prefix=f"ehall-test-return-{uuid.uuid4().hex[:8]}:")
    window = await queue_hall.window("A")
    board_path = ws_url(running, f"/ws/halls/{queue_hall.code}/display")
    async with running.client() as http:
        async with connect(board_path) as board:
            assert (await next_message(board, "snapshot"))["waiting"] == {"A": 0, "B": 0}
            await kiosk_ticket(http, kiosk, queue_hall.code, "A")
            assert (await next_message(board, "queue.changed"))["waiting"] == {"A": 1, "B": 0}

            await private_redis.stop()
            error = await next_message(board, "error")
            assert error["code"] == "service_unavailable"
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(board.recv(), 5)
            assert board.close_code == 1011  # try again

        # nothing is lost: the ticket taken before is in the database, whatever Redis forgot
        await private_redis.start()
        async with connect(board_path) as board:
            snapshot = await next_message(board, "snapshot")
            assert snapshot["waiting"] == {"A": 1, "B": 0}
            called = await http.post(queue_hall.window_path(window, "call-next"), headers=clerk)
            assert called.status_code == 200, called.text
            call = await next_message(board, "ticket.called")
            assert call["number"] == "A001" and call["window"] == window.number
