"""The WeChat client the app uses: wechatpy 1.8.18 behind an async gateway with one shared access token.

wechatpy is synchronous (requests), so every call runs in a thread (asyncio.to_thread). Its own token
handling is bypassed: its refresh is not coordinated across processes, so with several workers each
would fetch its own token and, with /cgi-bin/token, invalidate the others' after five minutes.
Here the token lives in Redis (or in memory with no Redis), one process refreshes it under a lock
while the others wait and re-read, and a call rejected with 40001/42001 is retried once with a new token.

session_key (from code_to_session) lets its holder decrypt the user's WeChat data: it is never
logged, never put in a response, never stored outside the login flow that asked for it.
"""
from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from optionaldict import optionaldict
from redis.asyncio import Redis
from redis.exceptions import LockError
from wechatpy import WeChatClient
from wechatpy.client.api import WeChatWxa
from wechatpy.exceptions import WeChatClientException

from backend.kit.errors import AppError, FieldError
from backend.kit.gateways import WechatSession
from backend.settings import Settings, WechatSettings

__all__ = ["WechatGateway", "WechatSession", "MiniProgramClient", "MiniProgramWxa"]

log = logging.getLogger("ehall.wechat")

T = TypeVar("T")

# 40014 is the older spelling of 40001 ("invalid access_token"); 42001 is an expired one.
TOKEN_REJECTED = {40001, 40014, 42001}
# How long a process uses the token it last read without asking the store again: a round trip to
# Redis per call was a tenth of a notification worker's Redis traffic. A token replaced meanwhile by
# another process is at worst rejected once here, then dropped and read afresh (_call).
TOKEN_KEPT_SECONDS = 30.0

_ERRORS: dict[int, tuple[str, int]] = {
    40029: ("wechat_code_invalid", 400),
    40163: ("wechat_code_invalid", 400),  # code been used
    40226: ("wechat_risky_user", 403),
    43101: ("wechat_subscription_refused", 409),  # the user refused or used up the subscription
    # a message WeChat will never take as it is: trying again cannot help
    47003: ("wechat_request_refused", 502),   # a value breaks its template key's rule
    40003: ("wechat_request_refused", 502),   # not an openid of this appid
    40037: ("wechat_request_refused", 502),   # no such template
    41030: ("wechat_request_refused", 502),   # no such page
    # customer-service messages: more than 48 hours since the follower last wrote, or over the replies allowed
    45015: ("wechat_reply_window_closed", 409),
    45047: ("wechat_reply_window_closed", 409),
}

# The token for the wechatpy call running in this context. Each call runs in its own copy of the
# context (asyncio.to_thread copies it), so concurrent calls in the shared client never see each
# other's token, and a call that needs none (jscode2session) sends none.
_call_token: contextvars.ContextVar[str | None] = contextvars.ContextVar("wechat_call_token", default=None)


class MiniProgramWxa(WeChatWxa):
    """wechatpy's mini-program API plus what 1.8.18 lacks."""

    def get_phone_number(self, code: str) -> dict[str, Any]:
        return self._post("wxa/business/getuserphonenumber", data={"code": code})

    def msg_sec_check_v2(self, openid: str, content: str, scene: int) -> dict[str, Any]:
        return self._post("wxa/msg_sec_check",
                          data={"version": 2, "openid": openid, "scene": scene, "content": content})

    def send_subscribe_message(self, user_id: str, template_id: str, data: dict[str, Any],
                               page: str | None = None, miniprogram_state: str | None = None,
                               lang: str | None = None) -> dict[str, Any]:
        return self._post("cgi-bin/message/subscribe/send", data=optionaldict(
            touser=user_id, template_id=template_id, page=page, data=data,
            miniprogram_state=miniprogram_state, lang=lang))

    def get_wxa_code_unlimited(self, scene: str, width: int = 430, auto_color: bool = False,
                               line_color: dict[str, str] | None = None, page: str | None = None,
                               is_hyaline: bool = False, check_path: bool | None = None,
                               env_version: str | None = None) -> Any:
        return self._post("wxa/getwxacodeunlimit", data=optionaldict(
            scene=scene, page=page, width=width, auto_color=auto_color, line_color=line_color,
            is_hyaline=is_hyaline, check_path=check_path, env_version=env_version))


class MiniProgramClient(WeChatClient):
    """wechatpy's client aimed at `api_base_url`, fetching stable tokens, holding none of its own."""

    wxa = MiniProgramWxa()

    def __init__(self, appid: str, secret: str, *, api_base_url: str, timeout: float):
        # auto_retry off: wechatpy would refetch the token itself on 40001, uncoordinated; the gateway does it.
        super().__init__(appid, secret, timeout=timeout, auto_retry=False)
        base = api_base_url.rstrip("/") + "/"
        # wechatpy keeps base URLs in class attributes; instance attributes aim this client only.
        self.API_BASE_URL = base + "cgi-bin/"
        self.wxa.API_BASE_URL = base

    @property
    def access_token(self) -> str | None:
        """The token the gateway chose for this call; wechatpy never fetches or stores one itself."""
        return _call_token.get()

    def fetch_access_token(self) -> dict[str, Any]:
        """POST cgi-bin/stable_token in normal mode: repeated calls return the same token until its last
        five minutes, so a refresh by one worker never invalidates another's (force_refresh would)."""
        return self.post("stable_token", data={
            "grant_type": "client_credential", "appid": self.appid, "secret": self.secret,
            "force_refresh": False,
        })


@dataclass(frozen=True)
class CachedToken:
    value: str
    seconds_left: float


class MemoryTokenStore:
    """One process: the token in a variable; the gateway's asyncio.Lock is all the locking needed."""

    def __init__(self) -> None:
        self._value: str | None = None
        self._expires_at = 0.0

    async def get(self) -> CachedToken | None:
        seconds_left = self._expires_at - asyncio.get_running_loop().time()
        return CachedToken(self._value, seconds_left) if self._value and seconds_left > 0 else None

    async def put(self, value: str, expires_in: float) -> None:
        self._value, self._expires_at = value, asyncio.get_running_loop().time() + expires_in

    async def discard(self, value: str) -> None:
        if self._value == value:
            self._value = None

    def lock(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return contextlib.nullcontext()


_DISCARD_IF_SAME = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisTokenStore:
    """All processes: the token under one key whose Redis TTL is the token's lifetime (so no clocks of
    ours are compared), and a Redis lock (SET NX PX with a random value, released by a Lua check)."""

    def __init__(self, redis: Redis, key: str, lock_timeout: float):
        self._redis = redis
        self._key = key
        self._lock_timeout = lock_timeout
        self._discard = redis.register_script(_DISCARD_IF_SAME)

    async def get(self) -> CachedToken | None:
        async with self._redis.pipeline(transaction=True) as pipe:
            value, ttl_ms = await pipe.get(self._key).pttl(self._key).execute()
        if value is None or ttl_ms <= 0:
            return None
        return CachedToken(value.decode() if isinstance(value, bytes) else value, ttl_ms / 1000)

    async def put(self, value: str, expires_in: float) -> None:
        await self._redis.set(self._key, value, px=max(1, int(expires_in * 1000)))

    async def discard(self, value: str) -> None:
        # Only if it is still the token that failed: another process may already have stored a new one.
        await self._discard(keys=[self._key], args=[value])

    def lock(self) -> contextlib.AbstractAsyncContextManager[Any]:
        # The lock expires by itself if its holder dies; the fetch's HTTP timeout is shorter, so a live
        # holder never loses it. Waiters give up after the same time.
        return self._redis.lock(self._key + ":lock", timeout=self._lock_timeout,
                                blocking_timeout=self._lock_timeout, thread_local=False,
                                raise_on_release_error=False)


class _TokenRejected(Exception):
    pass


def _json(result: Any) -> dict[str, Any]:
    if not isinstance(result, dict):  # wechatpy hands back the raw response when it is not JSON
        log.warning("wechat answered with something that is not JSON")
        raise AppError("wechat_unavailable", 503)
    return result


def _app_error(errcode: int | None) -> AppError:
    if errcode == 45011:
        return AppError("rate_limited", 429, headers={"Retry-After": "60"}, retry_after=60)
    if errcode in _ERRORS:
        code, status = _ERRORS[errcode]
        return AppError(code, status)
    return AppError("wechat_unavailable", 503)


class WechatGateway:
    """Async access to the WeChat mini-program server API for one appid."""

    def __init__(self, settings: Settings, redis: Redis | None = None, *, account: WechatSettings | None = None):
        """`account`: another WeChat account than the mini-program's (the official account's appid and
        secret), with its own access token."""
        wechat = account or settings.wechat
        self._client = MiniProgramClient(wechat.appid, wechat.secret.get_secret_value(),
                                         api_base_url=wechat.api_base_url, timeout=wechat.timeout_seconds)
        self._margin = wechat.token_refresh_margin_seconds
        self._store: MemoryTokenStore | RedisTokenStore = (
            RedisTokenStore(redis, f"{settings.redis_prefix}wechat:token:{wechat.appid}",
                            wechat.token_lock_timeout_seconds)
            if redis is not None else MemoryTokenStore())
        # Coroutines of this process queue here first, so only one of them polls the Redis lock.
        self._local_lock = asyncio.Lock()
        self._kept: tuple[str, float] | None = None   # the token last read, and the loop time it is kept until

    async def close(self) -> None:
        self._client._http.close()

    # ---- the calls -----------------------------------------------------------------------------

    async def code_to_session(self, code: str) -> WechatSession:
        """jscode2session: who is behind a wx.login() code. The caller must keep session_key to itself."""
        result = _json(await self._run(self._client.wxa.code_to_session, code))
        return WechatSession(openid=result["openid"], unionid=result.get("unionid"),
                             session_key=result["session_key"])

    async def get_phone_number(self, code: str) -> str:
        """The mainland mobile number (purePhoneNumber) behind a getPhoneNumber button code."""
        info = _json(await self._call(self._client.wxa.get_phone_number, code))["phone_info"]
        if info.get("countryCode") != "86":
            raise AppError("validation_failed", 422, errors=[FieldError("phone", "field.phone")])
        return info["purePhoneNumber"]

    async def send_subscribe_message(self, openid: str, template_id: str, data: dict[str, str], *,
                                     page: str | None = None, miniprogram_state: str = "formal",
                                     lang: str = "zh_CN") -> None:
        """One subscribe message; `data` maps template keys to values. A refusal raises
        AppError("wechat_subscription_refused", 409), so the caller can fall back to SMS."""
        wrapped = {key: {"value": value} for key, value in data.items()}
        await self._call(self._client.wxa.send_subscribe_message, openid, template_id, wrapped,
                         page=page, miniprogram_state=miniprogram_state, lang=lang)

    async def msg_sec_check(self, openid: str, content: str, scene: int) -> str:
        """Content security v2: "pass", "review" or "risky". scene: 1 profile, 2 comment, 3 forum, 4 social."""
        result = _json(await self._call(self._client.wxa.msg_sec_check_v2, openid, content, scene))
        return result["result"]["suggest"]

    async def send_customer_service_text(self, openid: str, content: str) -> None:
        """POST cgi-bin/message/custom/send: a text to an official-account follower within the 48 hours
        after they last wrote (45015 outside them: AppError "wechat_reply_window_closed")."""
        await self._call(self._client.message.send_text, openid, content)

    async def get_wxa_code_unlimited(self, scene: str, page: str | None = None, *, check_path: bool = True,
                                     env_version: str = "release", width: int = 430) -> bytes:
        """A mini-program code image (PNG bytes) opening `page` with `scene` (≤ 32 visible characters)."""
        result = await self._call(self._client.wxa.get_wxa_code_unlimited, scene, width=width, page=page,
                                  check_path=check_path, env_version=env_version)
        if not isinstance(result, requests.Response):
            raise AppError("wechat_unavailable", 503)
        return result.content

    # ---- the shared access token ---------------------------------------------------------------

    async def access_token(self) -> str:
        """A token with more than the refresh margin left, fetching one if needed (once for all processes)."""
        if self._kept is not None and self._kept[1] > asyncio.get_running_loop().time():
            return self._kept[0]
        cached = await self._store.get()
        if cached and cached.seconds_left > self._margin:
            return self._keep(cached.value, cached.seconds_left)
        return await self._refresh()

    def _keep(self, token: str, seconds_left: float) -> str:
        """Remember `token` for a while, never past the point where it is due for refresh."""
        kept_for = min(TOKEN_KEPT_SECONDS, seconds_left - self._margin)
        if kept_for > 0:
            self._kept = (token, asyncio.get_running_loop().time() + kept_for)
        return token

    async def _refresh(self, rejected: str | None = None) -> str:
        async with self._local_lock:
            try:
                async with self._store.lock():
                    # Double-checked: whoever held the lock before us may have stored a fresh token.
                    cached = await self._store.get()
                    if cached and cached.seconds_left > self._margin and cached.value != rejected:
                        return self._keep(cached.value, cached.seconds_left)
                    result = _json(await self._run(self._client.fetch_access_token))
                    await self._store.put(result["access_token"], result["expires_in"])
                    return self._keep(result["access_token"], result["expires_in"])
            except LockError:
                log.warning("wechat token lock not acquired in time")
                raise AppError("wechat_unavailable", 503) from None

    async def _call(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A token-protected call. A call WeChat rejected for its token was not carried out, so one retry
        with a new token cannot do anything twice."""
        token = await self.access_token()
        try:
            return await self._run(call, *args, token=token, **kwargs)
        except _TokenRejected:
            if self._kept is not None and self._kept[0] == token:
                self._kept = None
            await self._store.discard(token)
        token = await self._refresh(rejected=token)
        try:
            return await self._run(call, *args, token=token, **kwargs)
        except _TokenRejected:
            raise AppError("wechat_unavailable", 503) from None

    async def _run(self, call: Callable[..., T], *args: Any, token: str | None = None, **kwargs: Any) -> T:
        def in_thread() -> T:
            _call_token.set(token)
            return call(*args, **kwargs)

        try:
            return await asyncio.to_thread(in_thread)
        except WeChatClientException as exc:
            if token is not None and exc.errcode in TOKEN_REJECTED:
                raise _TokenRejected() from None
            log.warning("wechat %s failed: errcode=%s errmsg=%s", call.__name__, exc.errcode, exc.errmsg)
            raise _app_error(exc.errcode) from None
        except requests.RequestException as exc:
            # Only the type: the message holds the URL, and jscode2session's URL holds the secret.
            log.warning("wechat %s unreachable: %s", call.__name__, type(exc).__name__)
            raise AppError("wechat_unavailable", 503) from None
