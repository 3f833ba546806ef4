"""Websocket subscribers of a hall's display board for the call-next fan-out: one process opens COUNT
sockets, prints `READY <connected> <failed>` once every socket has its snapshot or has failed to get
one (OPENING at a time), then notes when each socket hears each `ticket.called` (CLOCK_MONOTONIC, shared by every process
of the machine) and prints them as JSON when every socket has heard CALLS calls, or after TIMEOUT
seconds. A socket that fails is counted, with the first few reasons, never fatal to the others.

    python bench/subscribers.py WS_URL COUNT CALLS TIMEOUT"""
from __future__ import annotations

import asyncio
import json
import sys
import time

import uvloop
from websockets.asyncio.client import connect

OPEN_TIMEOUT = 60
OPENING = 25   # sockets of one process in their handshake and snapshot at a time


async def _subscriber(url: str, ready: asyncio.Queue, heard: dict[str, list[float]], calls: int,
                      opening: asyncio.Semaphore) -> None:
    signalled = False
    try:
        await opening.acquire()
        try:
            socket = await connect(url, open_timeout=OPEN_TIMEOUT, ping_interval=None, max_queue=None)
            while json.loads(await socket.recv())["type"] != "snapshot":
                pass
        finally:
            opening.release()
        ready.put_nowait(None)
        signalled = True
        async with socket:
            count = 0
            while count < calls:
                message = json.loads(await socket.recv())
                if message["type"] == "ticket.called":
                    heard.setdefault(message["number"], []).append(time.monotonic())
                    count += 1
    except Exception as error:
        if not signalled:
            ready.put_nowait(f"{type(error).__name__}: {error}"[:200])
        raise


async def main(url: str, count: int, calls: int, timeout: float) -> None:
    ready: asyncio.Queue = asyncio.Queue()
    heard: dict[str, list[float]] = {}
    # a few at a time: the server's accept queue is not the thing measured (with 4 processes opening
    # 50 every 50 ms, dropped SYNs retried past the 60 s handshake timeout on a busy machine)
    opening = asyncio.Semaphore(OPENING)
    tasks = [asyncio.create_task(_subscriber(url, ready, heard, calls, opening)) for _ in range(count)]
    reasons = [await ready.get() for _ in range(count)]
    failures = [reason for reason in reasons if reason is not None]
    print(f"READY {count - len(failures)} {len(failures)}", flush=True)
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    failed = sum(1 for task in done if task.exception() is not None)
    print(json.dumps({"heard": heard, "unfinished": len(pending), "failed": failed,
                      "failed_to_open": len(failures), "reasons": sorted(set(failures))[:5]}), flush=True)


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
