"""Request parsing and problem+json rendering: the one path from bad input to a clear 4xx."""
from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sanic import Request
from sanic.exceptions import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    SanicException,
    ServiceUnavailable,
)
from sanic.response import HTTPResponse

from backend.kit.errors import PROBLEM_CONTENT_TYPE, AppError, FieldError
from backend.kit.i18n import MessageCatalogue, negotiate_language
from backend.kit.pii import redact_text

__all__ = ["parse_body", "parse_query", "validate", "problem_response", "error_to_problem", "language_of", "client_ip",
           "json_response", "etagged_json", "path_value", "path_id", "Representation", "represent",
           "conditional_response", "field_path", "capped_field_errors", "MAX_FIELD_ERRORS"]

log = logging.getLogger("ehall.errors")
Model = TypeVar("Model", bound=BaseModel)

# pydantic error types -> our stable field codes (config/messages/errors.toml)
_FIELD_CODES = {
    "missing": "field.missing",
    "extra_forbidden": "field.unknown",
    "string_too_long": "field.too_long",
    "too_long": "field.too_many",       # a list or a mapping: items, not characters
    "string_too_short": "field.too_short",
    "too_short": "field.too_few",
    "string_pattern_mismatch": "field.format",
    "literal_error": "field.choice",
    "enum": "field.choice",
    "greater_than": "field.range",
    "greater_than_equal": "field.range",
    "less_than": "field.range",
    "less_than_equal": "field.range",
}


def client_ip(request: Request) -> str:
    """The address per-client limits count against: the peer, or the address the trusted proxies
    (EHALL_PROXIES_COUNT) forwarded; never a header the client chose."""
    return request.remote_addr or request.ip or "unknown"


def language_of(request: Request) -> str:
    """Accept-Language; without one, the language a logged-in citizen chose in their profile."""
    header = request.headers.get("accept-language")
    if not header:
        principal = getattr(request.ctx, "principal", None)
        if principal is not None and principal.language:
            return principal.language
    return negotiate_language(header)


def json_response(body: BaseModel | Any, status: int = 200, headers: dict[str, str] | None = None) -> HTTPResponse:
    """An answer: a response schema's model (the one definition of what the client gets), or plain JSON
    for kit's own answers."""
    payload = body.model_dump_json() if isinstance(body, BaseModel) \
        else json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)
    return HTTPResponse(payload, status=status, headers=headers, content_type="application/json; charset=utf-8")


# An error answer must stay small whatever the input: a 64 KB body of thousands of bad strings under a
# long key once answered with a 118 MB problem document (one error per string, each with the whole path).
MAX_FIELD_ERRORS = 20
MAX_FIELD_PATH = 120

# pydantic's range bounds, written the same way in every language
_BOUND_SYMBOLS = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}


def field_path(parts: Iterable[Any]) -> str:
    """Dotted path of a field, cut to MAX_FIELD_PATH characters (a key may be as long as the body)."""
    path = ""
    for part in parts:
        path = f"{path}.{part}" if path else str(part)
        if len(path) > MAX_FIELD_PATH:
            return path[:MAX_FIELD_PATH] + "…"
    return path or "$"


def _allowed_values(expected: str) -> str:
    """pydantic's English "'zh', 'mn' or 'en'" as a list any language can show: "zh, mn, en"."""
    values = re.split(r", | or ", expected)
    return ", ".join(value.strip().strip("'\"") for value in values)


def _limit_params(kind: str, ctx: dict[str, Any]) -> dict[str, Any]:
    """The limit a value broke, for the message: the bound of a range, the allowed values, the length."""
    params = {k: v for k, v in ctx.items() if isinstance(v, (int, float, str))}
    for name, symbol in _BOUND_SYMBOLS.items():
        if name in ctx:
            params["bound"] = f"{symbol} {ctx[name]}"
    if kind in ("literal_error", "enum") and isinstance(ctx.get("expected"), str):
        params["allowed"] = _allowed_values(ctx["expected"])
    return params


def _field_code(item: Any) -> str:
    kind = item["type"]
    if kind in _FIELD_CODES:
        return _FIELD_CODES[kind]
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return "field.type"
    error = (item.get("ctx") or {}).get("error")
    if kind == "value_error" and isinstance(error, ValueError) and str(error).startswith("field."):
        return str(error)  # our own validators raise ValueError("field.<code>")
    return "field.invalid"


def _field_errors(exc: ValidationError) -> list[FieldError]:
    # pydantic has already validated everything; only the first errors are turned into FieldErrors
    items = exc.errors(include_url=False, include_input=False)
    return [FieldError(field=field_path(item["loc"]), code=_field_code(item),
                       params=_limit_params(item["type"], item.get("ctx") or {}))
            for item in items[:MAX_FIELD_ERRORS]]


# C0 control characters other than tab and newlines: PostgreSQL refuses NUL in text, and nothing a
# person types contains the others
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _control_character_errors(data: Any) -> tuple[list[FieldError], int]:
    """The first MAX_FIELD_ERRORS strings with a control character, and how many there are in all."""
    # iterative: a body nested a thousand deep must not exhaust the interpreter's stack. Paths are cut
    # as they grow, and past the cap none is built at all: the rest is only counted, which costs no
    # more than the JSON parse that made `data`
    errors: list[FieldError] = []
    total = 0
    pending: list[tuple[str, Any]] = [("", data)]
    while pending:
        path, value = pending.pop()
        recording = total < MAX_FIELD_ERRORS
        if isinstance(value, str):
            if _CONTROL.search(value):
                total += 1
                if recording:
                    errors.append(FieldError(field=path or "$", code="field.format"))
        elif isinstance(value, dict):
            for key, item in value.items():
                pending.append((path, key))
                pending.append((field_path((path, key) if path else (key,)) if recording else "", item))
        elif isinstance(value, list):
            pending.extend((field_path((path, i) if path else (i,)) if recording else "", item)
                           for i, item in enumerate(value))
    return errors, total


def capped_field_errors(errors: list[FieldError], total: int) -> dict[str, Any]:
    """AppError's keywords for the first MAX_FIELD_ERRORS field errors of `total` found:
    `AppError(code, 422, **capped_field_errors(errors, total))`; `more_errors` counts those left out."""
    shown = errors[:MAX_FIELD_ERRORS]
    if total > len(shown):
        return {"errors": shown, "more_errors": total - len(shown)}
    return {"errors": shown}


def _invalid(errors: list[FieldError], total: int) -> AppError:
    return AppError("validation_failed", 422, **capped_field_errors(errors, total))


def validate(model: type[Model], data: Any) -> Model:
    errors, total = _control_character_errors(data)
    if errors:
        raise _invalid(errors, total)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(_field_errors(exc), exc.error_count()) from None


def parse_body(request: Request, model: type[Model]) -> Model:
    """The request's JSON body as `model`, or a 4xx problem. An empty body counts as `{}`."""
    content_type = (request.content_type or "").split(";")[0].strip().lower()
    if request.body and content_type not in ("application/json", "") and not content_type.endswith("+json"):
        raise AppError("unsupported_media_type", 415)
    if not request.body:
        data: Any = {}
    else:
        try:
            data = json.loads(request.body)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
            raise AppError("malformed_json", 400) from None
    return validate(model, data)


def parse_query(request: Request, model: type[Model]) -> Model:
    """Query parameters as `model`; a parameter given twice keeps the first value."""
    data = {key: values[0] for key, values in request.args.items()}
    return validate(model, data)


def path_value(value: str, schema: dict[str, Any], not_found: str) -> str:
    """Check a path segment against its documented schema; anything else names nothing that exists."""
    if not re.fullmatch(schema["pattern"], value):
        raise AppError(not_found, 404)
    return value


def path_id(value: int, not_found: str) -> int:
    """Database ids are positive 64-bit integers; a larger number cannot name a row."""
    if not 0 < value < 2**63:
        raise AppError(not_found, 404)
    return value


def error_to_problem(exc: BaseException, *, body_limit: int) -> AppError:
    """Map anything raised while handling a request to the AppError clients see; `body_limit` is the
    largest body accepted (settings.max_body_bytes), named in the 413 answer."""
    if isinstance(exc, AppError):
        return exc
    if isinstance(exc, NotFound):
        return AppError("not_found", 404)
    if isinstance(exc, MethodNotAllowed):
        return AppError("method_not_allowed", 405, headers=dict(exc.headers or {}))
    if isinstance(exc, PayloadTooLarge):
        return AppError("body_too_large", 413, limit=body_limit)
    if isinstance(exc, ServiceUnavailable):
        return AppError("service_unavailable", 503)
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
        # limits, sessions and the broker live in Redis: without it we cannot decide safely, so we
        # refuse for a moment rather than guess (a limit skipped is an SMS bill, a session not checked)
        return AppError("service_unavailable", 503, headers={"Retry-After": "5"}, retry_after=5)
    if isinstance(exc, BadRequest):
        return AppError("malformed_json" if "json" in str(exc).lower() else "validation_failed", 400)
    if isinstance(exc, SanicException) and 400 <= exc.status_code < 500:
        return AppError("validation_failed", exc.status_code)
    return AppError("internal_error", 500)


# what a path segment may hold unescaped (RFC 3986 pchar, less "%": every escape is re-made)
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


def _instance(path: str) -> str:
    """The request's path for a problem's `instance`, with personal data masked: redact_text reads
    percent-escapes (a phone sent as %31%33%38...), so the masked text is escaped again to stay a URI."""
    return quote(redact_text(path), safe=_PATH_SAFE)


def problem_response(request: Request, error: AppError, messages: MessageCatalogue) -> HTTPResponse:
    language = language_of(request)
    body: dict[str, Any] = {
        "type": f"https://ehall.ulanqab.gov.cn/problems/{error.code}",
        "title": messages.render(error.code, "en", **error.params),
        "status": error.status,
        "code": error.code,
        "detail": messages.render(error.code, language, **error.params),
        "lang": language,
        "instance": _instance(request.path),
    }
    request_id = getattr(request.ctx, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    if error.errors:
        body["errors"] = [
            {"field": e.field, "code": e.code, "message": messages.render(e.code, language, **e.params)}
            for e in error.errors
        ]
    for key, value in error.params.items():
        if key not in body:
            body[key] = value
    response = json_response(body, status=error.status, headers=error.headers)
    response.content_type = PROBLEM_CONTENT_TYPE
    response.headers["content-language"] = language
    return response


# below this a gzip header costs more than it saves
_GZIP_MIN_BYTES = 1024


def _accepts_gzip(request: Request) -> bool:
    for coding in request.headers.get("accept-encoding", "").split(","):
        name, _, params = coding.strip().partition(";")
        if name.strip().lower() in ("gzip", "*") and params.replace(" ", "") not in ("q=0", "q=0.0"):
            return True
    return False


@dataclass(frozen=True)
class Representation:
    """A finished JSON answer: its bytes, their digest (the ETag) and, when worth it, the gzipped bytes."""
    payload: bytes
    digest: str
    gzipped: bytes | None


def represent(body: Any) -> Representation:
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode()
    gzipped = gzip.compress(payload, compresslevel=6, mtime=0) if len(payload) >= _GZIP_MIN_BYTES else None
    return Representation(payload, hashlib.sha256(payload).hexdigest()[:32], gzipped)


def conditional_response(request: Request, representation: Representation, *, max_age: int) -> HTTPResponse:
    """Answer with a strong ETag, gzipped when the client takes it; 304 with no body when the client has
    it already, so a phone on a weak network revalidates the catalogue instead of downloading it again."""
    digest = representation.digest
    compress = representation.gzipped is not None and _accepts_gzip(request)
    # each encoding is its own representation with its own strong validator (RFC 9110 8.8.3)
    etag = f'"{digest}-gz"' if compress else f'"{digest}"'
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={max_age}", "Vary": "Accept-Encoding"}
    if_none_match = request.headers.get("if-none-match", "")
    known = {tag.strip().removeprefix("W/").replace("-gz", "") for tag in if_none_match.split(",")}
    if f'"{digest}"' in known or if_none_match.strip() == "*":
        return HTTPResponse(status=304, headers=headers)
    if compress:
        headers["Content-Encoding"] = "gzip"
    return HTTPResponse(representation.gzipped if compress else representation.payload, headers=headers,
                        content_type="application/json; charset=utf-8")


def etagged_json(request: Request, body: Any, *, max_age: int) -> HTTPResponse:
    return conditional_response(request, represent(body), max_age=max_age)
