"""`ehall serve` in processes of its own, as a user runs it: an environment of its own (a fresh PostgreSQL
database and Redis prefix on the postgres backend, a fresh SQLite file otherwise), and servers started
and stopped in it (tests/test_serve.py, tests/queueing/test_cross_process.py)."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx

from tests.conftest import BACKEND, PG_ADMIN_URL, REDIS_URL, delete_redis_prefix

__all__ = ["EHALL", "ROOT", "serve_environment", "ehall_serve"]

EHALL = [sys.executable, "-m", "backend.cli"]
ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@asynccontextmanager
async def serve_environment(var: Path, fake_wechat, label: str) -> AsyncIterator[dict[str, str]]:
    """The environment variables of servers sharing one database (and Redis, on postgres); removed after."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EHALL_")}
    env |= {"EHALL_VAR_DIR": str(var), "EHALL_WECHAT__API_BASE_URL": fake_wechat.base_url,
            "EHALL_WECHAT__APPID": fake_wechat.appid, "EHALL_WECHAT__SECRET": fake_wechat.secret}
    database = None
    prefix = f"ehall-test-{label}-{uuid.uuid4().hex[:8]}:"
    if BACKEND == "postgres":
        database = f"ehall_test_{label}_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(PG_ADMIN_URL)
        await admin.execute(f'CREATE DATABASE "{database}"')
        await admin.close()
        env |= {"EHALL_DATABASE_URL": PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database,
                "EHALL_REDIS_URL": REDIS_URL, "EHALL_REDIS_PREFIX": prefix}
    else:
        env |= {"EHALL_DATABASE_URL": f"sqlite://{var}/ehall.sqlite3"}
    try:
        yield env
    finally:
        if database:
            admin = await asyncpg.connect(PG_ADMIN_URL)
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await admin.close()
        await delete_redis_prefix(prefix)


@asynccontextmanager
async def ehall_serve(env: dict[str, str], log_path: Path, *, workers: int = 1) -> AsyncIterator[str]:
    """`ehall serve` on a free port, once /readyz answers; its base URL. Stopped with SIGINT after."""
    port = _free_port()
    with open(log_path, "wb") as log:
        process = await asyncio.create_subprocess_exec(
            *EHALL, "serve", "--port", str(port), "--workers", str(workers), env=env, cwd=ROOT, stdout=log,
            stderr=asyncio.subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        ready = False
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            for _ in range(160):
                if process.returncode is not None:
                    break
                try:
                    if ready := (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.25)
        assert process.returncode is None, log_path.read_text()
        # a server that never became ready fails here, with its log, not in every test that uses it
        assert ready, f"ehall serve never answered /readyz with 200:\n{log_path.read_text()[-6000:]}"
        yield base
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), timeout=20)
            except TimeoutError:
                process.kill()
                await process.wait()
