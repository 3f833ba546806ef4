"""ehall serve | worker | migrate | seed | staff create|disable|grants|phone | config"""
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
    from notify.dispatcher import Dispatcher

    configure_logging()
    await init_db(settings)
    rt = build_runtime(settings)
    runner = JobRunner(rt, JOBS)
    dispatcher = Dispatcher(rt, holder=runner.holder)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # one handler per signal (a second add_signal_handler would replace the first)
        loop.add_signal_handler(signum, lambda: (runner.stop(), dispatcher.stop()))
    print(f"ehall worker {runner.holder}: {', '.join(job.name for job in JOBS)}, notification dispatcher\n"
          f"  database {mask_url_password(settings.database_url)}   tick {settings.worker.tick_seconds:g} s   "
          f"lease {settings.worker.lease_seconds:g} s", flush=True)
    try:
        await asyncio.gather(runner.run_until_stopped(settings.worker.stop_grace_seconds),
                             dispatcher.run_until_stopped())
    finally:
        await close_runtime(rt)
        await close_db()
    print("ehall worker stopped", flush=True)


# --- staff ----------------------------------------------------------------------------------------
# The checks are the service's (accounts.staff); the CLI parses, asks for the password and puts the
# service's AppError into words in the operator's language.

def _cli_language() -> str:
    language = os.environ.get("LANG", "")[:2].lower()
    return language if language in ("zh", "mn") else "en"


def _grants(specs: list[str]) -> list:
    from backend.kit.auth import Grant

    grants = []
    for spec in specs:
        # role[@hall][/department], e.g. window_clerk@150921 or approver@150900/zjw
        role, _, scope = spec.partition("@")
        hall, _, department = scope.partition("/")
        grants.append(Grant(role=role, hall=hall or None, department=department or None))
    return grants


def _actor() -> str:
    try:
        return f"system:cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):  # no user name in this container
        return "system:cli"


def _new_password(rt) -> str:
    """EHALL_STAFF_PASSWORD, or typed twice at a terminal; without either, say how to give one."""
    from backend.accounts.staff import PASSWORD_MIN_LENGTH, check_staff_password
    from backend.kit.errors import AppError

    given = os.environ.get("EHALL_STAFF_PASSWORD")
    if given:
        return given
    if not sys.stdin.isatty():
        raise AppError("staff_password_needed", 400)
    language = _cli_language()
    try:
        first = getpass.getpass(rt.messages.render("staff_password_prompt", language, min=PASSWORD_MIN_LENGTH))
        check_staff_password(first)
        second = getpass.getpass(rt.messages.render("staff_password_repeat", language))
    except EOFError:
        raise AppError("staff_password_needed", 400) from None
    if first != second:
        raise AppError("staff_password_mismatch", 400)
    return first


def _run_staff_command(work) -> None:
    """Run `work(rt)` against the database; print what it says, or the service's refusal in words."""
    from backend.kit.db import close_db, init_db
    from backend.kit.errors import AppError

    settings = _settings()

    async def run() -> tuple[bool, str]:
        from backend.app import build_runtime

        await _migrate(settings)
        await init_db(settings)
        rt = build_runtime(settings)
        try:
            return True, await work(rt)
        except AppError as error:
            return False, "ehall: " + rt.messages.render(error.code, _cli_language(), **error.params)
        finally:
            await close_db()
            await rt.wechat.close()
            if rt.redis is not None:
                await rt.redis.aclose()

    try:
        done, said = asyncio.run(run())
    except KeyboardInterrupt:
        sys.exit(130)
    if not done:
        sys.exit(said)
    print(said)


def _sessions_note(settings: Settings) -> str:
    if settings.uses_redis:
        return "their sessions have ended, access tokens included"
    # the running server keeps revoked sessions in its own memory: this process cannot reach it
    return (f"their refresh tokens are revoked; without Redis (EHALL_REDIS_URL) a running server does not "
            f"hear of it, so access tokens it issued work for up to {settings.auth.access_ttl_seconds} s more")


def cmd_staff_create(args: argparse.Namespace) -> None:
    from backend.accounts.staff import check_new_staff, create_staff

    grants = _grants(args.role)
    display_name = args.display_name or args.username

    async def work(rt) -> str:
        # everything but the password first, so that nobody types a password for a refused account
        await check_new_staff(rt, username=args.username, grants=grants, display_name=display_name,
                              phone=args.phone)
        staff = await create_staff(rt, username=args.username, password=_new_password(rt),
                                   display_name=display_name, grants=grants, phone=args.phone, actor=_actor())
        return f"staff {staff.username} created (id {staff.id}) with " + ", ".join(args.role)

    _run_staff_command(work)


def cmd_staff_disable(args: argparse.Namespace) -> None:
    from backend.accounts.staff import disable_staff

    async def work(rt) -> str:
        staff = await disable_staff(rt, username=args.username, actor=_actor())
        return f"staff {staff.username} disabled; {_sessions_note(rt.settings)}"

    _run_staff_command(work)


def cmd_staff_phone(args: argparse.Namespace) -> None:
    from backend.accounts.staff import set_staff_phone
    from backend.kit.identity import normalize_phone
    from backend.kit.pii import mask_phone

    async def work(rt) -> str:
        staff = await set_staff_phone(rt, username=args.username, phone=args.phone, actor=_actor())
        return f"staff {staff.username}: " + ("time-limit warnings go to " + mask_phone(normalize_phone(args.phone))
                                              if args.phone else "no phone; time-limit warnings are not sent")

    _run_staff_command(work)


def cmd_staff_grants(args: argparse.Namespace) -> None:
    from backend.accounts.staff import set_staff_grants

    async def work(rt) -> str:
        staff = await set_staff_grants(rt, username=args.username, grants=_grants(args.role), actor=_actor())
        return f"staff {staff.username} now has {', '.join(args.role)}; {_sessions_note(rt.settings)}"

    _run_staff_command(work)


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
    create.add_argument("--phone", help="mainland mobile number for the SMS warnings of time limits (optional)")
    create.set_defaults(func=cmd_staff_create)
    phone = staff.add_parser("phone", help="set (or, without a number, remove) where a staff member's "
                                           "time-limit warnings go by SMS")
    phone.add_argument("username")
    phone.add_argument("phone", nargs="?")
    phone.set_defaults(func=cmd_staff_phone)
    disable = staff.add_parser("disable", help="disable a staff account and end its sessions")
    disable.add_argument("username")
    disable.set_defaults(func=cmd_staff_disable)
    grants = staff.add_parser("grants", help="replace a staff member's roles and end their sessions")
    grants.add_argument("username")
    grants.add_argument("--role", action="append", required=True,
                        help="role[@hall][/department], repeatable; the roles given replace all others")
    grants.set_defaults(func=cmd_staff_grants)
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
