"""create_app(settings) -> Sanic: the one place where everything is wired."""
from __future__ import annotations

import asyncio
import logging
import time
import uuid

from sanic import Request, Sanic
from sanic.response import HTTPResponse
from sanic_ext import Extend

from backend.accounts.routes import bp as accounts_bp
from backend.accounts.sessions import session_revoked
from backend.appointments.routes import bp as appointments_bp
from backend.cases.routes import bp as cases_bp
from backend.catalog.routes import bp as catalog_bp
from backend.consult.routes import bp as consult_bp
from backend.consult.sockets import bp as consult_sockets_bp
from backend.kit.cache import AnswerCache
from backend.kit.coalesce import Coalescer
from backend.kit.cors import CorsPolicy
from backend.kit.db import close_db, init_db
from backend.kit.errors import AppError
from backend.kit.gate import WorkGate
from backend.kit.http import error_to_problem, problem_response
from backend.kit.i18n import MessageCatalogue
from backend.kit.jobs import JobRunner
from backend.kit.observability import configure_logging, observe_request
from backend.kit.openapi import document_websockets
from backend.kit.pii import PiiCipher, redact_text
from backend.kit.presence import MemoryPresence, RedisPresence
from backend.kit.ratelimit import MemoryRateLimiter, RedisRateLimiter
from backend.kit.realtime import MemoryBroker, RedisBroker
from backend.kit.sessions import MemorySessionRevocations, RedisSessionRevocations
from backend.kit.storage import LocalFileStore
from backend.kit.redis import create_redis
from backend.ops.docs import bp as docs_bp
from backend.ops.docs import docs_config
from backend.ops.routes import bp as ops_bp
from backend.queueing.routes import bp as queueing_bp
from backend.queueing.sockets import bp as queueing_sockets_bp
from backend.runtime import Runtime
from backend.settings import Settings, WechatSettings
from miniprogram_api.official_account_routes import bp as official_account_bp
from miniprogram_api.routes import bp as miniprogram_bp
from miniprogram_api.wechat import WechatGateway
from notify.dispatcher import Dispatcher
from notify.routes import bp as notify_bp
from notify.sockets import bp as notify_sockets_bp
from notify.sms import SmsTemplates, build_sms_sender

__all__ = ["create_app", "build_runtime", "close_runtime"]

log = logging.getLogger("ehall.http")


def build_runtime(settings: Settings, messages: MessageCatalogue | None = None) -> Runtime:
    """The long-lived parts of one process (a server worker, or a CLI command that needs them)."""
    config_dir = settings.resolved_config_dir()
    redis = create_redis(settings)
    keep = settings.auth.access_ttl_seconds
    return Runtime(
        settings=settings,
        messages=messages or MessageCatalogue.load(config_dir / "messages" / "errors.toml"),
        cipher=PiiCipher(settings.pii_keyring, settings.pii_active_key_id,
                         settings.pii_index_key.get_secret_value().encode()),
        limiter=RedisRateLimiter(redis, settings.redis_prefix) if redis else MemoryRateLimiter(),
        broker=RedisBroker(redis, settings.redis_prefix) if redis else MemoryBroker(),
        redis=redis,
        sms=build_sms_sender(settings, SmsTemplates(config_dir / "templates" / "sms.toml")),
        wechat=WechatGateway(settings, redis),
        catalogue_cache=AnswerCache(settings.catalog.cache_seconds),
        catalogue_revision_cache=AnswerCache(settings.catalog.revision_check_seconds, max_entries=1),
        estimates=AnswerCache(settings.queueing.estimate_cache_seconds),
        hints=Coalescer(),
        log=log,
        revocations=RedisSessionRevocations(redis, settings.redis_prefix, keep, session_revoked) if redis
        else MemorySessionRevocations(keep),
        password_checks=WorkGate(running=settings.staff.password_checks_running,
                                 waiting=settings.staff.password_checks_waiting),
        presence=RedisPresence(redis, settings.redis_prefix, ttl=settings.consult.presence_ttl_seconds,
                               heartbeat=settings.consult.presence_heartbeat_seconds) if redis
        else MemoryPresence(),
        official_account=WechatGateway(settings, redis, account=WechatSettings(
            appid=settings.official_account.appid or "wx-official-account-unset",
            secret=settings.official_account.secret, api_base_url=settings.wechat.api_base_url,
            token_refresh_margin_seconds=settings.wechat.token_refresh_margin_seconds,
            token_lock_timeout_seconds=settings.wechat.token_lock_timeout_seconds,
            timeout_seconds=settings.wechat.timeout_seconds)),
        files=LocalFileStore(settings.resolved_file_root()),
    )


async def close_runtime(rt: Runtime) -> None:
    await rt.hints.close()
    await rt.broker.close()
    await rt.wechat.close()
    await rt.official_account.close()
    if rt.redis is not None:
        await rt.redis.aclose()


def create_app(settings: Settings, *, name: str = "ehall", manage_database: bool = True,
               run_jobs: bool = False) -> Sanic:
    """Build the app. `manage_database=False` leaves Tortoise to the caller (tests that share one
    initialised database between several apps in one process). `run_jobs` runs the periodic jobs
    (backend.jobs) and the notification dispatcher in the server process, as `ehall serve` does on
    the embedded default."""
    configure_logging()
    app = Sanic(name)
    # Every body is refused past max_body_bytes before it is read (JSON is small), except on the
    # routes declared with ctx_upload=True: those take one file of files.max_upload_bytes in
    # multipart, settings.max_upload_request_bytes in all (see allow_upload_bodies below). Raising the
    # limit for every route instead would let any JSON endpoint be made to buffer megabytes.
    app.config.REQUEST_MAX_SIZE = settings.max_body_bytes
    app.config.PROXIES_COUNT = settings.proxies_count
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.OAS_URL_PREFIX = "/docs"
    app.config.OAS_UI_DEFAULT = "redoc"
    app.config.OAS_AUTODOC = False
    app.config.CORS = False
    app.config.HEALTH = False
    Extend(app, config={"oas_url_prefix": "/docs", "cors": False, "health": False, "http_auto_head": True,
                        "http_auto_options": True, "http_auto_trace": False, **docs_config()})
    app.ext.openapi.describe(
        "ehall API",
        version="1.0",
        description="Ulanqab government-service centre (乌兰察布市政务服务中心): catalogue, accounts, and more.",
    )
    app.ext.openapi.add_security_scheme("bearer", "http", scheme="bearer", bearer_format="JWT")

    messages = MessageCatalogue.load(settings.resolved_config_dir() / "messages" / "errors.toml")

    for blueprint in (ops_bp, docs_bp, catalog_bp, accounts_bp, appointments_bp, queueing_bp, cases_bp,
                      queueing_sockets_bp, consult_bp, consult_sockets_bp, miniprogram_bp, official_account_bp,
                      notify_bp, notify_sockets_bp):
        app.blueprint(blueprint)
    document_websockets(app)

    @app.before_server_start
    async def start(app: Sanic) -> None:
        if manage_database:
            await init_db(settings)
        app.ctx.rt = build_runtime(settings, messages)

    if run_jobs:
        @app.after_server_start
        async def start_jobs(app: Sanic) -> None:
            from backend.jobs import JOBS

            app.ctx.job_runner = JobRunner(app.ctx.rt, JOBS)
            app.add_task(app.ctx.job_runner.run_until_stopped(settings.worker.stop_grace_seconds),
                         name="ehall-jobs")
            app.ctx.dispatcher = Dispatcher(app.ctx.rt)
            app.add_task(app.ctx.dispatcher.run_until_stopped(), name="ehall-notify")

        @app.before_server_stop
        async def stop_jobs(app: Sanic) -> None:
            # a run in progress may finish (within the grace), then the leases are released
            app.ctx.job_runner.stop()
            app.ctx.dispatcher.stop()
            tasks = [app.get_task(name, raise_exception=False) for name in ("ehall-jobs", "ehall-notify")]
            await asyncio.gather(*(task for task in tasks if task is not None), return_exceptions=True)

    @app.after_server_stop
    async def stop(app: Sanic) -> None:
        await close_runtime(app.ctx.rt)
        if manage_database:
            await close_db()

    @app.signal("http.routing.after")
    async def allow_upload_bodies(request: Request, route, kwargs, handler) -> None:
        # runs after the route is known and before its body is read (Sanic reads bodies after routing)
        if getattr(route.ctx, "upload", False) and request.stream is not None:
            request.stream.request_max_size = settings.max_upload_request_bytes

    @app.on_request(priority=100)
    async def begin(request: Request) -> None:
        # our own id names the request in logs and audit rows; a client's id is only kept beside it,
        # so that no client can plant a request id of its choosing in the audit log
        request.ctx.request_id = uuid.uuid4().hex
        incoming = request.headers.get("x-request-id", "")
        request.ctx.client_request_id = incoming if 8 <= len(incoming) <= 64 and incoming.isascii() \
            and incoming.replace("-", "").isalnum() else None
        request.ctx.started = time.perf_counter()

    @app.on_response(priority=100)
    async def finish(request: Request, response: HTTPResponse) -> None:
        request_id = getattr(request.ctx, "request_id", None) or uuid.uuid4().hex
        response.headers["X-Request-Id"] = request_id
        started = getattr(request.ctx, "started", None)
        elapsed = time.perf_counter() - started if started else 0.0
        route = request.route.path if request.route else None
        observe_request(request.method, route, response.status, elapsed)
        if settings.access_log:
            log.info("request", extra={"ehall": {
                "request_id": request_id, "client_request_id": getattr(request.ctx, "client_request_id", None),
                "method": request.method, "path": redact_text(request.path),
                "route": route or "unmatched", "status": response.status, "ms": round(elapsed * 1000, 2),
                "ip": request.remote_addr or request.ip}})

    if settings.cors_origins:  # none configured: no CORS headers at all, as before
        cors = CorsPolicy(settings.cors_origins)

        @app.on_response
        async def allow_cross_origin(request: Request, response: HTTPResponse) -> None:
            cors.apply(request, response)

    @app.exception(Exception)
    async def render_error(request: Request, exc: Exception) -> HTTPResponse:
        upload = request.route is not None and getattr(request.route.ctx, "upload", False)
        error = error_to_problem(exc, body_limit=settings.max_upload_request_bytes if upload
                                 else settings.max_body_bytes)
        if error.status >= 500 and not isinstance(exc, AppError):
            log.error("unhandled error", exc_info=exc,
                      extra={"ehall": {"request_id": getattr(request.ctx, "request_id", None),
                                       "path": request.path}})
        return problem_response(request, error, messages)

    return app
