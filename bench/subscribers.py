"""Websocket subscribers of a hall's display board for the call-next fan-out: one process holds COUNT
sockets, prints READY once every socket has its snapshot, then notes when each socket hears each
`ticket.called` (CLOCK_MONOTONIC, shared by every process of the machine) and prints them as JSON
when every socket has heard CALLS calls, or after TIMEOUT seconds.

    python bench/subscribers.py WS_URL COUNT CALLS TIMEOUT"""
from __future__ import annotations

import asyncio
import json
import sys
import time

import uvloop
from websockets.asyncio.client import connect


async def _subscriber(url: str, ready: asyncio.Queue, heard: dict[str, list[float]], calls: int) -> None:
    async with connect(url, open_timeout=60, ping_interval=None, max_queue=None) as socket:
        while json.loads(await socket.recv())["type"] != "snapshot":
            pass
        ready.put_nowait(True)
        count = 0
        while count < calls:
            message = json.loads(await socket.recv())
            if message["type"] == "ticket.called":
                heard.setdefault(message["number"], []).append(time.monotonic())
                count += 1


async def main(url: str, count: int, calls: int, timeout: float) -> None:
    ready: asyncio.Queue = asyncio.Queue()
    heard: dict[str, list[float]] = {}
    tasks = []
    for _ in range(count):   # a few at a time: the server's accept queue is not the thing measured
        tasks.append(asyncio.create_task(_subscriber(url, ready, heard, calls)))
        if len(tasks) % 50 == 0:
            await asyncio.sleep(0.05)
    for _ in range(count):
        await asyncio.wait_for(ready.get(), timeout=120)
    print("READY", flush=True)
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    failed = sum(1 for task in done if task.exception() is not None)
    print(json.dumps({"heard": heard, "unfinished": len(pending), "failed": failed}), flush=True)


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
