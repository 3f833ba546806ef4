"""Notifications (issue 9): 20,000 outbox events per round through 1, 2 and 4 `ehall worker`
processes to loopback fakes of WeChat and SMS, then a round in which one worker is killed with SIGKILL
midway; next to a bare Sanic endpoint measured in the same run (bench/run.py's helpers).

    .venv/bin/python bench/notify.py [--events 20000] [--citizens 5000] [--wechat-share 0.4]
                                     [--workers 1,2,4] [--crash-workers 3] [--sms aliyun|tencent]
                                     [--delay-ms 2] [--batch-size 100] [--concurrency 16] [--keep-logs]

Each fake runs in a process of its own (bench/notify_fakes.py), so the fakes do not share a core's GIL
with the workers. Figures only: nothing is asserted; lost and doubled sends are printed as counted.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import (PG_ADMIN_URL, REDIS_URL, OtherWork, Result, bare_hello, cpu_by_process,  # noqa: E402
                       create_database, datastore_cpu_seconds, delete_redis_prefix, drop_database, free_port,
                       machine_busy_seconds, measure, process_tree_cpu_seconds, run_command, start_server,
                       stop_server)

CITY_HALL = "150900"
TICKETS = "pages/tickets/detail?id="
APPOINTMENTS = "pages/appointments/detail?id="
EVENTS_PER_TRANSACTION = 200     # a domain's transaction records one event; the bench writes them in bulk
POLL_SECONDS = 0.25


# --- the fakes, each in its own process ------------------------------------------------------------

class FakeProcess:
    """bench/notify_fakes.py: its hello line (address, credentials) and `take` (what it received)."""

    def __init__(self, kind: str, delay_ms: float, log_path: Path):
        self.kind = kind
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "notify_fakes.py"), kind,
                                         "--delay-ms", str(delay_ms)], cwd=ROOT, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self._log, text=True)
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"fake {kind} did not start; see {log_path}")
        self.hello = json.loads(line)

    def take(self) -> dict:
        self.process.stdin.write("take\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.flush()
                self.process.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        self._log.close()


# --- seeding (run as a child with the bench's environment: the runtime's cipher encrypts the phones) ---

async def seed_citizens(count: int, wechat_share: float) -> None:
    import asyncpg

    from backend.app import build_runtime, close_runtime
    from backend.cli import _settings
    from backend.kit.pii import PHONE
    from notify.templates import load_rules

    settings = _settings()
    rt = build_runtime(settings)
    template_ids = sorted(load_rules(settings.resolved_config_dir()).wechat_template_ids())
    random.seed(9)
    now = datetime.now(timezone.utc)
    connection = await asyncpg.connect(settings.database_url)
    try:
        first = await connection.fetchval("SELECT coalesce(max(id), 0) FROM citizen")
        phones = [f"139{first + n:08d}" for n in range(1, count + 1)]
        rows = [(rt.cipher.encrypt(phone, purpose=PHONE), rt.cipher.index(phone, purpose=PHONE),
                 random.choices(("zh", "mn", "en"), (7, 2, 1))[0], True, True, now, now) for phone in phones]
        async with connection.transaction():
            await connection.copy_records_to_table(
                "citizen", records=rows, columns=["phone_enc", "phone_index", "preferred_language", "notify_wechat",
                                                  "notify_sms", "created_at", "updated_at"])
            ids = [r["id"] for r in await connection.fetch("SELECT id FROM citizen WHERE id > $1 ORDER BY id", first)]
            on_wechat = ids[:int(len(ids) * wechat_share)]
            await connection.copy_records_to_table(
                "wechat_identity", records=[(settings.wechat.appid, f"o-bench-{cid}", cid, now) for cid in on_wechat],
                columns=["appid", "openid", "citizen_id", "created_at"])
            # consents enough for every event of the run: WeChat carries all of theirs
            await connection.copy_records_to_table(
                "notify_subscription_credit", records=[(cid, tid, 100000, now) for cid in on_wechat
                                                        for tid in template_ids],
                columns=["citizen_id", "template_id", "remaining", "updated_at"])
    finally:
        await connection.close()
        await close_runtime(rt)
    print(json.dumps({"citizens": ids, "wechat": len(on_wechat)}))


# --- one round ------------------------------------------------------------------------------------

@dataclass
class Round:
    name: str
    workers: int
    events: int = 0
    sent: int = 0
    send_seconds: float = 0.0      # first to last sent_at
    wall_seconds: float = 0.0      # first occurred_at to last sent_at
    p50: float = 0.0
    p99: float = 0.0
    worker_cpu: float = 0.0
    datastore_cpu: float = 0.0
    fakes_cpu: float = 0.0
    machine_cpu: float = 0.0
    elapsed: float = 0.0
    statuses: dict = field(default_factory=dict)
    by_channel: dict = field(default_factory=dict)
    lost: int = 0                  # events of which no provider received anything
    doubled: int = 0               # references a provider received more than once
    extra: int = 0                 # messages beyond one per reference
    both: int = 0                  # events that reached a person through both channels
    received: int = 0
    killed_at_sent: int | None = None
    timed_out: bool = False
    refused: int = 0
    transactions: int = 0          # PostgreSQL transactions of this database (each statement outside one is one)

    @property
    def rate(self) -> float:
        return self.sent / self.send_seconds if self.send_seconds else 0.0

    @property
    def other_cpu(self) -> float:
        return max(0.0, self.machine_cpu - self.worker_cpu - self.datastore_cpu - self.fakes_cpu)


class NotifyBench:
    def __init__(self, args: argparse.Namespace, env: dict[str, str], database: str, var_dir: Path):
        self.args = args
        self.env = env
        self.database = database
        self.var_dir = var_dir
        self.fakes: dict[str, FakeProcess] = {}
        self.citizens: list[int] = []
        self.item = ""
        self.next_aggregate = 1
        self.pg = None
        self.polls = 0

    async def _transactions(self) -> int:
        await asyncio.sleep(1.2)   # backends flush their counters at most once a second, and when they end
        return await self.pg.fetchval("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1",
                                      self.database)

    def _events(self, count: int) -> list[tuple[str, str, str]]:
        rows = []
        for _ in range(count):
            number = self.next_aggregate
            self.next_aggregate += 1
            citizen = random.choice(self.citizens)
            if random.random() < 0.6:   # a ticket call (urgent), else a booking (waits out quiet hours: off here)
                payload = {"citizen": citizen, "hall": CITY_HALL, "ticket": number,
                           "number": f"A{number % 1000:03d}", "window": f"{number % 40 + 1:02d}"}
                rows.append(("ticket.called", f"ticket:{number}", json.dumps(payload)))
            else:
                payload = {"citizen": citizen, "hall": CITY_HALL, "appointment": number, "item": self.item,
                           "starts_at": "2026-12-03T01:30:00+00:00"}
                rows.append(("appointment.booked", f"appointment:{number}", json.dumps(payload)))
        return rows

    async def _record(self, rows: list[tuple[str, str, str]]) -> tuple[int, int]:
        """Writes the events as the domains would, a transaction at a time; answers their id range."""
        low = await self.pg.fetchval("SELECT coalesce(max(id), 0) FROM outbox_event") + 1
        for start in range(0, len(rows), EVENTS_PER_TRANSACTION):
            chunk = rows[start:start + EVENTS_PER_TRANSACTION]
            async with self.pg.transaction():
                now = datetime.now(timezone.utc)
                await self.pg.executemany(
                    "INSERT INTO outbox_event (kind, aggregate, payload, occurred_at, attempts) "
                    "VALUES ($1, $2, $3::jsonb, $4, 0)", [(k, a, p, now) for k, a, p in chunk])
        high = await self.pg.fetchval("SELECT max(id) FROM outbox_event")
        return low, high

    async def _start_workers(self, count: int, env: dict[str, str], tag: str) -> list[asyncio.subprocess.Process]:
        workers = []
        for number in range(count):
            log_path = self.var_dir / f"worker-{tag}-{number}.log"
            with open(log_path, "wb") as log:
                workers.append(await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "backend.cli", "worker", env=env, cwd=ROOT, stdout=log,
                    stderr=asyncio.subprocess.STDOUT))
        deadline = time.monotonic() + 60
        for number, worker in enumerate(workers):
            log_path = self.var_dir / f"worker-{tag}-{number}.log"
            while "ehall worker " not in log_path.read_text(errors="replace"):
                if worker.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not start:\n{log_path.read_text()[-3000:]}")
                await asyncio.sleep(0.1)
        return workers

    async def _progress(self, low: int, high: int) -> tuple[int, int, int]:
        self.polls += 1
        row = await self.pg.fetchrow(
            "SELECT (SELECT count(*) FROM outbox_event WHERE id BETWEEN $1 AND $2 AND processed_at IS NULL) AS waiting,"
            " (SELECT count(*) FROM notify_delivery WHERE event_id BETWEEN $1 AND $2"
            "  AND status IN ('pending', 'sending', 'failed')) AS open,"
            " (SELECT count(*) FROM notify_delivery WHERE event_id BETWEEN $1 AND $2 AND status = 'sent') AS sent",
            low, high)
        return row["waiting"], row["open"], row["sent"]

    async def run_round(self, name: str, workers: int, *, kill: bool = False) -> Round:
        result = Round(name=name, workers=workers)
        env = dict(self.env)
        if kill:
            env["EHALL_NOTIFY__LEASE_SECONDS"] = str(self.args.crash_lease_seconds)
        for fake in self.fakes.values():
            fake.take()   # forget what an earlier round left in flight
        processes = await self._start_workers(workers, env, name.replace(" ", "-"))
        transactions_before, polls_before = await self._transactions(), self.polls
        rows = self._events(self.args.events)
        pids = [p.pid for p in processes]
        fake_pids = [fake.process.pid for fake in self.fakes.values()]
        worker_before = {pid: process_tree_cpu_seconds(pid) for pid in pids}
        store_before, machine_before = datastore_cpu_seconds(self.database), machine_busy_seconds()
        fakes_before = sum(process_tree_cpu_seconds(pid) for pid in fake_pids)
        others_before = cpu_by_process()
        started = time.monotonic()
        low, high = await self._record(rows)
        result.events = high - low + 1
        victim = processes[0] if kill else None
        worker_cpu = 0.0
        deadline = time.monotonic() + self.args.timeout
        try:
            while True:
                waiting, open_, sent = await self._progress(low, high)
                if victim is not None and victim.returncode is None and sent >= result.events // 2:
                    worker_cpu += process_tree_cpu_seconds(victim.pid) - worker_before.pop(victim.pid)
                    victim.send_signal(signal.SIGKILL)
                    await victim.wait()
                    result.killed_at_sent = sent
                    print(f"  {name}: SIGKILL to worker pid {victim.pid} at {sent} sent", file=sys.stderr,
                          flush=True)
                if not waiting and not open_:
                    break
                if time.monotonic() > deadline:
                    result.timed_out = True
                    break
                await asyncio.sleep(POLL_SECONDS)
            result.elapsed = time.monotonic() - started
            worker_cpu += sum(process_tree_cpu_seconds(pid) - before for pid, before in worker_before.items())
            result.worker_cpu = worker_cpu
            result.datastore_cpu = datastore_cpu_seconds(self.database) - store_before
            result.machine_cpu = machine_busy_seconds() - machine_before
            result.fakes_cpu = sum(process_tree_cpu_seconds(pid) for pid in fake_pids) - fakes_before
            self.others.add(others_before, result.elapsed)
        finally:
            for process in processes:
                await stop_server(process)
        # less the bench's own: its progress polls, and the one reading the counter
        result.transactions = await self._transactions() - transactions_before - (self.polls - polls_before) - 1
        await self._figures(result, low, high)
        await self._count_received(result, low, high)
        print(f"  {name}: {result.sent} sent in {result.send_seconds:.1f} s, {result.rate:.0f}/s, lost {result.lost}, "
              f"doubled {result.doubled}", file=sys.stderr, flush=True)
        return result

    async def _figures(self, result: Round, low: int, high: int) -> None:
        row = await self.pg.fetchrow(
            "SELECT count(*) AS sent, min(d.sent_at) AS first, max(d.sent_at) AS last, min(e.occurred_at) AS origin,"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM d.sent_at - e.occurred_at)) AS p50,"
            " percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM d.sent_at - e.occurred_at)) AS p99"
            " FROM notify_delivery d JOIN outbox_event e ON e.id = d.event_id"
            " WHERE d.event_id BETWEEN $1 AND $2 AND d.sent_at IS NOT NULL", low, high)
        result.sent = row["sent"]
        if row["sent"]:
            result.send_seconds = (row["last"] - row["first"]).total_seconds()
            result.wall_seconds = (row["last"] - row["origin"]).total_seconds()
            result.p50, result.p99 = row["p50"], row["p99"]
        for r in await self.pg.fetch("SELECT channel, status, count(*) AS n FROM notify_delivery"
                                     " WHERE event_id BETWEEN $1 AND $2 GROUP BY 1, 2 ORDER BY 1, 2", low, high):
            result.statuses[f"{r['channel']}:{r['status']}"] = r["n"]

    async def _count_received(self, result: Round, low: int, high: int) -> None:
        """What each fake received, by reference: every event should reach its person once."""
        events = {r["id"]: r["aggregate"] for r in await self.pg.fetch(
            "SELECT id, aggregate FROM outbox_event WHERE id BETWEEN $1 AND $2", low, high)}
        by_page = {(TICKETS if a.startswith("ticket:") else APPOINTMENTS) + a.partition(":")[2]: event_id
                   for event_id, a in events.items()}
        sms_of = {f"ehall-d{r['id']}": r["event_id"] for r in await self.pg.fetch(
            "SELECT id, event_id FROM notify_delivery WHERE event_id BETWEEN $1 AND $2 AND channel = 'sms'", low, high)}
        reached: Counter = Counter()
        channels_of: dict[int, set] = {}
        for kind, fake in self.fakes.items():
            taken = fake.take()
            result.refused += taken["refused"]
            references = by_page if kind == "wechat" else sms_of
            channel = "wechat" if kind == "wechat" else "sms"
            received = 0
            for reference, count in taken["sent"].items():
                received += count
                event_id = references.get(reference)
                if event_id is None:
                    continue   # not this round's (cannot happen with fresh ids; counted in `received` only)
                reached[event_id] += count
                channels_of.setdefault(event_id, set()).add(channel)
                if count > 1:
                    result.doubled += 1
                    result.extra += count - 1
            result.by_channel[channel] = received
            result.received += received
        result.lost = sum(1 for event_id in events if not reached[event_id])
        result.both = sum(1 for channels in channels_of.values() if len(channels) > 1)


# --- report ---------------------------------------------------------------------------------------

def print_report(rounds: list[Round], bare: list[Result], setup: str) -> None:
    bare_rate = sum(b.rate for b in bare) / len(bare)
    bare_ms = sum(b.per_request_ms(b.server_cpu) for b in bare) / len(bare)
    print(setup)
    for b in bare:
        print(f"bare GET /hello (1 process, wrk): {b.rate:,.0f} req/s, {b.per_request_ms(b.server_cpu):.3f} ms CPU "
              f"per request, other {b.other_cpu / b.elapsed:.0%} of a core")
    header = (f"{'round':<22} {'events':>6} {'sent':>6} {'deliv/s':>7} {'wall/s':>6} {'vs bare':>7} {'p50 s':>6} "
              f"{'p99 s':>6} {'wrk cpu':>7} {'ms/dlv':>6} {'x bare':>6} {'db ms':>6} {'fakes':>6} {'other':>6} "
              f"{'xact':>5} {'lost':>5} {'dbl':>4} {'extra':>5} {'both':>4}")
    print()
    print(header)
    print("-" * len(header))
    for r in rounds:
        ms = r.worker_cpu * 1000 / r.sent if r.sent else float("nan")
        print(f"{r.name:<22} {r.events:>6} {r.sent:>6} {r.rate:>7.0f} {r.sent / r.wall_seconds if r.wall_seconds else 0:>6.0f} "
              f"{r.rate / bare_rate:>7.3f} {r.p50:>6.2f} {r.p99:>6.2f} {r.worker_cpu / r.elapsed:>7.0%} {ms:>6.2f} "
              f"{ms / bare_ms:>6.0f} {r.datastore_cpu * 1000 / max(1, r.sent):>6.2f} {r.fakes_cpu / r.elapsed:>6.0%} "
              f"{r.other_cpu / r.elapsed:>6.0%} {r.transactions / max(1, r.sent):>5.1f} {r.lost:>5} {r.doubled:>4} {r.extra:>5} {r.both:>4}"
              + ("  TIMED OUT" if r.timed_out else ""))
    print(f"""
deliv/s  sent deliveries over the time from the first to the last sent_at (notify_delivery)
wall/s   the same over the time from the first event's occurred_at to the last sent_at
vs bare  deliv/s over bare /hello req/s ({bare_rate:,.0f}), one process each
p50/p99  delay from the event (outbox_event.occurred_at) to the send (sent_at); the events come as a burst
wrk cpu  CPU of all the round's `ehall worker` processes, in shares of one core (the machine has {os.cpu_count()})
ms/dlv   worker CPU per sent delivery; x bare: that over bare CPU per request ({bare_ms:.3f} ms)
db ms    PostgreSQL (this database's backends, shared processes) and Redis CPU per sent delivery
fakes    CPU of the fake providers' processes; other: everything else busy on the machine
xact     PostgreSQL transactions per sent delivery (pg_stat_database; every statement outside a transaction is
         one, asyncpg's reset of a connection given back to the pool too): the round trips that set the pace
lost     events no fake received anything for; dbl: references (OutId / page) received more than once;
extra    messages beyond one per reference; both: events that reached a person by WeChat and by SMS""")
    for r in rounds:
        statuses = ", ".join(f"{k} {v}" for k, v in r.statuses.items())
        received = ", ".join(f"{k} {v}" for k, v in r.by_channel.items())
        killed = f"; SIGKILL at {r.killed_at_sent} sent" if r.killed_at_sent is not None else ""
        print(f"{r.name}: deliveries {statuses}; fakes received {received} (refused {r.refused}){killed}")


# --- main -----------------------------------------------------------------------------------------

async def bench(args: argparse.Namespace) -> None:
    import asyncpg

    var_dir = Path(tempfile.mkdtemp(prefix="ehall-bench-notify-"))
    database = f"ehall_bench_{secrets.token_hex(4)}"
    prefix = f"ehall-bench-{secrets.token_hex(4)}:"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EHALL_")}
    env |= {
        "EHALL_VAR_DIR": str(var_dir),
        "EHALL_DATABASE_URL": PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database,
        "EHALL_REDIS_URL": REDIS_URL, "EHALL_REDIS_PREFIX": prefix,
        # quiet hours off: a booking's SMS at night would wait for the morning (a ticket call never waits)
        "EHALL_NOTIFY__QUIET_HOURS": "00:00-00:00",
        # many events per phone within the round: the per-phone limits would postpone most of them
        "EHALL_NOTIFY__SMS_PER_PHONE_TEMPLATE_PER_30_SECONDS": "1000000",
        "EHALL_NOTIFY__SMS_PER_PHONE_PER_HOUR": "1000000", "EHALL_NOTIFY__SMS_PER_PHONE_PER_DAY": "1000000",
        "EHALL_NOTIFY__BATCH_SIZE": str(args.batch_size), "EHALL_NOTIFY__CONCURRENCY": str(args.concurrency),
    }
    started_at = datetime.now(timezone.utc)
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    setup = (f"ehall notify bench  {started_at:%Y-%m-%d %H:%M} UTC  events={args.events} per round  "
             f"citizens={args.citizens} (WeChat {args.wechat_share:.0%})  sms={args.sms}  fakes answer in "
             f"{args.delay_ms:g} ms  batch_size={args.batch_size}  concurrency={args.concurrency}\n"
             f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
             f"at the start: {uptime}")
    print(setup, flush=True)
    fakes: dict[str, FakeProcess] = {}
    bare = None
    run = None
    try:
        fakes[args.sms] = FakeProcess(args.sms, args.delay_ms, var_dir / f"fake-{args.sms}.log")
        fakes["wechat"] = FakeProcess("wechat", args.delay_ms, var_dir / "fake-wechat.log")
        sms, wechat = fakes[args.sms].hello, fakes["wechat"].hello
        if args.sms == "aliyun":
            env |= {"EHALL_SMS__BACKEND": "aliyun", "EHALL_SMS__ALIYUN__ENDPOINT": sms["address"],
                    "EHALL_SMS__ALIYUN__PROTOCOL": "http", "EHALL_SMS__ALIYUN__ACCESS_KEY_ID": sms["access_key_id"],
                    "EHALL_SMS__ALIYUN__ACCESS_KEY_SECRET": sms["access_key_secret"]}
        else:
            env |= {"EHALL_SMS__BACKEND": "tencent", "EHALL_SMS__TENCENT__ENDPOINT": sms["address"],
                    "EHALL_SMS__TENCENT__PROTOCOL": "http", "EHALL_SMS__TENCENT__SECRET_ID": sms["secret_id"],
                    "EHALL_SMS__TENCENT__SECRET_KEY": sms["secret_key"],
                    "EHALL_SMS__TENCENT__SDK_APP_ID": sms["sdk_app_id"]}
        env |= {"EHALL_WECHAT__API_BASE_URL": wechat["base_url"], "EHALL_WECHAT__APPID": wechat["appid"],
                "EHALL_WECHAT__SECRET": wechat["secret"]}

        await create_database(database)
        await run_command(sys.executable, "-m", "backend.cli", "migrate", env=env)
        await run_command(sys.executable, "-m", "backend.cli", "seed", env=env, timeout=300)
        seeded = json.loads((await run_command(sys.executable, str(ROOT / "bench" / "notify.py"), "--seed-citizens",
                                               str(args.citizens), "--wechat-share", str(args.wechat_share),
                                               env=env, timeout=300)).strip().splitlines()[-1])

        bare_port = free_port()
        bare = await start_server([sys.executable, str(ROOT / "bench" / "bare_app.py"), "--port", str(bare_port),
                                   "--workers", "1"], env=env, log_path=var_dir / "bare.log",
                                  ready_url=f"http://127.0.0.1:{bare_port}/hello")
        files = var_dir / "files"
        files.mkdir()
        bare_results = [await measure(bare_hello(), f"http://127.0.0.1:{bare_port}", seconds=args.bare_seconds,
                                      connections=32, threads=1, server_pid=bare.pid, database=None, files=files,
                                      output=var_dir / "wrk-bare-1.txt")]
        print(f"  bare /hello: {bare_results[0].rate:,.0f} req/s", file=sys.stderr, flush=True)

        run = NotifyBench(args, env, database, var_dir)
        run.fakes = fakes
        run.citizens = seeded["citizens"]
        run.others = OtherWork(database)
        run.pg = await asyncpg.connect(env["EHALL_DATABASE_URL"])
        run.item = await run.pg.fetchval("SELECT code FROM service_item ORDER BY code LIMIT 1")
        rounds = []
        for workers in args.workers:
            rounds.append(await run.run_round(f"{workers} worker{'s' if workers > 1 else ''}", workers))
        if args.crash_workers:
            rounds.append(await run.run_round(f"crash: {args.crash_workers}, kill 1", args.crash_workers, kill=True))
        bare_results.append(await measure(bare_hello(), f"http://127.0.0.1:{bare_port}", seconds=args.bare_seconds,
                                          connections=32, threads=1, server_pid=bare.pid, database=None,
                                          files=files, output=var_dir / "wrk-bare-2.txt"))
        print()
        print_report(rounds, bare_results, f"(figures of the run above; {seeded['wechat']} citizens on WeChat)")
        print(f"\nat the end: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
        print("other processes busiest during the rounds (PostgreSQL's shared processes included):")
        for line in run.others.busiest() or ["(none above 2% of a core)"]:
            print(f"  {line}")
        print(f"logs: {var_dir} ({'kept' if args.keep_logs else 'removed'})")
    finally:
        if run is not None and run.pg is not None:
            await run.pg.close()
        await stop_server(bare)
        for fake in fakes.values():
            fake.stop()
        await drop_database(database)
        await delete_redis_prefix(prefix)
        if not args.keep_logs:
            shutil.rmtree(var_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20000, help="events recorded per round")
    parser.add_argument("--citizens", type=int, default=5000)
    parser.add_argument("--wechat-share", type=float, default=0.4,
                        help="share of the citizens with a WeChat identity and consents (the rest: SMS)")
    parser.add_argument("--workers", default="1,2,4", help="comma-separated worker counts, one round each")
    parser.add_argument("--crash-workers", type=int, default=3, help="workers of the crash round (0: none)")
    parser.add_argument("--crash-lease-seconds", type=float, default=5, help="notify.lease_seconds of the crash round")
    parser.add_argument("--sms", choices=("aliyun", "tencent"), default="aliyun")
    parser.add_argument("--delay-ms", type=float, default=2.0, help="each fake send answers after this long")
    parser.add_argument("--batch-size", type=int, default=100, help="EHALL_NOTIFY__BATCH_SIZE")
    parser.add_argument("--concurrency", type=int, default=16, help="EHALL_NOTIFY__CONCURRENCY")
    parser.add_argument("--timeout", type=float, default=600, help="seconds a round may take at most")
    parser.add_argument("--bare-seconds", type=float, default=5)
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--seed-citizens", type=int, help=argparse.SUPPRESS)   # the child that seeds
    args = parser.parse_args()
    if args.seed_citizens is not None:
        asyncio.run(seed_citizens(args.seed_citizens, args.wechat_share))
        return
    args.workers = [int(n) for n in args.workers.split(",") if n.strip()]
    asyncio.run(_cleaned_up_on_signal(bench(args)))


async def _cleaned_up_on_signal(work) -> None:
    """SIGINT or SIGTERM cancels the run, so its `finally` stops the processes and drops the database,
    also when started in the background (where a shell leaves SIGINT ignored)."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    try:
        await work
    except asyncio.CancelledError:
        sys.exit("bench: stopped by a signal; processes stopped, database dropped")


if __name__ == "__main__":
    main()
