"""Who is calling: JWT access tokens, principals with roles scoped to halls/departments, decorators.

Access tokens are short-lived JWTs that name their session (`sid`, the refresh-token family); refresh
tokens are opaque, hashed in the database and rotated on every use (accounts.sessions). A session that
ends (logout, a staff member disabled or their grants changed) is revoked in kit.sessions, which every
authenticated request consults, so its access tokens stop at once.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from functools import wraps
from typing import TYPE_CHECKING, Any, Iterable, Literal

import jwt
from sanic import Request

from backend.kit import clock
from backend.kit.errors import AppError
from backend.settings import Settings

if TYPE_CHECKING:
    from backend.kit.sessions import SessionRevocations

__all__ = [
    "Grant", "Principal", "STAFF_ROLES", "issue_access_token", "decode_access_token",
    "authenticated", "require_hall_scope", "bearer_token", "principal_from_token",
]

# kiosk: a hall's ticket machines (取号机), which issue tickets and check bookings in for that hall only
STAFF_ROLES = ("window_clerk", "approver", "agent", "supervisor", "admin", "kiosk")

# Roles whose hall grant also covers the halls below it (a county supervisor oversees its townships
# and village agency points); a window clerk, agent or kiosk works in exactly the hall it is posted to.
_SUBTREE_ROLES = {"supervisor", "admin", "approver"}


@dataclass(frozen=True)
class Grant:
    """One role, limited to a hall (administrative code) and/or a department; None means any."""
    role: str
    hall: str | None = None
    department: str | None = None

    def to_claim(self) -> dict[str, str | None]:
        return {"role": self.role, "hall": self.hall, "dept": self.department}


@dataclass(frozen=True)
class Principal:
    kind: Literal["citizen", "staff"]
    id: int
    grants: tuple[Grant, ...] = field(default_factory=tuple)
    session: str = ""                 # the refresh-token family this token was issued in
    language: str | None = None       # a citizen's preferred language, for answers without Accept-Language

    @property
    def subject(self) -> str:
        return f"{self.kind}:{self.id}"

    def has_role(self, *roles: str) -> bool:
        return any(g.role in roles for g in self.grants)

    def covers_hall(self, hall_lineage: list[str], roles: Iterable[str]) -> bool:
        """`hall_lineage` is the hall's code followed by its ancestors' codes, nearest first."""
        roles = set(roles)
        for grant in self.grants:
            if grant.role not in roles:
                continue
            if grant.hall is None or grant.hall == hall_lineage[0]:
                return True
            if grant.role in _SUBTREE_ROLES and grant.hall in hall_lineage[1:]:
                return True
        return False

    def covers(self, hall_lineage: list[str], department: str | None, roles: Iterable[str]) -> bool:
        """One grant of `roles` reaches both the hall and the department. Checked grant by grant: a
        window_clerk@150921/ga plus a supervisor@150900/zjw do not add up to "any department of 150921".
        `department` None or "" is the hall's own (comprehensive, 综合) work: only a grant without a
        department reaches it."""
        wanted = set(roles)
        return any(
            Principal(self.kind, self.id, (grant,)).covers_hall(hall_lineage, wanted)
            and (grant.department is None or (bool(department) and grant.department == department))
            for grant in self.grants if grant.role in wanted)


def issue_access_token(settings: Settings, principal: Principal) -> tuple[str, int]:
    now = clock.now()
    ttl = settings.auth.access_ttl_seconds
    claims: dict[str, Any] = {
        "sub": principal.subject,
        "sid": principal.session,
        "iss": settings.auth.issuer,
        "aud": settings.auth.audience,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    if principal.grants:
        claims["grants"] = [g.to_claim() for g in principal.grants]
    if principal.language:
        claims["lng"] = principal.language
    token = jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")
    return token, ttl


_INVALID = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def decode_access_token(settings: Settings, token: str) -> Principal:
    try:
        # expiry is checked against kit.clock below, so that tests can move time
        claims = jwt.decode(
            token, settings.jwt_secret.get_secret_value(), algorithms=["HS256"],
            audience=settings.auth.audience, issuer=settings.auth.issuer,
            options={"require": ["sub", "sid", "exp", "iat"], "verify_exp": False, "verify_iat": False})
    except jwt.PyJWTError:
        raise AppError("token_invalid", 401, headers=_INVALID) from None
    if not isinstance(claims["exp"], int) or claims["exp"] <= clock.now().timestamp():
        raise AppError("token_expired", 401, headers=_INVALID)
    kind, _, raw_id = str(claims["sub"]).partition(":")
    # ASCII digits only: int() would also take "٣" or "３" and name another row than the one signed
    if kind not in ("citizen", "staff") or not (raw_id.isascii() and raw_id.isdigit()) \
            or not 0 < int(raw_id) < 2**63 or not isinstance(claims["sid"], str):
        raise AppError("token_invalid", 401, headers=_INVALID)
    language = claims.get("lng")
    try:
        grants = tuple(Grant(role=g["role"], hall=g.get("hall"), department=g.get("dept"))
                       for g in claims.get("grants", []))
    except (TypeError, KeyError, AttributeError):
        raise AppError("token_invalid", 401, headers=_INVALID) from None
    return Principal(kind=kind, id=int(raw_id), grants=grants, session=claims["sid"],  # type: ignore[arg-type]
                     language=language if language in ("zh", "mn", "en") else None)


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (also on a websocket's upgrade request)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def principal_from_token(settings: Settings, revocations: "SessionRevocations", token: str) -> Principal:
    """Who a token names, if it is valid and its session has not ended: the one check of every request
    and every socket."""
    principal = decode_access_token(settings, token)
    if await revocations.is_revoked(principal.session):
        raise AppError("session_ended", 401, headers=_INVALID)
    return principal


def authenticated(kind: Literal["citizen", "staff"] | None = None, roles: Iterable[str] | None = None):
    """Require a valid access token (of `kind`, holding one of `roles`); sets request.ctx.principal."""
    wanted_roles = tuple(roles or ())

    def decorator(handler):
        @wraps(handler)
        async def wrapper(request: Request, *args, **kwargs):
            token = bearer_token(request)
            if token is None:
                raise AppError("unauthenticated", 401, headers={"WWW-Authenticate": "Bearer"})
            rt = request.app.ctx.rt
            principal = await principal_from_token(rt.settings, rt.revocations, token)
            request.ctx.principal = principal
            if kind is not None and principal.kind != kind:
                raise AppError("forbidden_role", 403)
            if wanted_roles and not principal.has_role(*wanted_roles):
                raise AppError("forbidden_role", 403)
            return await handler(request, *args, **kwargs)

        wrapper.__ehall_auth__ = True  # type: ignore[attr-defined]
        return wrapper

    return decorator


def require_hall_scope(principal: Principal, hall_lineage: list[str], roles: Iterable[str]) -> None:
    if not principal.covers_hall(hall_lineage, roles):
        raise AppError("out_of_scope", 403)
