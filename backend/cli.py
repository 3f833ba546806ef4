"""ehall serve | worker | migrate | seed | staff create | config"""
from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import shutil
import signal
import sys
from functools import partial
from pathlib import Path

from backend.settings import MissingSecret, Settings, load_settings, mask_url_password

__all__ = ["main"]


def _settings() -> Settings:
    try:
        return load_settings()
    except MissingSecret as exc:
        sys.exit(f"ehall: {exc}")


async def _migrate(settings: Settings) -> None:
    from backend.kit.db import migrate_db

    await migrate_db(settings)


async def _seed(settings: Settings, *, only_if_empty: bool) -> dict[str, int] | None:
    from backend.catalog.loader import catalogue_is_empty, load_catalogue
    from backend.kit.db import close_db, init_db

    await init_db(settings)
    try:
        if only_if_empty and not await catalogue_is_empty():
            return None
        return await load_catalogue(settings.resolved_config_dir() / "catalog")
    finally:
        await close_db()


def cmd_migrate(args: argparse.Namespace) -> None:
    settings = _settings()
    asyncio.run(_migrate(settings))
    print("migrations applied")


def cmd_seed(args: argparse.Namespace) -> None:
    settings = _settings()
    asyncio.run(_migrate(settings))
    counts = asyncio.run(_seed(settings, only_if_empty=False))
    print("catalogue loaded: " + ", ".join(f"{k} {v}" for k, v in (counts or {}).items()))


def cmd_serve(args: argparse.Namespace) -> None:
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    from backend.app import create_app

    settings = _settings()
    asyncio.run(_migrate(settings))
    counts = asyncio.run(_seed(settings, only_if_empty=True))
    if counts:
        print("catalogue loaded into the empty database: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir = Path(settings.var_dir) / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir.resolve())
    base = f"http://{args.host}:{args.port}"
    print(f"ehall on {base}\n  API      {base}/api/v1/halls\n  docs     {base}/docs\n"
          f"  openapi  {base}/docs/openapi.json\n  health   {base}/healthz   ready {base}/readyz\n"
          f"  database {mask_url_password(settings.database_url)}   "
          f"redis {mask_url_password(settings.redis_url) or '(in-process)'}", flush=True)
    if settings.jobs_run_in_serve:
        print("  jobs     run in this process (" + ("SQLite" if settings.is_sqlite else "worker.in_serve") + ")",
              flush=True)
    else:
        print("  jobs     not run here: start `ehall worker` beside it", flush=True)
    loader = AppLoader(factory=partial(create_app, settings, run_jobs=settings.jobs_run_in_serve))
    app = loader.load()
    app.prepare(host=args.host, port=args.port, workers=args.workers, access_log=False,
                single_process=args.workers == 1, motd=False)
    if args.workers == 1:
        # one process, no manager: nothing is left behind if it is killed
        Sanic.serve_single(primary=app)
    else:
        Sanic.serve(primary=app, app_loader=loader)


def cmd_worker(args: argparse.Namespace) -> None:
    settings = _settings()
    asyncio.run(_work(settings))


async def _work(settings: Settings) -> None:
    """Run the periodic jobs until SIGINT or SIGTERM; then let a run in progress finish (within
    worker.stop_grace_seconds) and release the leases, so another worker takes over at once."""
    from backend.app import build_runtime, close_runtime
    from backend.jobs import JOBS
    from backend.kit.db import close_db, init_db
    from backend.kit.jobs import JobRunner
    from backend.kit.observability import configure_logging

    configure_logging()
    await init_db(settings)
    rt = build_runtime(settings)
    runner = JobRunner(rt, JOBS)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, runner.stop)
    print(f"ehall worker {runner.holder}: {', '.join(job.name for job in JOBS)}\n"
          f"  database {mask_url_password(settings.database_url)}   tick {settings.worker.tick_seconds:g} s   "
          f"lease {settings.worker.lease_seconds:g} s", flush=True)
    try:
        await runner.run_until_stopped(settings.worker.stop_grace_seconds)
    finally:
        await close_runtime(rt)
        await close_db()
    print("ehall worker stopped", flush=True)


def cmd_staff_create(args: argparse.Namespace) -> None:
    from backend.accounts.staff import create_staff
    from backend.kit.auth import STAFF_ROLES, Grant
    from backend.kit.db import close_db, init_db
    from backend.kit.errors import AppError

    grants = []
    for spec in args.role:
        # role[@hall][/department], e.g. window_clerk@150921 or approver@150900/zjw
        role, _, scope = spec.partition("@")
        hall, _, department = scope.partition("/")
        if role not in STAFF_ROLES:
            sys.exit(f"ehall: unknown role {role!r}; roles are {', '.join(STAFF_ROLES)}")
        grants.append(Grant(role=role, hall=hall or None, department=department or None))
    password = os.environ.get("EHALL_STAFF_PASSWORD") or getpass.getpass("password: ")
    if len(password) < 10:
        sys.exit("ehall: the password must have at least 10 characters")
    settings = _settings()

    async def run() -> int:
        from backend.app import build_runtime

        await _migrate(settings)
        await init_db(settings)
        rt = build_runtime(settings)
        try:
            staff = await create_staff(rt, username=args.username, password=password,
                                       display_name=args.display_name or args.username, grants=grants)
            return staff.id
        finally:
            await close_db()

    try:
        staff_id = asyncio.run(run())
    except AppError as exc:
        sys.exit(f"ehall: {exc.code}")
    print(f"staff {args.username} created (id {staff_id}) with " + ", ".join(args.role))


def cmd_makemigrations(args: argparse.Namespace) -> None:
    from tortoise.cli.cli import run_cli_async

    argv = ["-c", "backend.kit.db.TORTOISE_ORM", "makemigrations", "ehall"]
    sys.exit(asyncio.run(run_cli_async(argv + (["-n", args.name] if args.name else []))))


def cmd_config(args: argparse.Namespace) -> None:
    print(json.dumps(_settings().masked(), ensure_ascii=False, indent=2, default=str))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ehall", description="Ulanqab government-service centre backend")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="migrate, load the catalogue if empty, and serve HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes; more than one needs EHALL_REDIS_URL and PostgreSQL")
    serve.set_defaults(func=cmd_serve)
    commands.add_parser("worker", help="run the periodic jobs until SIGTERM (beside `ehall serve` on PostgreSQL)") \
        .set_defaults(func=cmd_worker)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    commands.add_parser("seed", help="(re)load the catalogue from config/catalog").set_defaults(func=cmd_seed)
    make = commands.add_parser("makemigrations", help="write a migration for model changes (developers)")
    make.add_argument("-n", "--name", default="")
    make.set_defaults(func=cmd_makemigrations)
    commands.add_parser("config", help="print the effective settings, secrets masked").set_defaults(func=cmd_config)
    staff = commands.add_parser("staff", help="staff accounts").add_subparsers(dest="staff_command", required=True)
    create = staff.add_parser("create", help="create a staff account (password from EHALL_STAFF_PASSWORD or a prompt)")
    create.add_argument("username")
    create.add_argument("--role", action="append", required=True,
                        help="role[@hall][/department], repeatable: window_clerk@150921, approver@150900/zjw, admin")
    create.add_argument("--display-name", default="")
    create.set_defaults(func=cmd_staff_create)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if getattr(args, "command", None) == "serve" and args.workers > 1:
        settings = _settings()
        if not settings.uses_redis or settings.is_sqlite:
            sys.exit("ehall: several workers need EHALL_REDIS_URL and a PostgreSQL EHALL_DATABASE_URL "
                     "(in-process rate limits and SQLite writes do not span processes)")
    args.func(args)


if __name__ == "__main__":
    main()
