"""One JSON log line per request (request id, route, status, duration; no personal data) and
Prometheus metrics, multi-process aware when several workers serve."""
from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client import REGISTRY, CONTENT_TYPE_LATEST

from backend.kit.pii import redact_text

__all__ = ["configure_logging", "REQUESTS", "LATENCY", "render_metrics", "CONTENT_TYPE_LATEST", "JsonFormatter",
           "observe_request"]

REQUESTS = Counter("ehall_http_requests_total", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram("ehall_http_request_duration_seconds", "Time to answer an HTTP request", ["method", "route"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

# Every label value comes from a short fixed list: a label taken from the request (any method name
# a client makes up, any raw path) adds a series per request, and 3,000 requests with random method
# names once grew /metrics to 14.8 MB.
_KNOWN_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def observe_request(method: str, route: str | None, status: int, elapsed: float) -> None:
    """Count an answered request under its route template (`route` None: no route matched)."""
    method_label = method if method in _KNOWN_METHODS else "other"
    route_label = route if route is not None else "unmatched"
    REQUESTS.labels(method_label, route_label, str(status)).inc()
    LATENCY.labels(method_label, route_label).observe(elapsed)


class JsonFormatter(logging.Formatter):
    """Every line JSON; anything that looks like a phone or ID number is masked even if a caller slipped."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact_text(record.getMessage()),
        }
        extra = getattr(record, "ehall", None)
        if isinstance(extra, dict):
            line.update({k: redact_text(v) if isinstance(v, str) else v for k, v in extra.items()})
        if record.exc_info:
            line["exc"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("ehall", "sanic.root", "sanic.error", "tortoise"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
        logger.setLevel(level if name.startswith("ehall") or name.startswith("sanic") else logging.WARNING)
    # Sanic's own access log would print raw URLs; ours replaces it
    logging.getLogger("sanic.access").disabled = True


def render_metrics() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
