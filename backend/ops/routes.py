"""Health and metrics for the load balancer and Prometheus."""
from pydantic import BaseModel
from sanic import Blueprint, Request
from sanic.response import raw
from tortoise import connections

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
    return json_response({"status": "ok"})


@bp.get("/readyz")
@doc(summary="The database and Redis answer (503 when either does not)", tag="ops", response=Readiness,
     extra_responses={503: "not ready"})
async def readyz(request: Request):
    checks = {"database": "ok", "redis": "ok"}
    try:
        await connections.get("default").execute_query("SELECT 1")
    except Exception:  # any failure means not ready; the reason goes to the log, not to the prober
        request.app.ctx.rt.log.warning("readiness: database unreachable", exc_info=True)
        checks["database"] = "unreachable"
    redis = request.app.ctx.rt.redis
    if redis is None:
        checks["redis"] = "not configured (in-process)"
    else:
        try:
            await redis.ping()
        except Exception:  # same as above: report, do not crash the probe
            request.app.ctx.rt.log.warning("readiness: redis unreachable", exc_info=True)
            checks["redis"] = "unreachable"
    ready = all(v != "unreachable" for v in checks.values())
    return json_response({"status": "ok" if ready else "unavailable", **checks}, status=200 if ready else 503)


@bp.get("/metrics")
@doc(summary="Prometheus metrics (text exposition format)", tag="ops")
async def metrics(request: Request):
    return raw(render_metrics(), content_type=CONTENT_TYPE_LATEST)
