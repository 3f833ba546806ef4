"""One client process of bench/consult.py: staff or citizens, over websockets and HTTP, as the apps are.

    python bench/consult_clients.py staff    BASE TOKENS_FILE FIRST COUNT REPLY_SHARE
    python bench/consult_clients.py citizens BASE TOKENS_FILE FIRST COUNT INTERVAL SECONDS DEPARTMENT

staff: each holds its inbox socket (which makes it online for assignment) and opens a conversation
socket for each conversation assigned to it; prints `READY <inboxes>`, then `OPENED <n>` as its
conversation sockets get their snapshots. It notes when each citizen message arrives (CLOCK_MONOTONIC,
shared by every process of the machine) and answers REPLY_SHARE of them over HTTP, noting when it sent
each answer. On `STOP` (stdin) it prints its notes as JSON.

citizens: each opens a conversation (HTTP) and its socket, prints `READY <n> <failed>`, waits for `GO`
(stdin), then sends a message every INTERVAL seconds (the first after a random part of it) for SECONDS,
noting when each was sent and when each staff answer arrives; prints `DONE`, keeps listening until
`STOP` (and 5 s more), then prints its notes as JSON."""
from __future__ import annotations

import asyncio
import json
import random
import sys
import time
import uuid
import zlib

import httpx
import uvloop
from websockets.asyncio.client import connect

OPEN_TIMEOUT = 60
OPENING = 20


async def _stdin_line() -> str:
    return (await asyncio.to_thread(sys.stdin.readline)).strip()


def _ws(base: str) -> str:
    return base.replace("http://", "ws://")


async def staff(base: str, tokens: list[str], reply_share: float) -> None:
    received: dict[str, float] = {}     # citizen client_msg_id -> when a staff socket heard it
    replies: dict[str, float] = {}      # answer client_msg_id -> when its request was sent
    errors: list[str] = []
    opened = 0
    opening = asyncio.Semaphore(OPENING)
    http = httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=100))
    conversation_tasks: list[asyncio.Task] = []
    answering: set[asyncio.Task] = set()

    async def answer(token: str, conversation: int, asked: str) -> None:
        reply_id = "r-" + asked[2:]
        replies[reply_id] = time.monotonic()
        try:
            response = await http.post(f"/api/v1/staff/conversations/{conversation}/messages",
                                       headers={"Authorization": f"Bearer {token}"},
                                       json={"text": "收到，请带身份证原件。", "client_msg_id": reply_id})
            if response.status_code != 201:
                errors.append(f"answer {response.status_code}")
        except httpx.HTTPError as error:
            errors.append(type(error).__name__)

    async def follow(token: str, conversation: int) -> None:
        nonlocal opened
        try:
            async with opening:
                socket = await connect(f"{_ws(base)}/ws/conversations/{conversation}", open_timeout=OPEN_TIMEOUT,
                                       additional_headers={"Authorization": f"Bearer {token}"}, ping_interval=None,
                                       max_queue=None)
                while json.loads(await socket.recv())["type"] != "snapshot":
                    pass
            opened += 1
            print(f"OPENED {opened}", flush=True)
            async with socket:
                async for raw in socket:
                    message = json.loads(raw)
                    if message["type"] != "message.new" or message["message"]["sender"] != "citizen":
                        continue
                    asked = message["message"]["client_msg_id"]
                    if not asked.startswith("c-"):
                        continue
                    received[asked] = time.monotonic()
                    if zlib.crc32(asked.encode()) % 1000 < reply_share * 1000:
                        task = asyncio.create_task(answer(token, conversation, asked))
                        answering.add(task)
                        task.add_done_callback(answering.discard)
        except Exception as error:   # counted, never fatal to the other sockets
            errors.append(f"{type(error).__name__}: {error}"[:160])

    async def inbox(token: str, ready: asyncio.Queue) -> None:
        following: set[int] = set()
        try:
            async with opening:
                socket = await connect(f"{_ws(base)}/ws/staff/inbox", open_timeout=OPEN_TIMEOUT, ping_interval=None,
                                       additional_headers={"Authorization": f"Bearer {token}"}, max_queue=None)
                snapshot = json.loads(await socket.recv())
            ready.put_nowait(None)
            for conversation in snapshot.get("assigned", []):
                following.add(conversation["id"])
                conversation_tasks.append(asyncio.create_task(follow(token, conversation["id"])))
            async with socket:
                async for raw in socket:
                    message = json.loads(raw)
                    conversation = message.get("conversation") or {}
                    if message["type"] == "conversation.assigned" and conversation.get("id") not in following:
                        following.add(conversation["id"])
                        conversation_tasks.append(asyncio.create_task(follow(token, conversation["id"])))
        except Exception as error:
            ready.put_nowait(f"{type(error).__name__}: {error}"[:160])

    ready: asyncio.Queue = asyncio.Queue()
    inboxes = [asyncio.create_task(inbox(token, ready)) for token in tokens]
    outcomes = [await ready.get() for _ in tokens]
    print(f"READY {sum(1 for o in outcomes if o is None)}", flush=True)
    await _stdin_line()     # STOP: the answers in flight finish first
    if answering:
        await asyncio.wait(set(answering), timeout=120)
    for task in inboxes + conversation_tasks:
        task.cancel()
    await asyncio.gather(*inboxes, *conversation_tasks, return_exceptions=True)
    await http.aclose()
    print(json.dumps({"received": received, "replies": replies, "errors": errors[:20], "error_count": len(errors)}),
          flush=True)


async def citizens(base: str, tokens: list[str], interval: float, seconds: float, department: str) -> None:
    sent: dict[str, float] = {}         # client_msg_id -> when its request was sent
    answered: dict[str, float] = {}     # client_msg_id -> when its 201 came back
    received: dict[str, float] = {}     # staff answer client_msg_id -> when the citizen's socket heard it
    statuses: dict[str, int] = {}
    errors: list[str] = []
    http = httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=100))
    opening = asyncio.Semaphore(OPENING)
    go = asyncio.Event()
    listening: list[asyncio.Task] = []
    sockets: list = []

    async def one(token: str, ready: asyncio.Queue) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with opening:
                opened = await http.post("/api/v1/conversations", headers=headers, json={
                    "department": department, "text": "bench: 身份证补办要带什么？", "client_msg_id": uuid.uuid4().hex})
                opened.raise_for_status()
                conversation = opened.json()["conversation"]["id"]
                socket = await connect(f"{_ws(base)}/ws/conversations/{conversation}", open_timeout=OPEN_TIMEOUT,
                                       additional_headers=headers, ping_interval=None, max_queue=None)
                while json.loads(await socket.recv())["type"] != "snapshot":
                    pass
        except Exception as error:
            ready.put_nowait(f"{type(error).__name__}: {error}"[:160])
            return
        ready.put_nowait(None)

        async def listen() -> None:
            async for raw in socket:
                message = json.loads(raw)
                if message["type"] == "message.new" and message["message"]["sender"] == "staff":
                    received[message["message"]["client_msg_id"]] = time.monotonic()

        listening.append(asyncio.create_task(listen()))
        sockets.append(socket)
        await go.wait()
        ends = time.monotonic() + seconds
        await asyncio.sleep(random.uniform(0, interval))
        while time.monotonic() < ends:
            msg_id = "c-" + uuid.uuid4().hex
            started = time.monotonic()
            sent[msg_id] = started
            try:
                response = await http.post(f"/api/v1/conversations/{conversation}/messages", headers=headers,
                                           json={"text": "bench: 还需要户口簿吗？", "client_msg_id": msg_id})
                statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
                answered[msg_id] = time.monotonic()
            except httpx.HTTPError as error:
                errors.append(type(error).__name__)
            await asyncio.sleep(max(0.0, started + interval - time.monotonic()))

    ready: asyncio.Queue = asyncio.Queue()
    tasks = [asyncio.create_task(one(token, ready)) for token in tokens]
    outcomes = [await ready.get() for _ in tokens]
    failed = [o for o in outcomes if o is not None]
    print(f"READY {len(tokens) - len(failed)} {len(failed)}", flush=True)
    if (await _stdin_line()) == "GO":
        go.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        print("DONE", flush=True)          # sending is over; the sockets keep listening until STOP
        await _stdin_line()
        await asyncio.sleep(5)             # the staff answers sent last reach the sockets
    for task in listening:
        task.cancel()
    await asyncio.gather(*listening, return_exceptions=True)
    for socket in sockets:
        await socket.close()
    await http.aclose()
    print(json.dumps({"sent": sent, "answered": answered, "received": received, "statuses": statuses,
                      "errors": (failed + errors)[:20], "error_count": len(failed) + len(errors)}), flush=True)


def main() -> None:
    role, base, tokens_file, first, count = sys.argv[1:6]
    tokens = open(tokens_file).read().split()[int(first):int(first) + int(count)]
    if role == "staff":
        uvloop.run(staff(base, tokens, float(sys.argv[6])))
    else:
        uvloop.run(citizens(base, tokens, float(sys.argv[6]), float(sys.argv[7]), sys.argv[8]))


if __name__ == "__main__":
    main()
