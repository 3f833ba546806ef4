"""A fixed number of requests, each sent once, as fast as N keep-alive connections allow, from several
client processes: the generator for the rush scenarios, where every request is a different person
(a booking, a ticket) and wrk's run-for-a-duration model would send some twice.

Each request is prepared as bytes beforehand; a process holds its share of the connections on uvloop
and parses only the status line and Content-Length of each answer (and the `code` of a 4xx/5xx
problem+json body, so a refusal is told apart from another refusal with the same status), so a
process sends several thousand requests a second on one core (httpx tops out near 1,000 here). The
parent merges what the processes measured: statuses, problem codes, latency of every request, the
time from the first send to the last answer, and the processes' own CPU."""
from __future__ import annotations

import asyncio
import json
import multiprocessing
import resource
import time
from dataclasses import dataclass, field

__all__ = ["BurstResult", "burst", "http_request"]


def http_request(method: str, path: str, *, host: str, headers: dict[str, str] | None = None,
                 body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class BurstResult:
    statuses: dict[int, int] = field(default_factory=dict)
    problems: dict[str, int] = field(default_factory=dict)  # "409 slot_full": count, for every 4xx/5xx
    latencies: list[float] = field(default_factory=list)   # seconds, one per answered request
    errors: int = 0                                        # connections that broke
    elapsed: float = 0.0                                   # first send to last answer, over all processes
    client_cpu: float = 0.0                                # CPU seconds of the client processes

    @property
    def answered(self) -> int:
        return len(self.latencies)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] if ordered else float("nan")


def _problem_code(body: bytes) -> str:
    try:
        return str(json.loads(body).get("code", "?"))
    except (ValueError, AttributeError):
        return "(not problem+json)"


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, str | None]:
    """The status, and for a 4xx/5xx the problem's `code`."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return status, (f"{status} {_problem_code(body)}" if status >= 400 else None)


async def _connection(host: str, port: int, queue: list[bytes], out: dict, start_gate: asyncio.Event) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        out["errors"] += 1         # the other connections send its share
        return
    await start_gate.wait()
    try:
        while queue:
            request = queue.pop()
            sent = time.monotonic()
            out.setdefault("first", sent)
            writer.write(request)
            status, problem = await _read_answer(reader)
            answered = time.monotonic()
            out["last"] = answered
            out["statuses"][status] = out["statuses"].get(status, 0) + 1
            if problem:
                out["problems"][problem] = out["problems"].get(problem, 0) + 1
            out["latencies"].append(answered - sent)
    except (OSError, asyncio.IncompleteReadError, ValueError):
        out["errors"] += 1
    finally:
        writer.close()


def _process(host: str, port: int, requests: list[bytes], connections: int, start_at: float, results) -> None:
    import uvloop

    async def run() -> dict:
        out = {"statuses": {}, "problems": {}, "latencies": [], "errors": 0}
        queue = list(reversed(requests))         # popped from the end: sent in the order given
        gate = asyncio.Event()
        tasks = [asyncio.create_task(_connection(host, port, queue, out, gate)) for _ in range(connections)]
        await asyncio.sleep(max(0.0, start_at - time.time()))   # every process opens its connections first
        gate.set()
        await asyncio.gather(*tasks)
        return out

    out = uvloop.run(run())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    results.put(out | {"cpu": usage.ru_utime + usage.ru_stime})


def burst(host: str, port: int, requests: list[bytes], *, connections: int, processes: int) -> BurstResult:
    """Send every request once over `connections` connections spread on `processes` processes."""
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    start_at = time.time() + 1.0 + 0.002 * connections
    shares = [requests[n::processes] for n in range(processes)]
    workers = [context.Process(target=_process, args=(host, port, share, max(1, connections // processes),
                                                      start_at, results)) for share in shares]
    for worker in workers:
        worker.start()
    outs = [results.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join()
    merged = BurstResult()
    for out in outs:
        for status, count in out["statuses"].items():
            merged.statuses[status] = merged.statuses.get(status, 0) + count
        for problem, count in out["problems"].items():
            merged.problems[problem] = merged.problems.get(problem, 0) + count
        merged.latencies += out["latencies"]
        merged.errors += out["errors"]
        merged.client_cpu += out["cpu"]
    firsts = [out["first"] for out in outs if "first" in out]
    lasts = [out["last"] for out in outs if "last" in out]
    merged.elapsed = max(lasts) - min(firsts) if firsts and lasts else 0.0
    return merged
