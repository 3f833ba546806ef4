"""The hall-operations rushes against a real `ehall serve` (PostgreSQL + Redis, 2 workers), next to a
bare Sanic endpoint measured in the same run:

- booking storm: 2,000 real-name citizens book 50 slots of capacity 20 at once (256 connections);
  exactly 1,000 must get a seat, the rest `slot_full`, nobody two seats;
- ticket rush: 5,000 kiosk tickets at once across 4 categories of one hall; every number unique and
  each category's sequence gapless;
- call-next fan-out: 2,000 websocket clients on the hall's display board (in 4 subscriber processes);
  a clerk calls 50 tickets; how long after the call-next request was sent (and after its answer)
  each client, and the last client of each call, hears the call.

    .venv/bin/python bench/rush.py [--citizens 2000] [--tickets 5000] [--sockets 2000] [--db-pool N] [--keep-logs]

The outcomes are checked after each rush, in the database and in the answers' problem codes (a 409
is not taken for slot_full: the code of every refusal is counted), and printed; a broken rule is
printed as WRONG and the run exits non-zero. The speeds are figures only. The bookers and ticket takers come
from bench/burst.py (several client processes, each request once); the bare baseline from wrk."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as harness  # noqa: E402  (bench/run.py: servers, CPU counters, the wrk baseline)
from burst import BurstResult, burst, http_request  # noqa: E402

HALL = "150900"
BOOKING_CATEGORY, BOOKING_ITEM = "B", "gaj.QR001"   # 公安: 居民身份证申领 takes appointments
SLOTS, CAPACITY = 50, 20
TICKET_CATEGORIES = ["A", "B", "C", "D"]
CALLS = 50
CONNECTIONS = 256
CLIENT_PROCESSES = 2
SUBSCRIBER_PROCESSES = 4
WRONG: list[str] = []
RUSH_SETTINGS = {
    # 50 slots of 20 seats on one day of the city hall's 公安 queue
    "EHALL_APPOINTMENTS__SLOT_MINUTES": "5", "EHALL_APPOINTMENTS__CAPACITY": str(CAPACITY),
    "EHALL_ACCESS_LOG": "false",
    # the citizens' and staff tokens are made before the rushes (seeding 2,000 citizens takes a while
    # on a busy machine): an hour instead of 15 minutes, so none expires mid-run
    "EHALL_AUTH__ACCESS_TTL_SECONDS": "3600",
}


def check(ok: bool, said: str) -> str:
    if not ok:
        WRONG.append(said)
    return ("ok     " if ok else "WRONG  ") + said


def figures(name: str, result: BurstResult, server_cpu: float, store_cpu: float, other: float,
            bare: harness.Result) -> str:
    rate = result.answered / result.elapsed if result.elapsed else 0.0
    bare_cpu_ms = bare.per_request_ms(bare.server_cpu)
    cpu_ms = server_cpu * 1000 / max(1, result.answered)
    return (f"{name:<34} {result.answered:>6} {rate:>7.0f} {rate / bare.rate:>7.3f} "
            f"{result.percentile(50) * 1000:>7.1f} {result.percentile(99) * 1000:>7.1f} "
            f"{max(result.latencies, default=0) * 1000:>7.1f} {cpu_ms:>7.3f} {cpu_ms / bare_cpu_ms:>6.1f} "
            f"{store_cpu * 1000 / max(1, result.answered):>6.3f} {result.client_cpu / max(result.elapsed, 1e-9):>6.0%}"
            f" {result.errors:>4} {other:>6.0%}")


async def staff_token(http: httpx.AsyncClient, env: dict, username: str, role: str, password: str) -> str:
    await harness.run_command(sys.executable, "-m", "backend.cli", "staff", "create", username, "--role", role,
                              env=env | {"EHALL_STAFF_PASSWORD": password})
    login = await http.post("/api/v1/staff/login", json={"username": username, "password": password})
    login.raise_for_status()
    return login.json()["access_token"]


async def measured(run, pid: int, database: str):
    """CPU of the server and of the datastores while `run()` (a blocking call, in a thread) runs, and the
    busy CPU of everything else on the machine in shares of a core (other work, the kernel)."""
    server_before, store_before = harness.process_tree_cpu_seconds(pid), harness.datastore_cpu_seconds(database)
    machine_before, started = harness.machine_busy_seconds(), time.monotonic()
    result = await asyncio.to_thread(run)
    server = harness.process_tree_cpu_seconds(pid) - server_before
    store = harness.datastore_cpu_seconds(database) - store_before
    other = harness.machine_busy_seconds() - machine_before - server - store - result.client_cpu
    return result, server, store, max(0.0, other) / (time.monotonic() - started)


async def bookable_slots(http: httpx.AsyncClient) -> list[dict]:
    """The first day of the booking horizon whose category B has SLOTS slots, all still empty."""
    for offset in range(0, 15):
        day = (date.today() + timedelta(days=offset)).isoformat()
        answer = await http.get(f"/api/v1/halls/{HALL}/slots", params={"category": BOOKING_CATEGORY, "date": day})
        if answer.status_code == 200 and answer.json()["bookable"]:
            slots = [s for s in answer.json()["items"] if s["remaining"] == CAPACITY]
            if len(slots) >= SLOTS:
                return slots[:SLOTS]
    raise SystemExit("rush: no bookable day with 50 empty slots in the next two weeks")


async def booking_storm(ctx: dict, citizens: int) -> list[str]:
    tokens_file = ctx["files"] / "citizens.txt"
    started = time.monotonic()
    await harness.run_command(sys.executable, str(harness.ROOT / "bench" / "seed_rush.py"), "citizens",
                              str(citizens), str(tokens_file), env=ctx["env"], timeout=1200)
    print(f"  seeded {citizens} real-name citizens in {time.monotonic() - started:.0f} s", file=sys.stderr)
    tokens = tokens_file.read_text().split()
    slots = await bookable_slots(ctx["http"])
    requests = [http_request("POST", "/api/v1/appointments", host=ctx["host"], headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        body=json.dumps({"slot_id": slots[n % SLOTS]["id"], "service_item": BOOKING_ITEM}).encode())
        for n, token in enumerate(tokens)]
    result, server_cpu, store_cpu, other = await measured(
        lambda: burst("127.0.0.1", ctx["port"], requests, connections=CONNECTIONS, processes=CLIENT_PROCESSES),
        ctx["pid"], ctx["database"])
    db = ctx["db"]
    slot_ids = [int(s["id"]) for s in slots]
    held = await db.fetchval("SELECT count(*) FROM appointment WHERE active_key IS NOT NULL AND slot_id = ANY($1)",
                             slot_ids)
    rows = await db.fetchval("SELECT count(*) FROM appointment")
    holders = await db.fetchval("SELECT count(DISTINCT citizen_id) FROM appointment")
    doubles = await db.fetchval("SELECT count(*) FROM (SELECT citizen_id FROM appointment WHERE active_key IS NOT "
                                "NULL GROUP BY citizen_id HAVING count(*) > 1) AS d")
    booked = await db.fetch("SELECT booked FROM appointment_slot WHERE id = ANY($1)", slot_ids)
    seats = SLOTS * CAPACITY
    expected_held = min(citizens, seats)
    refused = citizens - held
    return [figures(f"booking storm ({citizens} citizens)", result, server_cpu, store_cpu, other, ctx["bare"]),
            f"    answers: {dict(sorted(result.statuses.items()))}; refusals by problem code: "
            f"{dict(sorted(result.problems.items()))}",
            "    " + check(held == expected_held, f"bookings held: {held} (seats {seats}, bookers {citizens})"),
            "    " + check(result.statuses.get(201, 0) == held, f"201 answers {result.statuses.get(201, 0)} = bookings"),
            "    " + check(result.problems == ({"409 slot_full": refused} if refused else {}),
                           f"every other answer is 409 slot_full: {result.problems.get('409 slot_full', 0)} "
                           f"of {refused}"),
            "    " + check(rows == held and holders == held and doubles == 0,
                           f"appointment rows {rows}, citizens holding one {holders}, holding two {doubles}: "
                           f"every refused citizen holds nothing"),
            "    " + check(all(r["booked"] <= CAPACITY for r in booked) and sum(r["booked"] for r in booked) == held,
                           f"slot counters: {sum(r['booked'] for r in booked)} booked, max "
                           f"{max(r['booked'] for r in booked)} of {CAPACITY}")]


async def ticket_rush(ctx: dict, tickets: int) -> list[str]:
    headers = {"Authorization": f"Bearer {ctx['kiosk']}", "Content-Type": "application/json"}
    requests = [http_request("POST", "/api/v1/kiosk/tickets", host=ctx["host"], headers=headers,
                             body=json.dumps({"hall": HALL, "category": TICKET_CATEGORIES[n % 4]}).encode())
                for n in range(tickets)]
    result, server_cpu, store_cpu, other = await measured(
        lambda: burst("127.0.0.1", ctx["port"], requests, connections=CONNECTIONS, processes=CLIENT_PROCESSES),
        ctx["pid"], ctx["database"])
    rows = await ctx["db"].fetch(
        "SELECT prefix, count(*) AS n, count(DISTINCT number) AS numbers, min(seq) AS first, max(seq) AS last "
        "FROM ticket WHERE hall_code = $1 GROUP BY prefix ORDER BY prefix", HALL)
    lines = [figures(f"ticket rush ({tickets} tickets)", result, server_cpu, store_cpu, other, ctx["bare"]),
             f"    answers: {dict(sorted(result.statuses.items()))}"
             + (f"; refusals by problem code: {dict(sorted(result.problems.items()))}" if result.problems else ""),
             "    " + check(result.statuses.get(201, 0) == tickets, f"201 answers: {result.statuses.get(201, 0)}")]
    for row in rows:
        lines.append("    " + check(row["numbers"] == row["n"] and row["first"] == 1 and row["last"] == row["n"],
                                    f"category {row['prefix']}: {row['n']} tickets, {row['numbers']} distinct "
                                    f"numbers, sequence {row['first']}..{row['last']}"))
    lines.append("    " + check(sum(r["n"] for r in rows) == tickets, f"tickets in the database: {sum(r['n'] for r in rows)}"))
    return lines


async def fan_out(ctx: dict, sockets: int) -> list[str]:
    http = ctx["http"]
    clerk = {"Authorization": f"Bearer {ctx['clerk']}"}
    hall = (await http.get(f"/api/v1/halls/{HALL}")).json()
    window = next(w["number"] for w in hall["windows"] if "A" in w["categories"])
    opened = await http.patch(f"/api/v1/staff/halls/{HALL}/windows/{window}", headers=clerk, json={"status": "open"})
    opened.raise_for_status()
    url = f"ws://{ctx['host']}/ws/halls/{HALL}/display"
    per_process = sockets // SUBSCRIBER_PROCESSES
    subscribers = [await asyncio.create_subprocess_exec(
        sys.executable, str(harness.ROOT / "bench" / "subscribers.py"), url, str(per_process), str(CALLS), "120",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT) for _ in range(SUBSCRIBER_PROCESSES)]
    connected = 0
    for process in subscribers:
        line = await asyncio.wait_for(process.stdout.readline(), timeout=300)
        while line and not line.startswith(b"READY"):   # a warning printed before READY
            line = await asyncio.wait_for(process.stdout.readline(), timeout=300)
        if not line:
            rest, _ = await process.communicate()
            raise SystemExit(f"rush: a subscriber process ended before it was ready:\n{rest.decode()[-3000:]}")
        connected += int(line.split()[1])
    print(f"  {connected} of {per_process * SUBSCRIBER_PROCESSES} display sockets connected", file=sys.stderr)
    sent_at: dict[str, float] = {}       # number -> when its call-next request was sent (CLOCK_MONOTONIC)
    answered_at: dict[str, float] = {}   # number -> when its answer arrived
    server_before = harness.process_tree_cpu_seconds(ctx["pid"])
    machine_before, calls_started = harness.machine_busy_seconds(), time.monotonic()
    for _ in range(CALLS):
        sent = time.monotonic()
        call = await http.post(f"/api/v1/staff/halls/{HALL}/windows/{window}/call-next", headers=clerk)
        answered = time.monotonic()
        call.raise_for_status()
        number = call.json()["number"]
        sent_at[number], answered_at[number] = sent, answered
        await asyncio.sleep(0.3)
        # the holder is not there (a rush ticket): 过号, which frees the window for the next call
        skipped = await http.post(f"/api/v1/staff/halls/{HALL}/windows/{window}/skip", headers=clerk,
                                  json={"ticket": call.json()["id"]})
        skipped.raise_for_status()
    calls_busy = (harness.machine_busy_seconds() - machine_before) / (time.monotonic() - calls_started)
    calls_server = (harness.process_tree_cpu_seconds(ctx["pid"]) - server_before) / (time.monotonic() - calls_started)
    heard: dict[str, list[float]] = {}
    unfinished = failed = failed_to_open = 0
    reasons: set[str] = set()
    for process in subscribers:
        output, _ = await asyncio.wait_for(process.communicate(), timeout=180)
        report = json.loads(output.decode().strip().splitlines()[-1])
        unfinished += report["unfinished"]
        failed += report["failed"]
        failed_to_open += report["failed_to_open"]
        reasons.update(report["reasons"])
        for number, times in report["heard"].items():
            heard.setdefault(number, []).extend(times)
    server_cpu = harness.process_tree_cpu_seconds(ctx["pid"]) - server_before
    strangers = sorted(set(heard) - set(sent_at))    # a call no call-next of this run answered
    wanted = per_process * SUBSCRIBER_PROCESSES
    deliveries = connected * CALLS
    heard_count = sum(len(times) for times in heard.values())

    def delays(since: dict[str, float], last_only: bool = False) -> list[float]:
        return sorted(t - since[number] for number, times in heard.items() if number in since
                      for t in ([max(times)] if last_only else times))

    def pick(values: list[float], p: float) -> float:
        return values[min(len(values) - 1, int(len(values) * p / 100))] * 1000 if values else float("nan")

    def row(name: str, values: list[float]) -> str:
        return (f"    {name:<40} {pick(values, 50):>7.1f} {pick(values, 99):>7.1f} "
                f"{values[-1] * 1000 if values else float('nan'):>7.1f} {values[0] * 1000 if values else float('nan'):>7.1f}")

    round_trips = sorted(answered_at[n] - sent_at[n] for n in sent_at)
    return [f"call-next fan-out ({connected} of {wanted} sockets, {CALLS} calls, {heard_count} messages heard); server CPU "
            f"{server_cpu * 1000 / max(1, heard_count):.3f} ms per ticket.called heard (each call also sends every "
            f"board a queue.changed); during the calls the server used {calls_server:.0%} of a core, the machine "
            f"{calls_busy:.0%} (subscribers, clients, other work included)",
            f"    {'delay, ms':<40} {'p50':>7} {'p99':>7} {'max':>7} {'min':>7}",
            row("call-next round trip (sent -> answer)", round_trips),
            row("any socket, from the request sent", delays(sent_at)),
            row("LAST socket of a call, from sent", delays(sent_at, last_only=True)),
            row("any socket, from the answer", delays(answered_at)),
            row("LAST socket of a call, from the answer", delays(answered_at, last_only=True)),
            "    " + check(connected == wanted, f"sockets that got their snapshot: {connected} of {wanted}"
                           + (f"; the others failed: {sorted(reasons)[:3]}" if reasons else "")),
            "    " + check(heard_count == deliveries and not unfinished and failed == failed_to_open and not strangers,
                           f"messages heard: {heard_count} of {deliveries} (sockets unfinished {unfinished}, "
                           f"failed after the snapshot {failed - failed_to_open}; calls nobody made {strangers})"),
            "    " + check(all(len(heard.get(n, [])) == connected for n in sent_at),
                           f"every call heard by all {connected} sockets: fewest "
                           f"{min((len(heard.get(n, [])) for n in sent_at), default=0)}")]


async def rush(citizens: int, tickets: int, sockets: int, db_pool: int | None, keep_logs: bool) -> None:
    password = "rush password " + secrets.token_hex(8)
    print(f"ehall rush  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  backend=postgres  workers=2  "
          f"connections={CONNECTIONS} in {CLIENT_PROCESSES} client processes  PostgreSQL pool per worker="
          f"{db_pool or '5 (Tortoise default)'}")
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; everything (servers, PostgreSQL, Redis, clients) shares "
          f"these cores\n", flush=True)
    others = harness.OtherWork(None)
    others_before, started = harness.cpu_by_process(), time.monotonic()
    machine_before = harness.machine_busy_seconds()
    async with harness.servers("postgres", workers=2, keep_logs=keep_logs, settings=RUSH_SETTINGS,
                               name="rush", database_query=f"maxsize={db_pool}" if db_pool else "") as running:
        others.database = running.database
        db = await asyncpg.connect(running.env["EHALL_DATABASE_URL"].split("?", 1)[0])  # without Tortoise's maxsize=
        try:
            baseline = await harness.measure(harness.bare_hello(), running.bare, seconds=10, connections=CONNECTIONS,
                                             threads=2, server_pid=running.bare_pid, database=None,
                                             files=running.files, output=running.var_dir / "wrk-bare.txt")
            async with httpx.AsyncClient(base_url=running.ehall, timeout=60) as http:
                ctx = {"env": running.env, "files": running.files, "http": http,
                       "host": f"127.0.0.1:{running.ehall_port}", "port": running.ehall_port,
                       "pid": running.ehall_pid, "database": running.database, "db": db, "bare": baseline,
                       "kiosk": await staff_token(http, running.env, "rush-kiosk", f"kiosk@{HALL}", password),
                       "clerk": await staff_token(http, running.env, "rush-clerk", f"window_clerk@{HALL}", password)}
                print(f"{'':<34} {'answers':>6} {'req/s':>7} {'vs bare':>7} {'p50 ms':>7} {'p99 ms':>7} "
                      f"{'max ms':>7} {'srv cpu':>7} {'x bare':>6} {'db cpu':>6} {'client':>6} {'err':>4} {'other':>6}")
                print(f"{'bare GET /hello (wrk, 10 s)':<34} {baseline.requests:>6} {baseline.rate:>7.0f} {1:>7.3f} "
                      f"{baseline.wrk['p50_us'] / 1000:>7.1f} {baseline.wrk['p99_us'] / 1000:>7.1f} "
                      f"{baseline.wrk['max_us'] / 1000:>7.1f} {baseline.per_request_ms(baseline.server_cpu):>7.3f} "
                      f"{1:>6.1f} {'':>6} {baseline.generator_cpu / baseline.elapsed:>6.0%} {baseline.errors:>4} "
                      f"{baseline.other_cpu / baseline.elapsed:>6.0%}",
                      flush=True)
                for scenario, size in ((booking_storm, citizens), (ticket_rush, tickets), (fan_out, sockets)):
                    print("\n".join(await scenario(ctx, size)), flush=True)
        finally:
            await db.close()
        elapsed = time.monotonic() - started
        others.add(others_before, elapsed)
        machine_share = (harness.machine_busy_seconds() - machine_before) / elapsed
        log = (running.var_dir / "ehall.log").read_text(errors="replace")
        print(f"\nehall log: {log.count('unhandled error')} unhandled errors, "
              f"{log.count(chr(34) + 'level' + chr(34) + ': ' + chr(34) + 'error')} error lines")
        print("srv cpu: ms of server CPU per answer (x bare: in bare requests); db cpu: PostgreSQL + Redis ms per "
              "answer; client: the load generator's CPU (wrk, or the burst processes) in shares of one core; other: "
              "the rest of the machine's busy CPU (other people's work, the kernel) in shares of one core")
        print(f"machine busy {machine_share:.0%} of a core on average over the run ({elapsed:.0f} s, seeding "
              f"included); bare row: other {baseline.other_cpu / baseline.elapsed:.0%} of a core; load average "
              f"after the run {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        print("other processes busiest during the run:")
        for line in others.busiest() or ["(none above 2% of a core)"]:
            print(f"  {line}")
        if keep_logs:
            print(f"logs kept in {running.var_dir}")
    if WRONG:
        sys.exit("rush: WRONG: " + "; ".join(WRONG))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--citizens", type=int, default=2000)
    parser.add_argument("--tickets", type=int, default=5000)
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--db-pool", type=int, default=None,
                        help="PostgreSQL connections per server worker (maxsize= in the database URL; Tortoise's "
                             "default is 5)")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("rush: wrk is not installed (apt-get install wrk)")
    uvloop.run(rush(args.citizens, args.tickets, args.sockets, args.db_pool, args.keep_logs))


if __name__ == "__main__":
    main()
