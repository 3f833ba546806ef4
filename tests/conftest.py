"""One real ehall server per test run, on SQLite + in-process broker or on PostgreSQL + Redis.

EHALL_TEST_BACKEND=sqlite (default) or postgres picks the pair. The postgres run makes its own
database and Redis key prefix and removes both at the end, so runs never see each other's data.
An unreachable PostgreSQL or Redis fails the run: nothing is skipped.
"""
from __future__ import annotations

import base64
import os
import secrets
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis
from sanic import Sanic

from backend.app import create_app
from backend.catalog.loader import load_catalogue
from backend.kit import clock
from backend.kit.db import close_db, init_db, migrate_db
from backend.runtime import Runtime
from backend.settings import Settings
from tests.fakes.wechat import FakeWechat

BACKEND = os.environ.get("EHALL_TEST_BACKEND", "sqlite")
PG_ADMIN_URL = os.environ.get("EHALL_TEST_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("EHALL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN_ID = uuid.uuid4().hex[:12]
# as long as a key id may be, so that every ciphertext in the tests is as long as it can get
TEST_KEY_ID = "test-key-2026-11"

Sanic.test_mode = True


def pytest_report_header(config) -> str:
    return f"ehall backend: {BACKEND} (run {RUN_ID})"


def pytest_collection_modifyitems(config, items) -> None:
    """The SQLite run leaves out the races that only PostgreSQL's row locks can show, and says so in
    its summary ("deselected"): they run, and must pass, in the PostgreSQL run."""
    if BACKEND == "postgres":
        return
    left_out = [item for item in items if item.get_closest_marker("postgres_only")]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not item.get_closest_marker("postgres_only")]


async def delete_redis_prefix(prefix: str) -> None:
    redis = Redis.from_url(REDIS_URL)
    try:
        async for key in redis.scan_iter(match=prefix + "*", count=500):
            await redis.delete(key)
    finally:
        await redis.aclose()


@pytest.fixture(scope="session")
async def base_settings(tmp_path_factory) -> AsyncIterator[dict]:
    """Settings shared by every app of this run (as keyword overrides of Settings)."""
    overrides: dict = {
        "environment": "test",
        "jwt_secret": secrets.token_urlsafe(32),
        "pii_keys": f"{TEST_KEY_ID}:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "pii_index_key": secrets.token_urlsafe(32),
        "var_dir": tmp_path_factory.mktemp("var"),
        "access_log": True,
        # every test client is 127.0.0.1: per-address limits are tested on their own (X-Forwarded-For)
        "otp": {"per_ip_per_hour": 1_000_000, "login_per_ip_per_minute": 1_000_000},
        "staff": {"login_attempts_per_ip_per_15_minutes": 1_000_000},
        # tests add catalogue rows and bump the revision (tests/rows.py): every request sees them at once
        "catalog": {"revision_check_seconds": 0},
        # tests open windows and finish tickets by writing rows: estimates read them at once
        # (tests/queueing/test_tickets.py::TestEstimateCache runs with the cache on)
        "queueing": {"estimate_cache_seconds": 0},
    }
    if BACKEND == "postgres":
        database = f"ehall_test_{RUN_ID}"
        admin = await asyncpg.connect(PG_ADMIN_URL)
        await admin.execute(f'CREATE DATABASE "{database}"')
        await admin.close()
        prefix = f"ehall-test-{RUN_ID}:"
        redis = Redis.from_url(REDIS_URL)
        await redis.ping()
        await redis.aclose()
        overrides |= {"database_url": PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database,
                      "redis_url": REDIS_URL, "redis_prefix": prefix}
        try:
            yield overrides
        finally:
            await close_db()
            admin = await asyncpg.connect(PG_ADMIN_URL)
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await admin.close()
            await delete_redis_prefix(prefix)
    elif BACKEND == "sqlite":
        overrides |= {"database_url": f"sqlite://{overrides['var_dir']}/ehall.sqlite3", "redis_url": ""}
        yield overrides
    else:
        raise pytest.UsageError(f"EHALL_TEST_BACKEND must be sqlite or postgres, not {BACKEND}")


@pytest.fixture(scope="session")
async def fake_wechat() -> AsyncIterator[FakeWechat]:
    with FakeWechat(appid="wxtest0000000001", secret="test-wechat-secret") as fake:
        yield fake


@pytest.fixture(scope="session")
async def settings(base_settings, fake_wechat) -> Settings:
    return Settings(**base_settings, wechat={
        "appid": fake_wechat.appid, "secret": fake_wechat.secret, "api_base_url": fake_wechat.base_url})


@pytest.fixture(scope="session")
async def database(settings) -> AsyncIterator[dict[str, int]]:
    """Migrated from empty by the project's own migrations, then loaded with the real catalogue."""
    await migrate_db(settings)
    await init_db(settings)
    counts = await load_catalogue(settings.resolved_config_dir() / "catalog")
    yield counts
    await close_db()


class ApiClient(httpx.AsyncClient):
    """An HTTP client of one running server that also knows the server's Runtime, so that a test can
    make the rows it needs through the service functions (a staff account has no sign-up endpoint)."""

    def __init__(self, rt: Runtime, **kwargs):
        super().__init__(**kwargs)
        self.rt = rt


@dataclass
class RunningApp:
    app: Sanic
    base_url: str
    settings: Settings

    @property
    def rt(self) -> Runtime:
        return self.app.ctx.rt

    def client(self, **kwargs) -> ApiClient:
        return ApiClient(self.rt, base_url=self.base_url, timeout=30, **kwargs)


async def start_server(settings: Settings, *, add_routes: Callable[[Sanic], None] | None = None,
                       ) -> tuple[RunningApp, Callable[[], Awaitable[None]]]:
    """`add_routes` adds test-only routes, for kit behaviour no domain route uses yet."""
    app = create_app(settings, name=f"ehall_test_{uuid.uuid4().hex[:8]}", manage_database=False)
    if add_routes is not None:
        add_routes(app)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
    await server.startup()
    await server.before_start()
    await server.after_start()

    async def stop() -> None:
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()

    return RunningApp(app=app, base_url=f"http://127.0.0.1:{port}", settings=settings), stop


@pytest.fixture(scope="session")
async def server(settings, database) -> AsyncIterator[RunningApp]:
    running, stop = await start_server(settings)
    try:
        yield running
    finally:
        await stop()


@pytest.fixture
async def client(server) -> AsyncIterator[httpx.AsyncClient]:
    async with server.client() as http:
        yield http


@pytest.fixture
def frozen_clock() -> Iterator[Callable[[str | datetime], None]]:
    """Stop business time at an instant (an ISO string such as "2026-10-10T10:00:00+08:00", or an aware
    datetime); the server in this process sees the same time. Freeze again to move it; unfrozen after
    the test. Log in after freezing: access tokens are checked against the frozen clock."""
    def freeze(at: str | datetime) -> None:
        clock.freeze(datetime.fromisoformat(at) if isinstance(at, str) else at)

    yield freeze
    clock.unfreeze()


@pytest.fixture
async def app_with(settings, database):
    """Start another real server with some settings changed (e.g. tighter limits); stopped after the test."""
    stops = []

    async def start(**changes) -> RunningApp:
        merged = settings.model_copy(update={
            key: (getattr(settings, key).model_copy(update=value) if isinstance(value, dict) else value)
            for key, value in changes.items()})
        running, stop = await start_server(merged)
        stops.append(stop)
        return running

    yield start
    for stop in stops:
        await stop()
