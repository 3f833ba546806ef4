"""The applications (办件) speed scenario of issue 8 against a real `ehall serve` (PostgreSQL + Redis, 2
workers) with 100,000 cases seeded, next to a bare Sanic endpoint measured in the same run:

- owners read their own case, `GET /api/v1/cases/{id}`, each with their own access token;
- progress lookups without an account, `POST /api/v1/progress/lookup` {receipt, tail} (the per-address
  and per-receipt limits are raised for the bench, and still counted in Redis on every lookup);
- an approver pages through their department's queue of 10,000 waiting cases,
  `GET /api/v1/staff/cases?waiting=true&page=N`: all pages under load (wrk), then every page once in
  order on one connection, for the time of each page, deep pages included;
- bare `GET /hello`, before and after.

    apt-get install wrk                                  # once: the load generator (Debian's wrk 4.1.0)
    .venv/bin/python bench/cases.py [--cases 100000] [--citizens 2000] [--queue 10000] [--seconds 10]
                                    [--connections 32[,8]] [--page-size 20] [--db-pool N] [--keep-logs]

Seeding: bench/seed_cases.py, run with the server's environment (same database, same PII keys):
the citizens through the accounts service, the cases in bulk with PostgreSQL COPY (see its
docstring for what is written and what is not). Figures only: nothing here is asserted, except that
each scenario's probe gets the answer it should (a wrong one is printed as WRONG and the run exits
non-zero) and that the queue holds the cases the seed put in it."""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import re
import resource
import secrets
import shutil
import sys
import time
from pathlib import Path

import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as harness  # noqa: E402  (bench/run.py: servers, wrk, CPU counters)

CASES_SETTINGS = {
    # every lookup comes from 127.0.0.1, and a run sends tens of thousands: the per-address limit (60 an
    # hour by default) and the per-receipt limit (10 an hour) are raised, not removed: both are still
    # counted in Redis on every lookup, as in production
    "EHALL_CASES__LOOKUPS_PER_IP_PER_HOUR": "1000000000",
    "EHALL_CASES__LOOKUPS_PER_RECEIPT_PER_HOUR": "1000000",
    # the citizens' and the approver's tokens are made before the scenarios (seeding takes a while on a
    # busy machine): an hour instead of 15 minutes, so none expires mid-run
    "EHALL_AUTH__ACCESS_TTL_SECONDS": "3600",
}
APPROVER = "bench-approver"
SAMPLE = 20_000          # distinct requests in each wrk request file
WRONG: list[str] = []


def write_requests(path: Path, lines: list[tuple[str, str, str, str]]) -> Path:
    path.write_text("".join("\t".join(fields) + "\n" for fields in lines))
    return path


def scenario(name: str, lines: list[tuple[str, str, str, str]], path: Path, expect: int = 200) -> harness.Scenario:
    method, first_path, token, body = lines[0]
    headers = ({"Authorization": f"Bearer {token}"} if token else {}) | (
        {"Content-Type": "application/json"} if body else {})
    return harness.Scenario(name, first_path, script="requests.lua", method=method,
                            env={"BENCH_REQUESTS_FILE": str(write_requests(path, lines))},
                            probe_headers=headers, probe_body=body.encode() if body else None, expect=expect)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] if ordered else float("nan")


async def walk_queue(http: httpx.AsyncClient, token: str, pages: int, page_size: int, pid: int,
                     database: str) -> tuple[dict[int, float], dict]:
    """Every page of the queue once, in order, on one keep-alive connection: the time of each page."""
    times: dict[int, float] = {}
    seen: set[int] = set()
    server_before, store_before = harness.process_tree_cpu_seconds(pid), harness.datastore_cpu_seconds(database)
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    for page in range(1, pages + 1):
        sent = time.perf_counter()
        answer = await http.get("/api/v1/staff/cases", params={"waiting": "true", "page": page, "page_size": page_size},
                                headers={"Authorization": f"Bearer {token}"})
        times[page] = time.perf_counter() - sent
        if answer.status_code != 200:
            WRONG.append(f"queue page {page}: {answer.status_code} {answer.text[:200]}")
            break
        seen.update(item["id"] for item in answer.json()["items"])
    elapsed = time.monotonic() - started
    self_after = resource.getrusage(resource.RUSAGE_SELF)
    return times, {"elapsed": elapsed, "distinct": len(seen),
                   "server_cpu": harness.process_tree_cpu_seconds(pid) - server_before,
                   "store_cpu": harness.datastore_cpu_seconds(database) - store_before,
                   "client_cpu": (self_after.ru_utime + self_after.ru_stime)
                   - (self_before.ru_utime + self_before.ru_stime)}


def table(results: list[harness.Result]) -> None:
    baseline = results[0]
    bare_cpu = baseline.per_request_ms(baseline.server_cpu)
    header = (f"{'scenario':<46} {'conns':>5} {'requests':>8} {'req/s':>7} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
              f"{'max ms':>7} {'errors':>6} {'vs bare':>7} {'srv cpu':>7} {'x bare':>6} {'db cpu':>6} {'wrk cpu':>7} "
              f"{'other':>6} {'B/resp':>6}")
    print(header)
    print(f"{'':<46} {'':>5} {'':>8} {'':>7} {'':>7} {'':>7} {'':>7} {'':>7} {'':>6} {'req/s':>7} {'ms/req':>7} "
          f"{'cpu':>6} {'ms/req':>6} {'% core':>7} {'% core':>6}")
    print("-" * len(header))
    for r in results:
        w = r.wrk
        name, conns = r.name.rsplit(" @", 1)
        print(f"{name:<46} {conns:>5} {r.requests:>8} {r.rate:>7.0f} {w['p50_us'] / 1000:>7.2f} "
              f"{w['p90_us'] / 1000:>7.2f} {w['p99_us'] / 1000:>7.2f} {w['max_us'] / 1000:>7.1f} {r.errors:>6} "
              f"{r.rate / baseline.rate:>7.3f} "
              f"{r.per_request_ms(r.server_cpu):>7.3f} {r.per_request_ms(r.server_cpu) / bare_cpu:>6.1f} "
              f"{r.per_request_ms(r.datastore_cpu):>6.3f} {r.generator_cpu / r.elapsed:>7.0%} "
              f"{r.other_cpu / r.elapsed:>6.0%} {w['bytes'] / max(1, r.requests):>6.0f}")
        if r.errors:
            print(f"    errors: status {w['status_errors']} (not 2xx/3xx), connect {w['connect_errors']}, read "
                  f"{w['read_errors']}, write {w['write_errors']}, timeout {w['timeouts']}")
            WRONG.append(f"{r.name}: {r.errors} errors")
        if r.probe_status != r.expect:
            print(f"    WRONG ANSWER: the probe got {r.probe_status}, expected {r.expect}")
            WRONG.append(f"{r.name}: probe {r.probe_status}")


async def cases_bench(args: argparse.Namespace) -> None:
    password = "bench password " + secrets.token_hex(8)
    wrk_version = (await harness.run_command("wrk", "-v", env=dict(os.environ), ok_codes=(0, 1))).split("\n", 1)[0]
    print(f"ehall cases bench  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  backend=postgres  workers=2  "
          f"cases={args.cases}  citizens={args.citizens}  queue={args.queue}  seconds={args.seconds:g} (+1 s warm-up)  "
          f"connections={','.join(map(str, args.connections))}  PostgreSQL pool per worker="
          f"{args.db_pool or '5 (Tortoise default)'}")
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; generator: {wrk_version}; everything (servers, "
          f"PostgreSQL, Redis, wrk) shares these cores", flush=True)
    others = harness.OtherWork(None)
    others_before, run_started = harness.cpu_by_process(), time.monotonic()
    async with harness.servers("postgres", workers=2, keep_logs=args.keep_logs, settings=CASES_SETTINGS, name="cases",
                               database_query=f"maxsize={args.db_pool}" if args.db_pool else "") as running:
        others.database = running.database
        env, files = running.env, running.files
        made = await harness.run_command(sys.executable, "-m", "backend.cli", "staff", "create", APPROVER, "--role",
                                         f"approver@{args.hall}/{args.department}",
                                         env=env | {"EHALL_STAFF_PASSWORD": password})
        staff_id = int(re.search(r"\(id (\d+)\)", made)[1])
        started = time.monotonic()
        await harness.run_command(sys.executable, str(harness.ROOT / "bench" / "seed_cases.py"), str(args.cases),
                                  str(args.citizens), str(files), "--staff-id", str(staff_id), "--queue",
                                  str(args.queue), "--department", args.department, env=env, timeout=3600)
        seed = json.loads((files / "seed.json").read_text())
        t = seed["timings"]
        print(f"seeded in {time.monotonic() - started:.0f} s: {seed['citizens']} citizens with a session "
              f"({t['citizens_s']:.0f} s, through the accounts service), {seed['cases']} cases of {seed['items']} "
              f"items, {seed['history']} history rows, {seed['steps']} steps, {seed['materials']} materials from "
              f"{seed['documents']} documents (built {t['build_s']:.0f} s, COPY + ANALYZE {t['copy_s']:.0f} s)")
        print(f"  statuses: {seed['statuses']}")
        print(f"  queue: department {seed['queue_department']} of hall {seed['queue_hall']}, approver "
              f"{APPROVER} (approver@{args.hall}/{args.department})\n", flush=True)
        rng = random.Random(8)
        tokens = {}
        for line in (files / "citizens.tsv").read_text().splitlines():
            citizen_id, token, _, _ = line.split("\t")
            tokens[citizen_id] = token
        cases = [line.split("\t") for line in (files / "cases.tsv").read_text().splitlines()]
        sample = rng.sample(cases, min(SAMPLE, len(cases)))
        owner_lines = [("GET", f"/api/v1/cases/{c[0]}", tokens[c[1]], "") for c in sample]
        lookup_lines = [("POST", "/api/v1/progress/lookup", "",
                         json.dumps({"receipt": c[2], "tail": c[4] if n % 2 else c[5]}))
                        for n, c in enumerate(rng.sample(cases, min(SAMPLE, len(cases))))]
        async with httpx.AsyncClient(base_url=running.ehall, timeout=60) as http:
            login = await http.post("/api/v1/staff/login", json={"username": APPROVER, "password": password})
            login.raise_for_status()
            approver = login.json()["access_token"]
            first = await http.get("/api/v1/staff/cases", params={"waiting": "true", "page_size": args.page_size},
                                   headers={"Authorization": f"Bearer {approver}"})
            first.raise_for_status()
            total = first.json()["total"]
            pages = math.ceil(total / args.page_size)
            print(f"  the approver's queue (waiting=true): {total} cases, {pages} pages of {args.page_size}",
                  flush=True)
            if total != args.queue:
                WRONG.append(f"queue holds {total} cases, {args.queue} seeded")
            queue_lines = [("GET", f"/api/v1/staff/cases?waiting=true&page={page}&page_size={args.page_size}",
                            approver, "") for page in range(1, pages + 1)]
            scenarios = [harness.bare_hello()]
            for conns in args.connections:
                scenarios += [(scenario(f"GET /api/v1/cases/{{id}} (owner's token) @{conns}", owner_lines,
                                        files / "owners.txt"), conns),
                              (scenario(f"POST /api/v1/progress/lookup (receipt+tail) @{conns}", lookup_lines,
                                        files / "lookups.txt"), conns),
                              (scenario(f"GET staff/cases?waiting=true&page=1..{pages} @{conns}", queue_lines,
                                        files / "queue.txt"), conns)]
            scenarios.append(harness.bare_hello("bare GET /hello (again, drift check)"))
            results = []
            bases = {"bare": running.bare, "ehall": running.ehall}
            pids = {"bare": running.bare_pid, "ehall": running.ehall_pid}
            for number, entry in enumerate(scenarios):
                item, conns = entry if isinstance(entry, tuple) else (entry, args.connections[0])
                result = await harness.measure(item, bases[item.target], seconds=args.seconds, connections=conns,
                                               threads=args.threads, server_pid=pids[item.target],
                                               database=running.database, files=files,
                                               output=running.var_dir / f"wrk-{number:02d}.txt")
                result.name = item.name if " @" in item.name else f"{item.name} @{conns}"
                results.append(result)
                print(f"  measured {result.name}: {result.requests} requests", file=sys.stderr, flush=True)
            # one owner's answer and one lookup's, to show what was measured
            owner = await http.get(owner_lines[0][1], headers={"Authorization": f"Bearer {owner_lines[0][2]}"})
            looked = await http.post("/api/v1/progress/lookup", content=lookup_lines[0][3],
                                     headers={"Content-Type": "application/json"})
            walks = [await walk_queue(http, approver, pages, args.page_size, running.ehall_pid, running.database)
                     for _ in range(args.walks)]
        print()
        table(results)
        print(f"""
vs bare  req/s of the row over req/s of the first bare row
srv cpu  CPU per request of ehall (all its processes); x bare: that over bare /hello's, in bare requests
db cpu   CPU per request of PostgreSQL (this database's backends and the shared processes) and Redis
wrk cpu  the load generator in shares of one core ({args.threads} thread(s)); other: the rest of the machine
B/resp   bytes per answer, headers included
p50 ≈ connections / req/s: with 32 connections most of a request's latency is waiting behind the others""")
        print(f"\nanswer sizes: owner's case {len(owner.content)} B JSON ({len(owner.json()['timeline'])} history "
              f"rows, "
              f"{len(owner.json()['steps'])} steps), lookup {looked.status_code} {len(looked.content)} B")
        print(f"\nthe approver's queue, every page once in order on one connection ({args.walks} walk(s), "
              f"page_size={args.page_size}, {pages} pages, OFFSET up to {(pages - 1) * args.page_size}):")
        print(f"    {'walk':<6} {'pages':>5} {'distinct':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'page 1':>7} "
              f"{'middle':>7} {'last':>7} {'srv cpu ms/page':>15} {'db cpu ms/page':>14} {'client % core':>13}")
        for n, (times, info) in enumerate(walks, start=1):
            values = list(times.values())
            print(f"    {n:<6} {len(values):>5} {info['distinct']:>8} {pct(values, 50) * 1000:>7.1f} "
                  f"{pct(values, 99) * 1000:>7.1f} {max(values) * 1000:>7.1f} {times[1] * 1000:>7.1f} "
                  f"{times[(pages + 1) // 2] * 1000:>7.1f} {times[pages] * 1000:>7.1f} "
                  f"{info['server_cpu'] * 1000 / len(values):>15.2f} {info['store_cpu'] * 1000 / len(values):>14.2f} "
                  f"{info['client_cpu'] / info['elapsed']:>13.0%}")
            if info["distinct"] != total:
                WRONG.append(f"walk {n}: {info['distinct']} distinct cases over the pages, the queue holds {total}")
        deep = [v for _, v in sorted(times.items())]
        parts = [deep[len(deep) * i // 10:len(deep) * (i + 1) // 10] for i in range(10)]
        print("    last walk by depth, p50 ms of each tenth of the pages (first to deepest): "
              + " ".join(f"{pct(part, 50) * 1000:.1f}" for part in parts if part))
        log = (running.var_dir / "ehall.log").read_text(errors="replace")
        print(f"\nehall log: {log.count('unhandled error')} unhandled errors, "
              f"{log.count(chr(34) + 'level' + chr(34) + ': ' + chr(34) + 'error')} error lines")
        elapsed = time.monotonic() - run_started
        others.add(others_before, elapsed)
        print(f"load average after the run {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        print("other processes busiest during the run:")
        for line in others.busiest() or ["(none above 2% of a core)"]:
            print(f"  {line}")
        if args.keep_logs:
            print(f"logs kept in {running.var_dir}")
    if WRONG:
        sys.exit("cases bench: WRONG: " + "; ".join(WRONG))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--citizens", type=int, default=2_000, help="owners, each with a session (token)")
    parser.add_argument("--queue", type=int, default=10_000, help="cases waiting in the approver's department")
    parser.add_argument("--department", default="nmyj", help="the approver's department (农牧业局 by default)")
    parser.add_argument("--hall", default="150900", help="the approver's hall")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", default="32",
                        help="comma-separated: each scenario runs once per value (e.g. 32,8)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--page-size", type=int, default=20, help="the queue's page size (the API's default: 20)")
    parser.add_argument("--walks", type=int, default=2, help="walks through every page of the queue, in order")
    parser.add_argument("--db-pool", type=int, default=None, help="PostgreSQL connections per worker (maxsize=)")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args()
    args.connections = [int(c) for c in args.connections.split(",") if c.strip()]
    if not shutil.which("wrk"):
        sys.exit("cases bench: wrk is not installed (apt-get install wrk)")
    uvloop.run(cases_bench(args))


if __name__ == "__main__":
    main()
