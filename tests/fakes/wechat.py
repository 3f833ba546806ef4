"""A fake of WeChat's server API (api.weixin.qq.com) on a loopback port.

It speaks WeChat's wire format: HTTP 200 with `{"errcode", "errmsg"}` JSON for errors, bodies read as
JSON whatever their content type (wechatpy sends none), mini-program codes as PNG bytes labelled
image/jpeg. The real wechatpy client is pointed at `base_url` through settings.

It is a LoopbackFake: its own event loop in a background thread keeps it answering while a test
blocks and while wechatpy's synchronous calls run in threads. Tests drive it through plain methods
and inspect plain attributes; its lock keeps the two threads from tearing the state.
"""
from __future__ import annotations

import asyncio
import json
import re
import secrets
import struct
import time
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

from sanic import Request, Sanic
from sanic.response import HTTPResponse, json as json_response, raw

from tests.fakes.loopback import LoopbackFake, fake_app

__all__ = ["FakeWechat", "IssuedToken"]

ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    45015: "response out of time limit or subscription is canceled",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40013: "invalid appid",
    40029: "invalid code",
    40037: "invalid template_id",
    40125: "invalid appsecret",
    40163: "code been used",
    40169: "invalid length for scene, or the data is not json string",
    40226: "risky user",
    41001: "access_token missing",
    41008: "missing code",
    41030: "invalid page",
    42001: "access_token expired",
    43101: "user refuse to accept the msg",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    47001: "data format error",
    47003: "argument invalid!",
    87014: "risky content",
}

# WeChat keeps the previous token usable this long after issuing a new one.
TOKEN_OVERLAP_SECONDS = 300
# customer-service messages follow a follower's last message for this long (45015 after)
CUSTOMER_SERVICE_WINDOW_SECONDS = 48 * 3600
SCENE_PATTERN = re.compile(r"[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]{1,32}")
SUBSCRIBE_STATES = {"developer", "trial", "formal"}
ENV_VERSIONS = {"release", "trial", "develop"}


@dataclass
class IssuedToken:
    value: str
    expires_at: float
    revoked: bool = False


def _value_allowed(key: str, value: str) -> bool:
    """WeChat's rules for a subscribe message's value, by the kind of its key (thing3 is a thing)."""
    if re.search(r"[\x00-\x1f\x7f]", value):
        return False
    kind = key.rstrip("0123456789")
    if kind == "thing":
        return len(value) <= 20
    if kind == "phrase":
        return len(value) <= 5 and re.fullmatch(r"[\u4e00-\u9fff]+", value) is not None
    if kind in ("character_string", "number", "letter"):
        return len(value) <= 32
    return True


def _error(errcode: int, detail: str = "") -> HTTPResponse:
    message = ERRMSG.get(errcode, "error") + (f" {detail}" if detail else "")
    return json_response({"errcode": errcode, "errmsg": f"{message} rid: {uuid.uuid4().hex[:24]}"})


def _body(request: Request) -> dict[str, Any] | None:
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _png(scene: str) -> bytes:
    """A valid 1x1 PNG carrying the scene in a tEXt chunk, so a test can tell which code it got."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"tEXt", b"scene\x00" + scene.encode())
            + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b""))


class FakeWechat(LoopbackFake):
    """WeChat's API for one mini-program (appid, secret): `with` or `async with FakeWechat() as fake:`,
    or start() and stop()."""

    name = "fake-wechat"

    def __init__(self, appid: str = "wx0000000000000000", secret: str = "fake-wechat-secret"):
        self.appid = appid
        self.secret = secret
        # What a fetched token's expires_in is; lower it to make clients refresh early.
        self.token_lifetime = 7200
        # Seconds a token endpoint takes to answer: widens the window in which racing clients overlap.
        self.token_delay_seconds = 0.0
        # Seconds a subscribe message takes to answer, as WeChat's round trip would (bench/notify.py).
        self.send_delay_seconds = 0.0
        self.token_fetches = 0
        self.sent_messages: list[dict[str, Any]] = []
        self.wxacode_requests: list[dict[str, Any]] = []
        self.sec_checks: list[dict[str, Any]] = []
        self.refused_openids: set[str] = set()
        self.banned_words: list[str] = []
        # content security v2 answers "review" (a person should look) for a text with one of these
        self.review_words: list[str] = []
        # other accounts (an official account's appid and secret) that may fetch tokens here
        self.accounts: dict[str, str] = {}
        # official-account followers' last message to the account (time.time()): customer-service
        # messages reach a follower within 48 hours of it, else 45015
        self.follower_last_message: dict[str, float] = {}
        self.customer_service_messages: list[dict[str, Any]] = []
        self.rejected_tokens: list[str] = []
        self._tokens: dict[str, IssuedToken] = {}
        self._current: dict[str, str] = {}  # "token" / "stable": the latest value of each (they are isolated)
        self._login_codes: dict[str, tuple[str, str | None] | None] = {}  # None once used
        self._phone_codes: dict[str, tuple[str, str]] = {}
        self._forced_errors: dict[str, list[int]] = {}
        super().__init__(self._build_app())

    # ---- what a test controls ----------------------------------------------------------------

    def issue_login_code(self, openid: str, unionid: str | None = None) -> str:
        """A wx.login() code for this user; jscode2session accepts it once."""
        code = secrets.token_hex(16)
        with self._lock:
            self._login_codes[code] = (openid, unionid)
        return code

    def issue_phone_code(self, phone: str, country_code: str = "86") -> str:
        """A getPhoneNumber button code; getuserphonenumber accepts it once."""
        code = secrets.token_hex(32)
        with self._lock:
            self._phone_codes[code] = (phone, country_code)
        return code

    def fail_next(self, path: str, errcode: int, times: int = 1, *, touser: str | None = None) -> None:
        """Answer the next `times` calls of `path` (e.g. "sns/jscode2session") with this errcode; with
        `touser`, only subscribe messages to that openid (the fake is shared by the whole run)."""
        with self._lock:
            self._forced_errors.setdefault(path.strip("/"), []).extend([(errcode, touser)] * times)

    def invalidate_tokens(self) -> None:
        """Every token issued so far now answers 40001, as after a secret reset or forced refresh."""
        with self._lock:
            for token in self._tokens.values():
                token.revoked = True

    def expire_tokens(self) -> None:
        """Every token issued so far now answers 42001."""
        with self._lock:
            for token in self._tokens.values():
                token.expires_at = min(token.expires_at, time.time() - 1)

    def is_token_valid(self, value: str) -> bool:
        with self._lock:
            token = self._tokens.get(value)
            return token is not None and not token.revoked and token.expires_at > time.time()

    # ---- the API -----------------------------------------------------------------------------

    def _forced_error(self, path: str, touser: str | None = None) -> int | None:
        with self._lock:
            queue = self._forced_errors.get(path, [])
            for index, (errcode, wanted) in enumerate(queue):
                if wanted is None or wanted == touser:
                    del queue[index]
                    return errcode
            return None

    def _token_error(self, request: Request) -> int | None:
        value = request.args.get("access_token")
        if not value:
            return 41001
        with self._lock:
            token = self._tokens.get(value)
            if token is None or token.revoked:
                self.rejected_tokens.append(value)
                return 40001
            if token.expires_at <= time.time():
                self.rejected_tokens.append(value)
                return 42001
        return None

    def _issue_token(self, kind: str, *, revoke_previous: bool) -> IssuedToken:
        """Caller holds the lock. The previous token of this kind stays valid for the overlap unless revoked."""
        now = time.time()
        previous = self._tokens.get(self._current.get(kind, ""))
        if previous is not None:
            if revoke_previous:
                previous.revoked = True
            else:
                previous.expires_at = min(previous.expires_at, now + TOKEN_OVERLAP_SECONDS)
        token = IssuedToken(value=secrets.token_urlsafe(96), expires_at=now + self.token_lifetime)
        self._tokens[token.value] = token
        self._current[kind] = token.value
        return token

    def _credentials_error(self, appid: Any, secret: Any) -> int | None:
        known = {self.appid: self.secret, **self.accounts}
        if appid not in known:
            return 40013
        if secret != known[appid]:
            return 40125
        return None

    def add_account(self, appid: str, secret: str) -> None:
        """Another account (an official account) served by this fake, with its own credentials."""
        with self._lock:
            self.accounts[appid] = secret

    def follower_wrote(self, openid: str, at: float | None = None) -> None:
        """The follower sent the official account a message at `at` (now by default): the 48-hour
        customer-service window opens from then, as WeChat counts it."""
        with self._lock:
            self.follower_last_message[openid] = time.time() if at is None else at

    def _build_app(self) -> Sanic:
        app = fake_app("fake_wechat")

        @app.get("/sns/jscode2session")
        async def jscode2session(request: Request) -> HTTPResponse:
            forced = self._forced_error("sns/jscode2session")
            if forced is not None:
                return _error(forced)
            args = request.args
            error = self._credentials_error(args.get("appid"), args.get("secret"))
            if error:
                return _error(error)
            if args.get("grant_type") != "authorization_code":
                return _error(40002)
            code = args.get("js_code")
            if not code:
                return _error(41008)
            with self._lock:
                if code not in self._login_codes:
                    return _error(40029)
                user = self._login_codes[code]
                if user is None:
                    return _error(40163)
                self._login_codes[code] = None
            openid, unionid = user
            answer = {"openid": openid, "session_key": secrets.token_urlsafe(18)}
            if unionid:
                answer["unionid"] = unionid
            return json_response(answer)

        @app.get("/cgi-bin/token")
        async def token(request: Request) -> HTTPResponse:
            with self._lock:
                self.token_fetches += 1
            await asyncio.sleep(self.token_delay_seconds)
            forced = self._forced_error("cgi-bin/token")
            if forced is not None:
                return _error(forced)
            args = request.args
            if args.get("grant_type") != "client_credential":
                return _error(40002)
            error = self._credentials_error(args.get("appid"), args.get("secret"))
            if error:
                return _error(error)
            with self._lock:
                issued = self._issue_token("token", revoke_previous=False)
            return json_response({"access_token": issued.value, "expires_in": self.token_lifetime})

        @app.post("/cgi-bin/stable_token")
        async def stable_token(request: Request) -> HTTPResponse:
            with self._lock:
                self.token_fetches += 1
            await asyncio.sleep(self.token_delay_seconds)
            forced = self._forced_error("cgi-bin/stable_token")
            if forced is not None:
                return _error(forced)
            body = _body(request)
            if body is None:
                return _error(47001)
            if body.get("grant_type") != "client_credential":
                return _error(40002)
            error = self._credentials_error(body.get("appid"), body.get("secret"))
            if error:
                return _error(error)
            now = time.time()
            with self._lock:
                current = self._tokens.get(self._current.get("stable", ""))
                # Normal mode hands out the same token until its last five minutes (or until it is dead);
                # force_refresh revokes it and issues a new one.
                if (body.get("force_refresh") or current is None or current.revoked
                        or current.expires_at - now < TOKEN_OVERLAP_SECONDS):
                    current = self._issue_token("stable", revoke_previous=bool(body.get("force_refresh")))
            return json_response({"access_token": current.value, "expires_in": int(current.expires_at - now)})

        @app.post("/wxa/business/getuserphonenumber")
        async def getuserphonenumber(request: Request) -> HTTPResponse:
            error = self._forced_error("wxa/business/getuserphonenumber") or self._token_error(request)
            if error:
                return _error(error)
            body = _body(request)
            if body is None:
                return _error(47001)
            with self._lock:
                phone = self._phone_codes.pop(str(body.get("code", "")), None)
            if phone is None:
                return _error(40029)
            number, country_code = phone
            return json_response({
                "errcode": 0,
                "errmsg": "ok",
                "phone_info": {
                    "phoneNumber": number if country_code == "86" else f"+{country_code} {number}",
                    "purePhoneNumber": number,
                    "countryCode": country_code,
                    "watermark": {"timestamp": int(time.time()), "appid": self.appid},
                },
            })

        @app.post("/cgi-bin/message/subscribe/send")
        async def subscribe_send(request: Request) -> HTTPResponse:
            if self.send_delay_seconds:
                await asyncio.sleep(self.send_delay_seconds)
            body = _body(request)
            error = self._forced_error("cgi-bin/message/subscribe/send", (body or {}).get("touser")) \
                or self._token_error(request)
            if error:
                return _error(error)
            if body is None:
                return _error(47001)
            if not body.get("touser"):
                return _error(40003)
            if not body.get("template_id"):
                return _error(40037)
            data = body.get("data")
            if not isinstance(data, dict) or not data:
                return _error(47003, "data is empty")
            for key, field in data.items():
                if not isinstance(field, dict) or not isinstance(field.get("value"), str) or not field["value"]:
                    return _error(47003, f"data.{key}.value is empty")
                if not _value_allowed(key, field["value"]):
                    return _error(47003, f"argument invalid! data.{key}.value invalid")
            if body.get("miniprogram_state", "formal") not in SUBSCRIBE_STATES:
                return _error(47003, "miniprogram_state")
            if body["touser"] in self.refused_openids:
                return _error(43101)
            with self._lock:
                self.sent_messages.append(body)
            return json_response({"errcode": 0, "errmsg": "ok", "msgid": int(time.time() * 1000)})

        @app.post("/wxa/getwxacodeunlimit")
        async def getwxacodeunlimit(request: Request) -> HTTPResponse:
            error = self._forced_error("wxa/getwxacodeunlimit") or self._token_error(request)
            if error:
                return _error(error)
            body = _body(request)
            if body is None:
                return _error(47001)
            scene = body.get("scene")
            if not isinstance(scene, str) or not SCENE_PATTERN.fullmatch(scene):
                return _error(40169)
            page = body.get("page")
            if page is not None and (not isinstance(page, str) or page.startswith("/") or "?" in page):
                return _error(41030)
            if body.get("env_version", "release") not in ENV_VERSIONS:
                return _error(47003, "env_version")
            with self._lock:
                self.wxacode_requests.append(body)
            return raw(_png(scene), content_type="image/jpeg")

        @app.post("/wxa/msg_sec_check")
        async def msg_sec_check(request: Request) -> HTTPResponse:
            error = self._forced_error("wxa/msg_sec_check") or self._token_error(request)
            if error:
                return _error(error)
            body = _body(request)
            if body is None:
                return _error(47001)
            content = body.get("content")
            if not isinstance(content, str):
                return _error(47003, "content")
            hit = next((word for word in self.banned_words if word in content), None)
            doubtful = next((word for word in self.review_words if word in content), None)
            if body.get("version") != 2:  # v1: errcode 87014 when risky
                return _error(87014) if hit else json_response({"errcode": 0, "errmsg": "ok"})
            if not body.get("openid"):
                return _error(40003)
            if body.get("scene") not in (1, 2, 3, 4) or len(content) > 2500:
                return _error(47003, "scene or content")
            with self._lock:
                self.sec_checks.append(body)
            suggest, label = ("risky", 20006) if hit else ("review", 21000) if doubtful else ("pass", 100)
            detail = [{"strategy": "content_model", "errcode": 0, "suggest": suggest, "label": label, "prob": 90}]
            if hit:
                detail.append({"strategy": "keyword", "errcode": 0, "suggest": "risky", "label": label,
                               "level": 20, "keyword": hit})
            return json_response({"errcode": 0, "errmsg": "ok", "result": {"suggest": suggest, "label": label},
                                  "detail": detail, "trace_id": uuid.uuid4().hex})

        @app.post("/cgi-bin/message/custom/send")
        async def custom_send(request: Request) -> HTTPResponse:
            body = _body(request)
            error = self._forced_error("cgi-bin/message/custom/send", (body or {}).get("touser")) \
                or self._token_error(request)
            if error:
                return _error(error)
            if body is None:
                return _error(47001)
            touser = body.get("touser")
            if not isinstance(touser, str) or not touser:
                return _error(40003)
            if body.get("msgtype") != "text" or not isinstance((body.get("text") or {}).get("content"), str) \
                    or not body["text"]["content"]:
                return _error(47003, "text.content")
            with self._lock:
                last = self.follower_last_message.get(touser)
                if last is None or time.time() - last > CUSTOMER_SERVICE_WINDOW_SECONDS:
                    return _error(45015)
                self.customer_service_messages.append(body)
            return json_response({"errcode": 0, "errmsg": "ok"})

        return app
