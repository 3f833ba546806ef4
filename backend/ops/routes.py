"""Health and metrics for the load balancer and Prometheus."""
import hmac
from ipaddress import ip_address

from pydantic import BaseModel
from sanic import Blueprint, Request
from sanic.response import raw
from tortoise import connections

from backend.kit.errors import AppError
from backend.kit.http import json_response
from backend.kit.observability import CONTENT_TYPE_LATEST, render_metrics
from backend.kit.openapi import doc

bp = Blueprint("ops")


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    redis: str


@bp.get("/healthz")
@doc(summary="The process is up", tag="ops", response=Health)
async def healthz(request: Request):
    return json_response(Health(status="ok"))


@bp.get("/readyz")
@doc(summary="The database and Redis answer (503 when either does not)", tag="ops", response=Readiness,
     extra_responses={503: "not ready"})
async def readyz(request: Request):
    database = redis_state = "ok"
    try:
        await connections.get("default").execute_query("SELECT 1")
    except Exception:  # any failure means not ready; the reason goes to the log, not to the prober
        request.app.ctx.rt.log.warning("readiness: database unreachable", exc_info=True)
        database = "unreachable"
    redis = request.app.ctx.rt.redis
    if redis is None:
        redis_state = "not configured (in-process)"
    else:
        try:
            await redis.ping()
        except Exception:  # same as above: report, do not crash the probe
            request.app.ctx.rt.log.warning("readiness: redis unreachable", exc_info=True)
            redis_state = "unreachable"
    ready = "unreachable" not in (database, redis_state)
    return json_response(Readiness(status="ok" if ready else "unavailable", database=database, redis=redis_state),
                         status=200 if ready else 503)


def _may_read_metrics(request: Request) -> bool:
    """Metrics name every route and its load: only the monitoring network (settings.metrics.allow, by
    the client address as proxies_count resolves it) or a holder of settings.metrics.token reads them."""
    settings = request.app.ctx.rt.settings.metrics
    token = settings.token.get_secret_value()
    scheme, _, offered = request.headers.get("authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(offered.strip().encode(), token.encode()):
        return True
    try:
        address = ip_address(request.remote_addr or request.ip)
    except ValueError:  # a unix socket or an unparsable forwarded address: not on any allowed network
        return False
    if address.version == 6 and address.ipv4_mapped:  # ::ffff:127.0.0.1 on a dual-stack socket
        address = address.ipv4_mapped
    return any(address in network for network in settings.allow)


@bp.get("/metrics")
@doc(summary="Prometheus metrics (text exposition format); from an allowed address or with the metrics token",
     tag="ops", errors=[403])
async def metrics(request: Request):
    if not _may_read_metrics(request):
        raise AppError("metrics_forbidden", 403)
    return raw(render_metrics(), content_type=CONTENT_TYPE_LATEST)
