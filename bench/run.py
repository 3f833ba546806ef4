"""Load scenarios against a real `ehall serve`, next to a bare Sanic endpoint measured in the same run,
driven by wrk (Debian's `wrk`, `apt-get install wrk`) with the Lua scripts in bench/lua/.

    .venv/bin/python bench/run.py [--backend postgres|sqlite] [--workers 2] [--seconds 10]
                                  [--connections 32] [--threads 1] [--only sms,staff] [--keep-logs]

Starts bench/bare_app.py and `python -m backend.cli serve --workers N` (the same N) on free loopback
ports, runs each scenario with wrk for --seconds after 1 s of warm-up, prints a table, and stops
everything it started. The postgres backend makes a throwaway database and Redis key prefix and
removes both at the end. Figures only: nothing here is asserted.

wrk runs on the same machine as the servers and competes with them for its cores; its own CPU is a
column of the table, so a reader sees whether it set the pace.

Adding a scenario: write an async function `xxx_scenarios(bench) -> list[Scenario]` next to
catalogue_scenarios and account_scenarios (it may prepare rows and files first, through
`bench.http`, `bench.ehall_command` and `bench.write_lines`) and add it to SCENARIO_GROUPS.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx
import uvloop

ROOT = Path(__file__).resolve().parent.parent
LUA_DIR = ROOT / "bench" / "lua"
PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
STAFF_USERNAME = "bench-admin"
STAFF_SESSIONS = 4           # staff/me rotates over this many logged-in sessions (tokens.lua)
SEARCH_WORD = "营业执照"
CITY_HALL = "150900"
WARMUP_SECONDS = 1.0
REQUEST_TIMEOUT = "30s"
STARTUP_TIMEOUT = 90.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Scenario:
    """One wrk run. `script` is a file of bench/lua/ and `env` its BENCH_* settings; method, path,
    headers and body also make the one request sent beforehand (the probe) to check the answer's
    status and, for catalogue rows, its size."""
    name: str
    path: str                                  # with its query string, percent-encoded
    script: str = "get.lua"
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    env: dict[str, str] = field(default_factory=dict)
    expect: int = 200
    target: str = "ehall"                      # or "bare"
    catalogue: bool = False
    probe_headers: dict[str, str] | None = None  # when the load's headers differ per request (tokens.lua)
    probe_body: bytes | None = None              # when the load's body differs per request (sms_code.lua)


@dataclass
class Bench:
    """What a scenario function may use to prepare its rows and the files its Lua script reads."""
    bare: str                     # base URL of the bare app
    ehall: str                    # base URL of ehall
    env: dict[str, str]           # ehall's environment, for `ehall ...` commands against the same database
    files: Path                   # a temporary directory for token and body files
    http: httpx.AsyncClient       # a client of ehall, for setting up
    password: str                 # the password of STAFF_USERNAME (admin)

    def write_lines(self, name: str, lines: list[str]) -> Path:
        path = self.files / name
        path.write_text("".join(line + "\n" for line in lines))
        return path

    async def ehall_command(self, *args: str, env: dict[str, str] | None = None) -> str:
        return await run_command(sys.executable, "-m", "backend.cli", *args, env=self.env | (env or {}))


@dataclass
class Result:
    name: str
    wrk: dict                     # BENCH_RESULT of bench/lua/common.lua
    server_cpu: float             # CPU seconds of the server under test during the measured run
    datastore_cpu: float
    generator_cpu: float          # CPU seconds of wrk
    machine_cpu: float
    probe_status: int
    expect: int
    catalogue: bool
    wire_bytes: int = 0
    json_bytes: int = 0
    encoding: str = ""

    @property
    def elapsed(self) -> float:
        return self.wrk["duration_us"] / 1e6

    @property
    def requests(self) -> int:
        return self.wrk["requests"]

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed if self.elapsed else 0.0

    @property
    def errors(self) -> int:
        return sum(self.wrk[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors",
                                         "timeouts"))

    @property
    def other_cpu(self) -> float:
        """Busy CPU of everything else on the machine (other people's work, the idle server, the kernel)."""
        return max(0.0, self.machine_cpu - self.server_cpu - self.datastore_cpu - self.generator_cpu)

    def per_request_ms(self, cpu_seconds: float) -> float:
        return cpu_seconds * 1000 / self.requests if self.requests else float("nan")


# --- processes --------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stat_fields(pid: int | str) -> list[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _cpu_of(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS if fields else 0.0  # utime + stime


def process_tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and all its descendants (`ehall serve` runs its worker in a child process)."""
    parents = {int(e.name): int(f[1]) for e in Path("/proc").iterdir() if e.name.isdigit()
               for f in [_stat_fields(e.name)] if f}
    tree, grown = {pid}, True
    while grown:
        children = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= children
        grown = bool(children)
    return sum(_cpu_of(_stat_fields(member)) for member in tree)


def cpu_by_process() -> dict[int, tuple[float, str]]:
    """CPU seconds so far and the command line of every process on the machine."""
    seen = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(entry.name)
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                continue
            if fields:
                seen[int(entry.name)] = (_cpu_of(fields), command)
    return seen


class OtherWork:
    """CPU of the processes that are not this bench's (nor its servers', wrk's, or this run's database
    backends and Redis), summed over the scenarios, so a reader sees what else ran on the machine. A
    process that starts and ends within one scenario is missed; the "other" column still counts it."""

    def __init__(self, database: str | None):
        self.database = database
        self.spent: dict[tuple[int, str], float] = {}
        self.elapsed = 0.0

    def _ours(self, snapshot: dict[int, tuple[float, str]]) -> set[int]:
        ours = {os.getpid()}
        parents = {pid: int(f[1]) for pid in snapshot for f in [_stat_fields(pid)] if f}
        grown = True
        while grown:  # the servers, their workers, wrk
            children = {pid for pid, parent in parents.items() if parent in ours} - ours
            ours |= children
            grown = bool(children)
        return ours

    def add(self, before: dict[int, tuple[float, str]], elapsed: float) -> None:
        after = cpu_by_process()
        ours = self._ours(after)
        self.elapsed += elapsed
        for pid, (cpu, command) in after.items():
            if pid in ours or not command or command.startswith("redis-server") or (
                    self.database and f" {self.database} " in command):
                continue
            self.spent[(pid, command)] = self.spent.get((pid, command), 0.0) + cpu - before.get(pid, (0.0, ""))[0]

    def busiest(self, top: int = 5) -> list[str]:
        ranked = sorted(((spent, command) for (_, command), spent in self.spent.items()
                         if spent > 0.02 * self.elapsed), reverse=True)[:top]
        return [f"{spent / self.elapsed:>5.0%} of a core  {command[:110]}" for spent, command in ranked]


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy (all cores, all processes) since boot."""
    user, nice, system, idle, iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def datastore_cpu_seconds(database: str | None) -> float:
    """CPU of the PostgreSQL backends serving `database`, PostgreSQL's shared background processes
    (WAL writer, checkpointer, ...) and redis-server; other databases' backends are not counted."""
    if database is None:
        return 0.0
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        backend_of_a_database = "127.0.0.1(" in command or "[local]" in command
        if name.startswith("redis-server") or (name.startswith("postgres") and (
                not backend_of_a_database or f" {database} " in command)):
            total += _cpu_of(_stat_fields(entry.name))
    return total


async def start_server(args: list[str], *, env: dict[str, str], log_path: Path,
                       ready_url: str) -> asyncio.subprocess.Process:
    with open(log_path, "wb") as log:
        process = await asyncio.create_subprocess_exec(*args, env=env, cwd=ROOT, stdout=log,
                                                       stderr=asyncio.subprocess.STDOUT)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    async with httpx.AsyncClient(timeout=5) as http:
        while time.monotonic() < deadline and process.returncode is None:
            try:
                if (await http.get(ready_url)).status_code == 200:
                    return process
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.25)
    await stop_server(process)
    raise RuntimeError(f"{args[1:3]} did not become ready; see {log_path}:\n{log_path.read_text()[-3000:]}")


async def stop_server(process: asyncio.subprocess.Process | None) -> None:
    if process is None or process.returncode is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(process.wait(), timeout=20)
    except TimeoutError:
        process.kill()
        await process.wait()


async def run_command(*args: str, env: dict[str, str], timeout: float = 120, ok_codes=(0,)) -> str:
    process = await asyncio.create_subprocess_exec(*args, env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.STDOUT)
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout=timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    if process.returncode not in ok_codes:
        raise RuntimeError(f"{' '.join(args[1:])} failed:\n{output.decode()}")
    return output.decode()


async def create_database(name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def drop_database(name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def delete_redis_prefix(prefix: str) -> int:
    from redis.asyncio import Redis

    redis = Redis.from_url(REDIS_URL)
    deleted = 0
    try:
        async for key in redis.scan_iter(match=prefix + "*", count=1000):
            deleted += await redis.delete(key)
    finally:
        await redis.aclose()
    return deleted


# --- load -------------------------------------------------------------------------------------

def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def run_wrk(scenario: Scenario, url: str, *, seconds: float, connections: int, threads: int,
                  files: Path, output: Path | None) -> dict:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "BENCH_LUA_DIR": str(LUA_DIR),
           "BENCH_METHOD": scenario.method, "BENCH_PATH": scenario.path,
           "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in scenario.headers.items())} | scenario.env
    if scenario.body is not None:
        body_file = files / f"body-{secrets.token_hex(4)}.json"
        body_file.write_bytes(scenario.body)
        env["BENCH_BODY_FILE"] = str(body_file)
    process = await asyncio.create_subprocess_exec(
        "wrk", "-t", str(threads), "-c", str(max(connections, threads)), "-d", f"{seconds:g}s",
        "--timeout", REQUEST_TIMEOUT, "--latency", "-s", str(LUA_DIR / scenario.script), url,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    printed, _ = await asyncio.wait_for(process.communicate(), timeout=seconds + 60)
    text = printed.decode(errors="replace")
    if output is not None:
        output.write_text(text)
    line = next((line for line in text.splitlines() if line.startswith("BENCH_RESULT ")), None)
    if process.returncode or line is None:
        raise RuntimeError(f"wrk failed for {scenario.name}:\n{text[-3000:]}")
    return json.loads(line.removeprefix("BENCH_RESULT "))


async def probe(scenario: Scenario, base: str) -> httpx.Response:
    """The scenario's request once, before the load: wrk counts only non-2xx/3xx answers as errors,
    so a 200 where a 304 is expected is caught here."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        try:
            return await _probe(http, scenario)
        except httpx.TimeoutException:
            raise SystemExit(f"bench: {scenario.name.strip()}: the server did not answer one request in 30 s "
                             "after the previous scenario; see bench/README.md, 'Known problem: SQLite'") from None


async def _probe(http: httpx.AsyncClient, scenario: Scenario) -> httpx.Response:
    return await http.request(scenario.method, scenario.path,
                              headers=scenario.probe_headers if scenario.probe_headers is not None
                              else scenario.headers,
                              content=scenario.probe_body if scenario.probe_body is not None else scenario.body)


async def measure(scenario: Scenario, base: str, *, seconds: float, connections: int, threads: int,
                  server_pid: int, database: str | None, files: Path, output: Path) -> Result:
    checked = await probe(scenario, base)
    await run_wrk(scenario, base + "/", seconds=WARMUP_SECONDS, connections=connections, threads=threads,
                  files=files, output=None)
    server_before, store_before = process_tree_cpu_seconds(server_pid), datastore_cpu_seconds(database)
    generator_before, machine_before = children_cpu_seconds(), machine_busy_seconds()
    counted = await run_wrk(scenario, base + "/", seconds=seconds, connections=connections, threads=threads,
                            files=files, output=output)
    return Result(
        name=scenario.name, wrk=counted,
        server_cpu=process_tree_cpu_seconds(server_pid) - server_before,
        datastore_cpu=datastore_cpu_seconds(database) - store_before,
        generator_cpu=children_cpu_seconds() - generator_before,
        machine_cpu=machine_busy_seconds() - machine_before,
        probe_status=checked.status_code, expect=scenario.expect, catalogue=scenario.catalogue,
        wire_bytes=checked.num_bytes_downloaded, json_bytes=len(checked.content),
        encoding=checked.headers.get("content-encoding", "identity"))


# --- scenarios --------------------------------------------------------------------------------

def bare_hello(name: str = "bare GET /hello") -> Scenario:
    return Scenario(name, "/hello", target="bare")


def query(path: str, **params) -> str:
    return f"{path}?{urlencode(params, quote_via=quote)}"


async def catalogue_scenarios(bench: Bench) -> list[Scenario]:
    # what a phone sends: gzip, except the row marked identity
    gzip = {"Accept-Encoding": "gzip"}
    hall_items = query("/api/v1/service-items", hall=CITY_HALL, page_size=50)
    first = await bench.http.get(hall_items, headers=gzip)
    first.raise_for_status()
    return [
        Scenario("GET /healthz", "/healthz"),
        Scenario("GET /api/v1/halls (tree)", "/api/v1/halls", headers=gzip, catalogue=True),
        Scenario(f"GET /api/v1/halls/{CITY_HALL}", f"/api/v1/halls/{CITY_HALL}", headers=gzip, catalogue=True),
        Scenario(f"GET service-items?q={SEARCH_WORD}", query("/api/v1/service-items", q=SEARCH_WORD),
                 headers=gzip, catalogue=True),
        Scenario(f"GET service-items?hall={CITY_HALL}&page_size=50", hall_items, headers=gzip, catalogue=True),
        Scenario("  same, If-None-Match -> 304", hall_items, headers=gzip | {"If-None-Match": first.headers["etag"]},
                 expect=304),
        Scenario("  same, uncompressed (identity)", hall_items, headers={"Accept-Encoding": "identity"},
                 catalogue=True),
    ]


async def account_scenarios(bench: Bench) -> list[Scenario]:
    tokens = []
    for _ in range(STAFF_SESSIONS):
        login = await bench.http.post("/api/v1/staff/login",
                                      json={"username": STAFF_USERNAME, "password": bench.password})
        login.raise_for_status()
        tokens.append(login.json()["access_token"])
    tokens_file = bench.write_lines("staff-tokens.txt", tokens)
    digit = random.choice("3456789")
    login_body = json.dumps({"username": STAFF_USERNAME, "password": bench.password}).encode()
    return [
        Scenario("POST /api/v1/auth/sms-code", "/api/v1/auth/sms-code", script="sms_code.lua", method="POST",
                 env={"BENCH_PHONE_DIGIT": digit, "BENCH_PHONE_START": str(random.randrange(10**7))},
                 probe_headers={"Content-Type": "application/json"},
                 probe_body=json.dumps({"phone": f"1{digit}{random.randrange(10**9):09d}"}).encode(), expect=202),
        Scenario(f"GET /api/v1/staff/me ({STAFF_SESSIONS} sessions)", "/api/v1/staff/me", script="tokens.lua",
                 env={"BENCH_TOKENS_FILE": str(tokens_file)},
                 probe_headers={"Authorization": f"Bearer {tokens[0]}"}),
        Scenario("POST /api/v1/staff/login (argon2id)", "/api/v1/staff/login", script="post_json.lua",
                 method="POST", body=login_body, probe_headers={"Content-Type": "application/json"}),
    ]


# The lead adds, once appointments and queueing have landed (see bench/README.md, "Adding the rush
# scenarios"): booking_storm_scenarios, ticket_rush_scenarios, and the call-next fan-out, which wrk
# cannot drive alone (websockets).
SCENARIO_GROUPS: list[Callable[[Bench], Awaitable[list[Scenario]]]] = [
    catalogue_scenarios,
    account_scenarios,
]


# --- report -----------------------------------------------------------------------------------

def print_table(results: list[Result]) -> None:
    baseline = results[0].rate or 1.0
    baseline_cpu = results[0].per_request_ms(results[0].server_cpu) or float("nan")
    header = (f"{'scenario':<44} {'requests':>8} {'req/s':>7} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
              f"{'errors':>6} {'vs bare':>7} {'srv cpu':>7} {'x bare':>6} {'db cpu':>6} {'wrk cpu':>7} "
              f"{'other':>6} {'B/resp':>6}")
    print(header)
    print(f"{'':<44} {'':>8} {'':>7} {'':>7} {'':>7} {'':>7} {'':>6} {'req/s':>7} {'ms/req':>7} {'cpu':>6} "
          f"{'ms/req':>6} {'% core':>7} {'% core':>6} {'':>6}")
    print("-" * len(header))
    for r in results:
        w = r.wrk
        print(f"{r.name:<44} {r.requests:>8} {r.rate:>7.0f} {w['p50_us'] / 1000:>7.2f} {w['p90_us'] / 1000:>7.2f} "
              f"{w['p99_us'] / 1000:>7.2f} {r.errors:>6} {r.rate / baseline:>7.3f} "
              f"{r.per_request_ms(r.server_cpu):>7.3f} {r.per_request_ms(r.server_cpu) / baseline_cpu:>6.1f} "
              f"{r.per_request_ms(r.datastore_cpu):>6.3f} {r.generator_cpu / r.elapsed:>7.0%} "
              f"{r.other_cpu / r.elapsed:>6.0%} {w['bytes'] / max(1, r.requests):>6.0f}")
    print(f"""
vs bare  req/s of the row over req/s of bare /hello (first row)
srv cpu  CPU time per request of the server under test (all its processes)
x bare   srv cpu of the row over srv cpu of bare /hello: what a request costs the server, in bare requests
db cpu   CPU time per request of PostgreSQL (this run's backends, the shared background processes) and Redis
wrk cpu  the load generator, in shares of one core (it has --threads threads): well under its threads' share
         means the server, not the client, set the pace
other    everything else busy on the machine (other work, the kernel), in shares of one core
B/resp   bytes wrk read per answer, headers included
The machine has {os.cpu_count()} cores in all.""")
    for r in results:
        if r.errors:
            w = r.wrk
            print(f"errors in {r.name.strip()}: status {w['status_errors']} (not 2xx/3xx), connect "
                  f"{w['connect_errors']}, read {w['read_errors']}, write {w['write_errors']}, timeout {w['timeouts']}")
        if r.probe_status != r.expect:
            print(f"WRONG ANSWER in {r.name.strip()}: the probe got {r.probe_status}, expected {r.expect}")

    print(f"\n{'catalogue response body (probe)':<44} {'on the wire':>11} {'JSON':>7}  content-encoding")
    for r in results:
        if r.catalogue:
            print(f"{r.name:<44} {r.wire_bytes:>11} {r.json_bytes:>7}  {r.encoding}")


# --- main -------------------------------------------------------------------------------------

# The bench's own settings on top of the default configuration: every request comes from 127.0.0.1,
# the sms-code scenario sends thousands of codes and the login scenario logs one account in over and over.
BENCH_SETTINGS = {
    # lift the per-address and per-phone limits for the OTP scenario
    "EHALL_OTP__PER_IP_PER_HOUR": "1000000000",
    "EHALL_OTP__PER_PHONE_PER_MINUTE": "1000000",
    "EHALL_OTP__PER_PHONE_PER_HOUR": "1000000",
    "EHALL_OTP__PER_PHONE_PER_DAY": "1000000",
    "EHALL_OTP__LOGIN_PER_IP_PER_MINUTE": "1000000000",
    # the login scenario logs one staff member in over and over, from one address, 32 at a time:
    # lift the per-username and per-address attempt limits and let every argon2 check queue
    # (by default a burst beyond 2 running + 16 waiting is turned away with 503 busy)
    "EHALL_STAFF__LOGIN_ATTEMPTS_PER_15_MINUTES": "1000000000",
    "EHALL_STAFF__LOGIN_ATTEMPTS_PER_IP_PER_15_MINUTES": "1000000000",
    "EHALL_STAFF__PASSWORD_CHECKS_WAITING": "100000",
}


@dataclass
class Servers:
    """The bare app and ehall as `servers()` started them, with what a run needs to drive and measure them."""
    var_dir: Path                 # logs; removed at the end unless kept
    files: Path                   # a temporary directory for token and body files
    env: dict[str, str]           # ehall's environment, for `ehall ...` commands against the same database
    database: str | None          # this run's PostgreSQL database (None on SQLite)
    bare: str                     # base URLs
    ehall: str
    bare_pid: int
    ehall_pid: int

    @property
    def ehall_port(self) -> int:
        return int(self.ehall.rsplit(":", 1)[1])


@asynccontextmanager
async def servers(backend: str, *, workers: int, keep_logs: bool, settings: dict[str, str],
                  name: str = "bench", database_query: str = "") -> AsyncIterator[Servers]:
    """Starts bare_app.py and `ehall serve` (N workers each) in a fresh environment: every EHALL_* of the
    caller dropped, a new EHALL_VAR_DIR, on postgres a throwaway database (its URL ends with `?` and
    `database_query` when given, e.g. Tortoise's `maxsize=20`) and Redis key prefix, then `settings`.
    Stops both, drops the database and the keys, and removes the directory at the end."""
    var_dir = Path(tempfile.mkdtemp(prefix=f"ehall-{name}-"))
    files = var_dir / "files"
    files.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EHALL_")} | {"EHALL_VAR_DIR": str(var_dir)}
    database = prefix = None
    if backend == "postgres":
        database = f"ehall_{name}_{secrets.token_hex(4)}"
        prefix = f"ehall-{name}-{secrets.token_hex(4)}:"
        env |= {"EHALL_DATABASE_URL": PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database
                + (f"?{database_query}" if database_query else ""),
                "EHALL_REDIS_URL": REDIS_URL, "EHALL_REDIS_PREFIX": prefix}
    else:
        env |= {"EHALL_DATABASE_URL": f"sqlite://{var_dir}/ehall.sqlite3"}
    env |= settings
    bare = ehall = None
    try:
        if database:
            await create_database(database)
        bare_port, ehall_port = free_port(), free_port()
        bare = await start_server([sys.executable, str(ROOT / "bench" / "bare_app.py"), "--port", str(bare_port),
                                   "--workers", str(workers)],
                                  env=env, log_path=var_dir / "bare.log",
                                  ready_url=f"http://127.0.0.1:{bare_port}/hello")
        ehall = await start_server([sys.executable, "-m", "backend.cli", "serve", "--port", str(ehall_port),
                                    "--workers", str(workers)],
                                   env=env, log_path=var_dir / "ehall.log",
                                   ready_url=f"http://127.0.0.1:{ehall_port}/readyz")
        yield Servers(var_dir=var_dir, files=files, env=env, database=database,
                      bare=f"http://127.0.0.1:{bare_port}", ehall=f"http://127.0.0.1:{ehall_port}",
                      bare_pid=bare.pid, ehall_pid=ehall.pid)
    finally:
        await stop_server(ehall)
        await stop_server(bare)
        if database:
            await drop_database(database)
        if prefix:
            await delete_redis_prefix(prefix)
        if not keep_logs:
            shutil.rmtree(var_dir, ignore_errors=True)


async def bench(backend: str, *, workers: int, seconds: float, connections: int, threads: int,
                only: list[str], keep_logs: bool) -> None:
    password = "bench password " + secrets.token_hex(8)
    wrk_version = (await run_command("wrk", "-v", env=dict(os.environ), ok_codes=(0, 1))).split("\n", 1)[0]

    print(f"ehall bench  {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}  backend={backend}  workers={workers}  "
          f"seconds={seconds:g} per scenario (+{WARMUP_SECONDS:g} s warm-up)  connections={connections}  "
          f"wrk threads={threads}")
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f}; generator: {wrk_version}")
    print("NOTE: wrk runs on the same machine as the servers, PostgreSQL and Redis, and competes with them "
          "for the same cores; compare rows of one run with each other.", flush=True)

    async with servers(backend, workers=workers, keep_logs=keep_logs, settings=BENCH_SETTINGS) as running:
        var_dir, files, env, database = running.var_dir, running.files, running.env, running.database
        print(f"server logs, wrk output and SMS console output: {var_dir} "
              f"({'kept' if keep_logs else 'removed at the end'})\n", flush=True)
        await run_command(sys.executable, "-m", "backend.cli", "staff", "create", STAFF_USERNAME, "--role", "admin",
                          env=env | {"EHALL_STAFF_PASSWORD": password})
        bases = {"bare": running.bare, "ehall": running.ehall}
        pids = {"bare": running.bare_pid, "ehall": running.ehall_pid}
        async with httpx.AsyncClient(base_url=bases["ehall"], timeout=30) as http:
            context = Bench(bare=bases["bare"], ehall=bases["ehall"], env=env, files=files, http=http,
                            password=password)
            scenarios = [bare_hello()]
            for group in SCENARIO_GROUPS:
                scenarios += [s for s in await group(context)
                              if not only or any(word in s.name for word in only)]
            scenarios.append(bare_hello("bare GET /hello (again, drift check)"))

        results = []
        others = OtherWork(database)
        for number, scenario in enumerate(scenarios):
            others_before, started = cpu_by_process(), time.monotonic()
            result = await measure(scenario, bases[scenario.target], seconds=seconds, connections=connections,
                                   threads=threads, server_pid=pids[scenario.target], database=database,
                                   files=files, output=var_dir / f"wrk-{number:02d}.txt")
            results.append(result)
            others.add(others_before, time.monotonic() - started)
            print(f"  measured {scenario.name.strip()}: {result.requests} requests", file=sys.stderr, flush=True)
        print()
        print_table(results)
        log = (var_dir / "ehall.log").read_text(errors="replace")
        error_lines = log.count('"level": "error"')
        print(f"\nehall log: {log.count('[SMS to ')} SMS printed, {log.count('unhandled error')} unhandled errors, "
              f"{error_lines} error lines")
        print(f"load average after the run: {os.getloadavg()[0]:.2f}")
        print("other processes busiest during the scenarios (PostgreSQL's shared processes included):")
        for line in others.busiest() or ["(none above 2% of a core)"]:
            print(f"  {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--workers", type=int, default=None,
                        help="server processes, for ehall and the bare app alike (default 2 on postgres; sqlite: 1)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per scenario (1-120)")
    parser.add_argument("--connections", "--concurrency", type=int, default=32,
                        help="open keep-alive connections, each with one request in flight (1-1024)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1-10)")
    parser.add_argument("--only", default="", help="comma-separated words: run only the scenarios whose name has one")
    parser.add_argument("--keep-logs", action="store_true", help="keep the temporary directory with the logs")
    args = parser.parse_args()
    workers = args.workers or (2 if args.backend == "postgres" else 1)
    if not 1 <= args.seconds <= 120 or not 1 <= args.connections <= 1024 or not 1 <= args.threads <= 10:
        parser.error("--seconds must be within 1-120, --connections within 1-1024, --threads within 1-10")
    if args.backend == "sqlite" and workers != 1:
        parser.error("SQLite is served by one worker")
    if not shutil.which("wrk"):
        sys.exit("bench: wrk is not installed (apt-get install wrk)")
    only = [word.strip() for word in args.only.split(",") if word.strip()]
    uvloop.run(bench(args.backend, workers=workers, seconds=args.seconds, connections=args.connections,
                     threads=args.threads, only=only, keep_logs=args.keep_logs))


if __name__ == "__main__":
    main()
