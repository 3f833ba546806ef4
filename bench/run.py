"""Load scenarios against a real `ehall serve`, next to a bare Sanic endpoint measured in the same run.

    .venv/bin/python bench/run.py [--backend sqlite|postgres] [--seconds 10] [--concurrency 32]

Starts bench/bare_app.py and `python -m backend.cli serve` (one worker) on free loopback ports, runs
each scenario for --seconds with --concurrency workers (one keep-alive httpx client each), prints a
table, and stops everything it started. The postgres backend makes a throwaway database and Redis key
prefix and removes both at the end. Figures only: nothing here is asserted.

The load generator runs on the same machine as the servers and competes with them for its cores.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import uvloop

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
STAFF_USERNAME = "bench-admin"
SEARCH_WORD = "营业执照"
CITY_HALL = "150900"
WARMUP_SECONDS = 1.0
MAX_REQUESTS_PER_SCENARIO = 2_000_000
REQUEST_TIMEOUT = 30.0
STARTUP_TIMEOUT = 90.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

Send = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


@dataclass
class Scenario:
    name: str
    base: str
    send: Send
    expect: int = 200
    catalogue: bool = False


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    wire_sizes: list[int] = field(default_factory=list)  # body bytes as sent (compressed if it was)
    json_sizes: list[int] = field(default_factory=list)  # body bytes after decoding
    encodings: Counter = field(default_factory=Counter)
    unexpected: Counter = field(default_factory=Counter)

    @property
    def errors(self) -> int:
        return sum(self.unexpected.values())


@dataclass
class Result:
    name: str
    tally: Tally
    elapsed: float
    server_cpu: float  # CPU seconds over the measured run
    datastore_cpu: float
    generator_cpu: float
    machine_cpu: float
    catalogue: bool

    @property
    def other_cpu(self) -> float:
        """Busy CPU of everything else on the machine (other people's work, the idle server, the kernel)."""
        return max(0.0, self.machine_cpu - self.server_cpu - self.datastore_cpu - self.generator_cpu)

    @property
    def requests(self) -> int:
        return len(self.tally.latencies)

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed if self.elapsed else 0.0

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


async def run_command(*args: str, env: dict[str, str], timeout: float = 120) -> str:
    process = await asyncio.create_subprocess_exec(*args, env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.STDOUT)
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout=timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    if process.returncode:
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

async def drive(scenario: Scenario, *, seconds: float, concurrency: int, tally: Tally | None) -> float:
    """Send requests from `concurrency` workers until `seconds` have passed (or the request cap is hit);
    returns the elapsed time. With no tally the run is a warm-up and nothing is recorded."""
    started = time.perf_counter()
    deadline = started + seconds
    sent = itertools.count()

    async def worker() -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=scenario.base, timeout=REQUEST_TIMEOUT, limits=limits) as client:
            while time.perf_counter() < deadline and next(sent) < MAX_REQUESTS_PER_SCENARIO:
                begun = time.perf_counter()
                try:
                    response = await scenario.send(client)
                except httpx.HTTPError as exc:
                    if tally is not None:
                        tally.latencies.append(time.perf_counter() - begun)
                        tally.unexpected[type(exc).__name__] += 1
                    continue
                if tally is None:
                    continue
                tally.latencies.append(time.perf_counter() - begun)
                if response.status_code != scenario.expect:
                    tally.unexpected[response.status_code] += 1
                elif scenario.catalogue:
                    tally.wire_sizes.append(response.num_bytes_downloaded)
                    tally.json_sizes.append(len(response.content))
                    tally.encodings[response.headers.get("content-encoding", "identity")] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def measure(scenario: Scenario, *, seconds: float, concurrency: int, server_pid: int,
                  database: str | None) -> Result:
    await drive(scenario, seconds=WARMUP_SECONDS, concurrency=concurrency, tally=None)
    tally = Tally()
    server_before, store_before = process_tree_cpu_seconds(server_pid), datastore_cpu_seconds(database)
    generator_before, machine_before = time.process_time(), machine_busy_seconds()
    elapsed = await drive(scenario, seconds=seconds, concurrency=concurrency, tally=tally)
    return Result(
        name=scenario.name, tally=tally, elapsed=elapsed, catalogue=scenario.catalogue,
        server_cpu=process_tree_cpu_seconds(server_pid) - server_before,
        datastore_cpu=datastore_cpu_seconds(database) - store_before,
        generator_cpu=time.process_time() - generator_before,
        machine_cpu=machine_busy_seconds() - machine_before)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)  # nearest rank
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def random_phones() -> Callable[[], str]:
    """Distinct mainland mobile numbers for one run: a random start, then counting."""
    prefix = f"1{random.choice('3456789')}"
    counter = itertools.count(random.randrange(10**8))
    return lambda: f"{prefix}{next(counter) % 10**9:09d}"


def build_scenarios(bare: str, ehall: str, *, etag: str, password: str, staff_token: str) -> list[Scenario]:
    next_phone = random_phones()
    hall_items = {"hall": CITY_HALL, "page_size": 50}

    def catalogue_get(path: str, params: dict | None = None, *, encoding: str = "gzip",
                      if_none_match: str | None = None) -> Send:
        # what a phone sends; explicit, so the figures do not depend on which decoders httpx has installed
        headers = {"Accept-Encoding": encoding} | ({"If-None-Match": if_none_match} if if_none_match else {})
        return lambda c: c.get(path, params=params, headers=headers)

    return [
        Scenario("bare GET /hello", bare, lambda c: c.get("/hello")),
        Scenario("GET /healthz", ehall, lambda c: c.get("/healthz")),
        Scenario("GET /api/v1/halls (tree)", ehall, catalogue_get("/api/v1/halls"), catalogue=True),
        Scenario(f"GET /api/v1/halls/{CITY_HALL}", ehall, catalogue_get(f"/api/v1/halls/{CITY_HALL}"),
                 catalogue=True),
        Scenario(f"GET service-items?q={SEARCH_WORD}", ehall,
                 catalogue_get("/api/v1/service-items", {"q": SEARCH_WORD}), catalogue=True),
        Scenario(f"GET service-items?hall={CITY_HALL}&page_size=50", ehall,
                 catalogue_get("/api/v1/service-items", hall_items), catalogue=True),
        Scenario("  same, If-None-Match -> 304", ehall,
                 catalogue_get("/api/v1/service-items", hall_items, if_none_match=etag), expect=304),
        Scenario("  same, uncompressed (identity)", ehall,
                 catalogue_get("/api/v1/service-items", hall_items, encoding="identity"), catalogue=True),
        Scenario("POST /api/v1/auth/sms-code", ehall,
                 lambda c: c.post("/api/v1/auth/sms-code", json={"phone": next_phone()}), expect=202),
        Scenario("GET /api/v1/staff/me (token + session check)", ehall,
                 lambda c: c.get("/api/v1/staff/me", headers={"Authorization": f"Bearer {staff_token}"})),
        Scenario("POST /api/v1/staff/login (argon2id)", ehall,
                 lambda c: c.post("/api/v1/staff/login", json={"username": STAFF_USERNAME, "password": password})),
        Scenario("bare GET /hello (again, drift check)", bare, lambda c: c.get("/hello")),
    ]


# --- report -----------------------------------------------------------------------------------

def print_table(results: list[Result]) -> None:
    baseline = results[0].rate or 1.0
    baseline_cpu = results[0].per_request_ms(results[0].server_cpu) or float("nan")
    header = (f"{'scenario':<44} {'requests':>8} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
              f"{'errors':>6} {'vs bare':>7} {'srv cpu':>7} {'x bare':>6} {'db cpu':>6} {'gen cpu':>7} "
              f"{'other':>6}")
    print(header)
    print(f"{'':<44} {'':>8} {'':>7} {'':>7} {'':>7} {'':>7} {'':>6} {'req/s':>7} {'ms/req':>7} {'cpu':>6} "
          f"{'ms/req':>6} {'% core':>7} {'% core':>6}")
    print("-" * len(header))
    for r in results:
        lat = [v * 1000 for v in r.tally.latencies]
        print(f"{r.name:<44} {r.requests:>8} {r.rate:>7.0f} {percentile(lat, .50):>7.1f} "
              f"{percentile(lat, .95):>7.1f} {percentile(lat, .99):>7.1f} {r.tally.errors:>6} "
              f"{r.rate / baseline:>7.3f} {r.per_request_ms(r.server_cpu):>7.2f} "
              f"{r.per_request_ms(r.server_cpu) / baseline_cpu:>6.1f} "
              f"{r.per_request_ms(r.datastore_cpu):>6.2f} {r.generator_cpu / r.elapsed:>7.0%} "
              f"{r.other_cpu / r.elapsed:>6.0%}")
    print(f"""
vs bare  req/s of the row over req/s of bare /hello (first row)
srv cpu  CPU time per request of the server under test (its process and children)
x bare   srv cpu of the row over srv cpu of bare /hello: what a request costs the server, in bare requests
db cpu   CPU time per request of PostgreSQL (this run's backends, the shared background processes) and Redis
gen cpu  this load generator, in shares of one core: near 100% means the client, not the server, set the pace
other    everything else busy on the machine (other work, the idle server, the kernel), in shares of one core
The machine has {os.cpu_count()} cores in all.""")
    for r in results:
        if r.tally.unexpected:
            print(f"unexpected answers in {r.name.strip()}: "
                  + ", ".join(f"{k}: {v}" for k, v in r.tally.unexpected.items()))

    print(f"\n{'catalogue response body, p50':<44} {'on the wire':>11} {'JSON':>7}  content-encoding")
    for r in results:
        if r.catalogue and r.tally.wire_sizes:
            encodings = ", ".join(f"{k} {v}" for k, v in r.tally.encodings.items())
            print(f"{r.name:<44} {percentile(r.tally.wire_sizes, .50):>11.0f} "
                  f"{percentile(r.tally.json_sizes, .50):>7.0f}  {encodings}")
    print("(bytes of the body only; the catalogue requests send Accept-Encoding: gzip unless marked identity)")


# --- main -------------------------------------------------------------------------------------

async def bench(backend: str, seconds: float, concurrency: int, *, keep_logs: bool) -> None:
    var_dir = Path(tempfile.mkdtemp(prefix="ehall-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EHALL_")}
    password = "bench password " + secrets.token_hex(8)
    env |= {
        "EHALL_VAR_DIR": str(var_dir),
        # every request comes from 127.0.0.1: lift the per-address and per-phone limits for the OTP scenario
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
    database = prefix = None
    if backend == "postgres":
        database = f"ehall_bench_{secrets.token_hex(4)}"
        prefix = f"ehall-bench-{secrets.token_hex(4)}:"
        env |= {"EHALL_DATABASE_URL": PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database,
                "EHALL_REDIS_URL": REDIS_URL, "EHALL_REDIS_PREFIX": prefix}
    else:
        env |= {"EHALL_DATABASE_URL": f"sqlite://{var_dir}/ehall.sqlite3"}

    print(f"ehall bench  {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}  backend={backend}  "
          f"seconds={seconds:g} per scenario (+{WARMUP_SECONDS:g} s warm-up)  concurrency={concurrency}")
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print("NOTE: the load generator (this process) runs on the same machine as the servers and competes "
          "with them for the same cores; absolute figures are lower bounds, compare rows with each other.")
    print(f"server logs and SMS console output: {var_dir} ({'kept' if keep_logs else 'removed at the end'})\n",
          flush=True)

    bare = ehall = None
    try:
        if database:
            await create_database(database)
        bare_port, ehall_port = free_port(), free_port()
        bare = await start_server([sys.executable, str(ROOT / "bench" / "bare_app.py"), "--port", str(bare_port)],
                                  env=env, log_path=var_dir / "bare.log",
                                  ready_url=f"http://127.0.0.1:{bare_port}/hello")
        ehall = await start_server([sys.executable, "-m", "backend.cli", "serve", "--port", str(ehall_port)],
                                   env=env, log_path=var_dir / "ehall.log",
                                   ready_url=f"http://127.0.0.1:{ehall_port}/readyz")
        await run_command(sys.executable, "-m", "backend.cli", "staff", "create", STAFF_USERNAME, "--role", "admin",
                          env=env | {"EHALL_STAFF_PASSWORD": password})
        bare_base, ehall_base = f"http://127.0.0.1:{bare_port}", f"http://127.0.0.1:{ehall_port}"
        async with httpx.AsyncClient(base_url=ehall_base) as http:
            first = await http.get("/api/v1/service-items", params={"hall": CITY_HALL, "page_size": 50},
                                   headers={"Accept-Encoding": "gzip"})
            first.raise_for_status()
            etag = first.headers["etag"]
            login = await http.post("/api/v1/staff/login", json={"username": STAFF_USERNAME, "password": password})
            login.raise_for_status()
            staff_token = login.json()["access_token"]

        results = []
        for scenario in build_scenarios(bare_base, ehall_base, etag=etag, password=password,
                                        staff_token=staff_token):
            pid = (bare if scenario.base == bare_base else ehall).pid
            result = await measure(scenario, seconds=seconds, concurrency=concurrency, server_pid=pid,
                                   database=database)
            results.append(result)
            print(f"  measured {scenario.name.strip()}: {result.requests} requests", file=sys.stderr, flush=True)
        print()
        print_table(results)
        log = (var_dir / "ehall.log").read_text(errors="replace")
        error_lines = log.count('"level": "error"')
        print(f"\nehall log: {log.count('[SMS to ')} SMS printed, {log.count('unhandled error')} unhandled errors, "
              f"{error_lines} error lines")
        print(f"load average after the run: {os.getloadavg()[0]:.2f}")
    finally:
        await stop_server(ehall)
        await stop_server(bare)
        if database:
            await drop_database(database)
        if prefix:
            await delete_redis_prefix(prefix)
        if not keep_logs:
            shutil.rmtree(var_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per scenario (1-120)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent workers (1-256)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the temporary directory with the server logs")
    args = parser.parse_args()
    if not 1 <= args.seconds <= 120 or not 1 <= args.concurrency <= 256:
        parser.error("--seconds must be within 1-120 and --concurrency within 1-256")
    # uvloop (a Sanic dependency) takes a little of the load generator's own cost off the shared cores
    uvloop.run(bench(args.backend, args.seconds, args.concurrency, keep_logs=args.keep_logs))


if __name__ == "__main__":
    main()
