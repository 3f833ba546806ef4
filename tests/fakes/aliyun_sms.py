"""A fake of Alibaba Cloud's SMS API (dysmsapi.aliyuncs.com, 2017-05-25) on a loopback port.

It speaks what the official SDK (alibabacloud_dysmsapi20170525) sends and expects: an RPC call as a
POST to `/` with the parameters in the query string, `x-acs-action: SendSms`, and an
`ACS3-HMAC-SHA256` Authorization header, which the fake verifies with the access key secret it was
given (a wrong secret is answered as Alibaba Cloud does: 400 SignatureDoesNotMatch). Business outcomes
are HTTP 200 with `Code`: "OK" with a `BizId`, or an `isv.*` code the test asked for."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from typing import Any
from urllib.parse import parse_qsl, quote

from sanic import Request, Sanic
from sanic.response import HTTPResponse, json as json_response

from tests.fakes.loopback import LoopbackFake, fake_app

__all__ = ["FakeAliyunSms"]

MESSAGES = {
    "isv.MOBILE_NUMBER_ILLEGAL": "非法手机号",
    "isv.BUSINESS_LIMIT_CONTROL": "触发分钟级流控Permits:1",
    "isv.SMS_TEMPLATE_ILLEGAL": "该账号下找不到对应模板",
    "isv.AMOUNT_NOT_ENOUGH": "账户余额不足",
}


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")


class FakeAliyunSms(LoopbackFake):
    name = "fake-aliyun-sms"

    def __init__(self, access_key_id: str = "LTAI5tFakeAccessKey", access_key_secret: str = "fake-aliyun-secret"):
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.sent: list[dict[str, Any]] = []       # accepted messages, as the provider would deliver them
        self.refused: list[dict[str, Any]] = []    # calls answered with an error code
        self._fail_next: list[str] = []
        # seconds each SendSms takes to answer, as a real provider's round trip would (bench/notify.py)
        self.answer_delay_seconds = 0.0
        super().__init__(self._build_app())

    def fail_next(self, code: str, times: int = 1) -> None:
        """Answer the next `times` sends with `code` (e.g. isv.BUSINESS_LIMIT_CONTROL)."""
        with self._lock:
            self._fail_next.extend([code] * times)

    def _signature_matches(self, request: Request) -> bool:
        authorization = request.headers.get("authorization", "")
        algorithm, _, rest = authorization.partition(" ")
        fields = dict(part.split("=", 1) for part in rest.split(",") if "=" in part)
        if algorithm != "ACS3-HMAC-SHA256" or fields.get("Credential") != self.access_key_id:
            return False
        signed = fields.get("SignedHeaders", "").split(";")
        query = sorted(parse_qsl(request.query_string, keep_blank_values=True))
        canonical = "\n".join([
            request.method, request.path,
            "&".join(f"{_encode(k)}={_encode(v)}" for k, v in query),
            "".join(f"{name}:{request.headers.get(name, '').strip()}\n" for name in signed),
            ";".join(signed),
            hashlib.sha256(request.body).hexdigest(),
        ])
        to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
        expected = hmac.new(self.access_key_secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, fields.get("Signature", ""))

    def _build_app(self) -> Sanic:
        app = fake_app("fake_aliyun_sms")

        @app.post("/")
        async def rpc(request: Request) -> HTTPResponse:
            request_id = str(uuid.uuid4()).upper()
            if self.answer_delay_seconds:
                await asyncio.sleep(self.answer_delay_seconds)
            if request.headers.get("x-acs-action") != "SendSms":
                return json_response({"Code": "InvalidAction.NotFound", "Message": "Specified api is not found",
                                      "RequestId": request_id}, status=404)
            if not self._signature_matches(request):
                return json_response({"Code": "SignatureDoesNotMatch",
                                      "Message": "Specified signature is not matched with our calculation.",
                                      "RequestId": request_id}, status=400)
            params = dict(parse_qsl(request.query_string, keep_blank_values=True))
            call = {"phone_numbers": params.get("PhoneNumbers", ""), "sign_name": params.get("SignName", ""),
                    "template_code": params.get("TemplateCode", ""),
                    "template_param": json.loads(params.get("TemplateParam") or "{}"),
                    "out_id": params.get("OutId")}
            with self._lock:
                code = self._fail_next.pop(0) if self._fail_next else None
                if code is None and not all(p.isdigit() and len(p) == 11 for p in call["phone_numbers"].split(",")):
                    code = "isv.MOBILE_NUMBER_ILLEGAL"
                if code:
                    self.refused.append({**call, "code": code})
                    return json_response({"Code": code, "Message": MESSAGES.get(code, code), "RequestId": request_id})
                biz_id = f"{len(self.sent) + 1:06d}^{uuid.uuid4().int % 10**10:010d}"
                self.sent.append({**call, "biz_id": biz_id})
            return json_response({"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": request_id})

        return app
