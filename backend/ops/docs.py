"""/docs without the internet: a hall's intranet reaches no CDN, so sanic-ext's ReDoc page is given our
template (no web fonts, and a Content-Security-Policy that lets the browser load nothing from elsewhere)
and ReDoc's bundle comes from this package."""
from __future__ import annotations

import gzip
import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from sanic import Blueprint, Request
from sanic.exceptions import NotFound
from sanic.response import HTTPResponse

from backend.kit.http import Representation, conditional_response

__all__ = ["bp", "docs_config"]

URL_PREFIX = "/docs"
STATIC_DIR = Path(__file__).parent / "static"
REDOC_BUNDLE = STATIC_DIR / "redoc" / "redoc.standalone.js"  # ReDoc 2.5.4: see redoc/README.md
ONE_YEAR = 365 * 24 * 3600

bp = Blueprint("docs")


@cache
def redoc_bundle() -> Representation:
    """Read, digested and gzipped once per process: 1.1 MB, about 330 kB gzipped for a weak network."""
    payload = REDOC_BUNDLE.read_bytes()
    return Representation(payload, hashlib.sha256(payload).hexdigest()[:32],
                          gzip.compress(payload, compresslevel=9, mtime=0))


def docs_config() -> dict[str, Any]:
    """sanic-ext's OpenAPI settings for an offline /docs (merge them into `Extend(config=...)`)."""
    return {
        "oas_url_prefix": URL_PREFIX,
        "oas_path_to_redoc_html": str(STATIC_DIR / "docs.html"),
        "oas_ui_redoc_html_title": "ehall API",
        # the digest in the URL lets a browser keep the bundle for a year and still fetch a new one at once
        "oas_ui_redoc_cdn_url": f"{URL_PREFIX}/assets/{redoc_bundle().digest}/redoc.standalone.js",
        # Swagger UI comes only from a CDN, and its OAuth2 redirect page would be fetched from one by
        # the server itself, inside the request
        "oas_ui_swagger": False,
    }


@bp.get(f"{URL_PREFIX}/assets/<digest:str>/redoc.standalone.js")
async def redoc_standalone(request: Request, digest: str) -> HTTPResponse:
    bundle = redoc_bundle()
    if digest != bundle.digest:  # another version of the bundle: a year-long cache must never mix them
        raise NotFound()
    response = conditional_response(request, bundle, max_age=ONE_YEAR)
    response.headers["Cache-Control"] += ", immutable"
    response.content_type = "text/javascript; charset=utf-8"
    return response
