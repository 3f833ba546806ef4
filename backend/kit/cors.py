"""CORS for the citizen H5 pages: browsers on the origins in settings.cors_origins may call the API.

sanic-ext has a CORS extension, but it overwrites the `Vary` header with `origin`, which drops the
catalogue's `Vary: Accept-Encoding` (a shared cache would then hand gzipped bytes to a client that did
not ask for them). This is the small part of it ehall needs, appending to Vary instead. Preflight
requests are answered by sanic-ext's automatic OPTIONS handlers (http_auto_options), which name the
route's methods in `Allow`; this only adds the CORS headers to them.
"""
from __future__ import annotations

from collections.abc import Iterable

from sanic import Request
from sanic.response import HTTPResponse

__all__ = ["CorsPolicy"]

# what a page's script may read from an answer, and send with a request
EXPOSED_HEADERS = "ETag, X-Request-Id, Retry-After"
ALLOWED_HEADERS = "Authorization, Content-Type, Accept-Language, If-None-Match"
API_METHODS = "GET, POST, PUT, PATCH, DELETE"
# a browser may reuse a preflight answer this long (Chromium caps it at 7200)
PREFLIGHT_MAX_AGE_SECONDS = 600


class CorsPolicy:
    """Allow exactly the configured origins (scheme://host[:port]); no credentials mode is needed:
    the pages send their token in Authorization, not in a cookie."""

    def __init__(self, origins: Iterable[str]):
        self.origins = frozenset(origin.strip().rstrip("/") for origin in origins if origin.strip())

    def apply(self, request: Request, response: HTTPResponse) -> None:
        _append_vary(response, "Origin")  # the answer depends on Origin whether or not it is allowed
        origin = request.headers.get("origin")
        if origin not in self.origins:
            return
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        if request.method == "OPTIONS" and request.headers.get("access-control-request-method"):
            response.headers["Access-Control-Allow-Methods"] = response.headers.get("allow") or API_METHODS
            response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_SECONDS)


def _append_vary(response: HTTPResponse, header: str) -> None:
    present = [value.strip() for value in response.headers.get("vary", "").split(",") if value.strip()]
    if header.lower() not in {value.lower() for value in present}:
        response.headers["Vary"] = ", ".join([*present, header])
