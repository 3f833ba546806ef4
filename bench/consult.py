"""Consulting under load against a real `ehall serve` (PostgreSQL + Redis, 2 workers), next to a bare Sanic
endpoint measured in the same run:

500 citizens and 50 staff of one department, all over websockets from separate client processes. Each
staff member holds the inbox socket (which makes them online, so every conversation is assigned to
one of them) and a socket per conversation assigned; each citizen opens a conversation and its socket,
then sends a message every INTERVAL seconds for SECONDS over HTTP. Staff answer a share of the
messages over HTTP. Measured: from a message's request being sent to the other side's socket hearing
it (citizen -> staff, and staff answer -> citizen), p50/p99/max; messages/s; server CPU per message,
also in bare requests (the bare endpoint's CPU per request under wrk).

    .venv/bin/python bench/consult.py [--citizens 500] [--staff 50] [--interval 3] [--seconds 60]
                                      [--reply-share 0.25] [--keep-logs]

Every message sent must be heard once by the other side; a message lost is printed as WRONG and the run
exits non-zero. The speeds are figures only."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as harness  # noqa: E402  (bench/run.py: servers, CPU counters, the wrk baseline)

DEPARTMENT, GRANT = "gaj", "window_clerk@150900/gaj"
STAFF_PROCESSES, CITIZEN_PROCESSES = 2, 4
WRONG: list[str] = []
CONSULT_SETTINGS = {
    "EHALL_ACCESS_LOG": "false",
    # the tokens are made before the run: an hour, so none expires mid-run
    "EHALL_AUTH__ACCESS_TTL_SECONDS": "3600",
    # 500 conversations over 50 staff: 10 each, under a limit that leaves room
    "EHALL_CONSULT__MAX_OPEN_PER_STAFF": "20",
}


def check(ok: bool, said: str) -> str:
    if not ok:
        WRONG.append(said)
    return ("ok     " if ok else "WRONG  ") + said


async def _line(process: asyncio.subprocess.Process, prefix: bytes, timeout: float) -> bytes:
    while True:
        line = await asyncio.wait_for(process.stdout.readline(), timeout=timeout)
        if not line:
            rest, _ = await process.communicate()
            raise SystemExit(f"consult: a client process ended early:\n{rest.decode()[-3000:]}")
        if line.startswith(prefix):
            return line


def _client(*args: str) -> asyncio.Future:
    return asyncio.create_subprocess_exec(sys.executable, str(harness.ROOT / "bench" / "consult_clients.py"), *args,
                                          stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                          stderr=asyncio.subprocess.STDOUT, limit=2**26)


class StaffClient:
    """A staff client process and what it has printed: READY (inboxes open), OPENED (conversation sockets),
    and at the end its notes as JSON."""

    def __init__(self, process: asyncio.subprocess.Process):
        self.process = process
        self.opened = 0
        self.ready: asyncio.Future = asyncio.get_running_loop().create_future()
        self.lines: list[bytes] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for line in self.process.stdout:
            if line.startswith(b"READY") and not self.ready.done():
                self.ready.set_result(int(line.split()[1]))
            elif line.startswith(b"OPENED"):
                self.opened = max(self.opened, int(line.split()[1]))
            else:
                self.lines.append(line)
        if not self.ready.done():
            self.ready.set_exception(SystemExit("consult: a staff process ended early:\n"
                                                + b"".join(self.lines).decode()[-3000:]))

    async def stop(self) -> dict:
        self.process.stdin.write(b"STOP\n")
        await self.process.stdin.drain()
        await asyncio.wait_for(self.reader, timeout=120)
        await self.process.wait()
        return json.loads(self.lines[-1].decode())


def _percentiles(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return float("nan"), float("nan"), float("nan")
    values = sorted(values)
    pick = lambda p: values[min(len(values) - 1, int(len(values) * p / 100))] * 1000  # noqa: E731
    return pick(50), pick(99), values[-1] * 1000


async def consult(citizens: int, staff: int, interval: float, seconds: float, reply_share: float,
                  keep_logs: bool) -> None:
    print(f"ehall consult  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  backend=postgres  workers=2  "
          f"{citizens} citizens in {CITIZEN_PROCESSES} processes, {staff} staff in {STAFF_PROCESSES} processes, "
          f"a message every {interval:g} s per citizen for {seconds:g} s, staff answer {reply_share:.0%}")
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; everything (servers, PostgreSQL, Redis, clients) shares "
          f"these cores\n", flush=True)
    others = harness.OtherWork(None)
    others_before, started = harness.cpu_by_process(), time.monotonic()
    async with harness.servers("postgres", workers=2, keep_logs=keep_logs, settings=CONSULT_SETTINGS,
                               name="consult") as running:
        others.database = running.database
        bare = await harness.measure(harness.bare_hello(), running.bare, seconds=10, connections=32, threads=1,
                                     server_pid=running.bare_pid, database=None, files=running.files,
                                     output=running.var_dir / "wrk-bare.txt")
        seeded = time.monotonic()
        await harness.run_command(sys.executable, str(harness.ROOT / "bench" / "seed_consult.py"), str(citizens),
                                  str(staff), GRANT, str(running.files), env=running.env, timeout=1200)
        print(f"  seeded {citizens} citizens and {staff} staff in {time.monotonic() - seeded:.0f} s", file=sys.stderr)
        base = running.ehall
        staff_file, citizen_file = running.files / "staff.txt", running.files / "citizens.txt"
        per_staff, per_citizen = staff // STAFF_PROCESSES, citizens // CITIZEN_PROCESSES
        staff_clients = [StaffClient(await _client("staff", base, str(staff_file), str(n * per_staff),
                                                     str(per_staff), str(reply_share)))
                         for n in range(STAFF_PROCESSES)]
        online = 0
        for client in staff_clients:
            online += await asyncio.wait_for(client.ready, timeout=300)
        citizen_processes = [await _client("citizens", base, str(citizen_file), str(n * per_citizen), str(per_citizen),
                                           str(interval), str(seconds), DEPARTMENT) for n in range(CITIZEN_PROCESSES)]
        connected = 0
        for process in citizen_processes:
            connected += int((await _line(process, b"READY", 600)).split()[1])
        # every conversation's staff socket open before the clock starts
        deadline = time.monotonic() + 120
        while sum(c.opened for c in staff_clients) < connected and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        print(f"  {online} staff online, {connected} citizens connected, {sum(c.opened for c in staff_clients)} "
              f"staff conversation sockets", file=sys.stderr)
        await asyncio.sleep(2)
        server_before, store_before = harness.process_tree_cpu_seconds(running.ehall_pid), \
            harness.datastore_cpu_seconds(running.database)
        machine_before, run_started = harness.machine_busy_seconds(), time.monotonic()
        client_pids = [p.pid for p in citizen_processes] + [c.process.pid for c in staff_clients]
        clients_before = sum(harness.process_tree_cpu_seconds(pid) for pid in client_pids)
        for process in citizen_processes:
            process.stdin.write(b"GO\n")
            await process.stdin.drain()
        for process in citizen_processes:
            await _line(process, b"DONE", seconds + 600)
        elapsed = time.monotonic() - run_started
        server_cpu = harness.process_tree_cpu_seconds(running.ehall_pid) - server_before
        store_cpu = harness.datastore_cpu_seconds(running.database) - store_before
        machine_cpu = harness.machine_busy_seconds() - machine_before
        client_cpu = sum(harness.process_tree_cpu_seconds(pid) for pid in client_pids) - clients_before
        # the staff finish the answers in flight, then the citizens' sockets get 5 s to hear the last ones
        staff_reports = [await client.stop() for client in staff_clients]
        citizen_reports = []
        for process in citizen_processes:
            output, _ = await asyncio.wait_for(process.communicate(b"STOP\n"), timeout=300)
            citizen_reports.append(json.loads(output.decode().strip().splitlines()[-1]))

        sent = {k: v for r in citizen_reports for k, v in r["sent"].items()}
        answered = {k: v for r in citizen_reports for k, v in r["answered"].items()}
        heard_by_staff = {k: v for r in staff_reports for k, v in r["received"].items()}
        replies = {k: v for r in staff_reports for k, v in r["replies"].items()}
        heard_by_citizens = {k: v for r in citizen_reports for k, v in r["received"].items()}
        statuses: dict[str, int] = {}
        for report in citizen_reports:
            for status, count in report["statuses"].items():
                statuses[status] = statuses.get(status, 0) + count
        to_staff = [heard_by_staff[k] - sent[k] for k in sent if k in heard_by_staff]
        to_citizen = [heard_by_citizens[k] - replies[k] for k in replies if k in heard_by_citizens]
        round_trip = [answered[k] - sent[k] for k in answered]
        messages = len(answered) + len(replies)
        bare_cpu_ms = bare.per_request_ms(bare.server_cpu)
        cpu_ms = server_cpu * 1000 / max(1, messages)
        print(f"bare GET /hello (wrk, 10 s, 32 connections): {bare.rate:.0f} req/s, p50 {bare.wrk['p50_us'] / 1000:.1f} "
              f"ms, p99 {bare.wrk['p99_us'] / 1000:.1f} ms, server CPU {bare_cpu_ms:.3f} ms per request")
        print(f"messages: {len(sent)} sent by citizens, {len(replies)} answers by staff in {elapsed:.0f} s = "
              f"{messages / elapsed:.0f} messages/s; server CPU {cpu_ms:.2f} ms per message = "
              f"{cpu_ms / bare_cpu_ms:.0f} bare requests; PostgreSQL + Redis {store_cpu * 1000 / max(1, messages):.2f} "
              f"ms per message; server {server_cpu / elapsed:.0%} of a core, clients "
              f"{client_cpu / elapsed:.0%}, machine {machine_cpu / elapsed:.0%}")
        print(f"    {'delay, ms':<48} {'p50':>7} {'p99':>7} {'max':>7} {'count':>7}")
        for name, values in (("citizen send -> its 201 answer", round_trip),
                             ("citizen send -> staff socket hears it", to_staff),
                             ("staff answer sent -> citizen socket hears it", to_citizen)):
            p50, p99, worst = _percentiles(values)
            print(f"    {name:<48} {p50:>7.1f} {p99:>7.1f} {worst:>7.1f} {len(values):>7}")
        print("    answers to citizens' sends: " + json.dumps(dict(sorted(statuses.items()))))
        errors = [e for r in citizen_reports + staff_reports for e in r["errors"]]
        print("    " + check(online == staff and connected == citizens,
                             f"staff online {online} of {staff}, citizens connected {connected} of {citizens}"))
        print("    " + check(len(answered) == len(sent) and set(statuses) == {"201"},
                             f"citizen sends answered 201: {statuses.get('201', 0)} of {len(sent)}"))
        print("    " + check(len(to_staff) == len(answered), f"citizen messages heard by staff: {len(to_staff)} of "
                                                             f"{len(answered)}"))
        print("    " + check(len(to_citizen) == len(replies), f"staff answers heard by citizens: {len(to_citizen)} of "
                                                               f"{len(replies)}"))
        if errors:
            print(f"    client errors ({sum(r['error_count'] for r in citizen_reports + staff_reports)}): {errors[:5]}")
        total = time.monotonic() - started
        others.add(others_before, total)
        log = (running.var_dir / "ehall.log").read_text(errors="replace")
        print(f"\nehall log: {log.count('unhandled error')} unhandled errors")
        print("other processes busiest during the run:")
        for line in others.busiest() or ["(none above 2% of a core)"]:
            print(f"  {line}")
        if keep_logs:
            print(f"logs kept in {running.var_dir}")
    if WRONG:
        sys.exit("consult: WRONG: " + "; ".join(WRONG))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--citizens", type=int, default=500)
    parser.add_argument("--staff", type=int, default=50)
    parser.add_argument("--interval", type=float, default=3)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--reply-share", type=float, default=0.25)
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("consult: wrk is not installed (apt-get install wrk)")
    uvloop.run(consult(args.citizens, args.staff, args.interval, args.seconds, args.reply_share, args.keep_logs))


if __name__ == "__main__":
    main()
