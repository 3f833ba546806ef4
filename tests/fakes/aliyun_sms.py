"""A fake of Alibaba Cloud's SMS API (dysmsapi.aliyuncs.com, 2017-05-25) on a loopback port.

It speaks what the official SDK (alibabacloud_dysmsapi20170525) sends and expects: an RPC call as a
POST to `/` with the parameters in the query string, `x-acs-action: SendSms`, and an
`ACS3-HMAC-SHA256` Authorization header, which the fake verifies with the access key secret it was
given (a wrong secret is answered as Alibaba Cloud does: 400 SignatureDoesNotMatch). Business outcomes
are HTTP 200 with `Code`: "OK" with a `BizId`, or an `isv.*` code the test asked for."""
from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, quote

from sanic import Request, Sanic
from sanic.response import HTTPResponse, json as json_response

from tests.fakes.loopback import RecordingFake, fake_app

__all__ = ["FakeAliyunSms"]

_CHINA = timezone(timedelta(hours=8))

MESSAGES = {
    "isv.MOBILE_NUMBER_ILLEGAL": "非法手机号",
    "isv.BUSINESS_LIMIT_CONTROL": "触发分钟级流控Permits:1",
    "isv.SMS_TEMPLATE_ILLEGAL": "该账号下找不到对应模板",
    "isv.AMOUNT_NOT_ENOUGH": "账户余额不足",
}


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")


class FakeAliyunSms(RecordingFake):
    """fail_next(code) answers a send with an `isv.*` code (e.g. isv.BUSINESS_LIMIT_CONTROL)."""

    name = "fake-aliyun-sms"

    def __init__(self, access_key_id: str = "LTAI5tFakeAccessKey", access_key_secret: str = "fake-aliyun-secret"):
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        super().__init__(self._build_app())

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

    def _send_details(self, params: dict[str, str]) -> dict[str, Any]:
        """QuerySendDetails: the messages to one number on one day (China time), a page of them, each
        with its OutId; the fake reports every accepted message as delivered (SendStatus 3)."""
        size, page = int(params.get("PageSize", "10")), int(params.get("CurrentPage", "1"))
        with self._lock:
            found = [m for m in self.sent if m["phone_numbers"] == params.get("PhoneNumber")
                     and m["sent_at"].astimezone(_CHINA).strftime("%Y%m%d") == params.get("SendDate")]
        dtos = [{"PhoneNum": m["phone_numbers"], "SendStatus": 3, "ErrCode": "DELIVERED",
                 "TemplateCode": m["template_code"], "Content": json.dumps(m["template_param"], ensure_ascii=False),
                 "SendDate": m["sent_at"].astimezone(_CHINA).strftime("%Y-%m-%d %H:%M:%S"),
                 "ReceiveDate": m["sent_at"].astimezone(_CHINA).strftime("%Y-%m-%d %H:%M:%S"),
                 "OutId": m["out_id"]} for m in found[(page - 1) * size: page * size]]
        return {"TotalCount": str(len(found)), "SmsSendDetailDTOs": {"SmsSendDetailDTO": dtos}}

    def _build_app(self) -> Sanic:
        app = fake_app("fake_aliyun_sms")

        @app.post("/")
        async def rpc(request: Request) -> HTTPResponse:
            request_id = str(uuid.uuid4()).upper()
            action = request.headers.get("x-acs-action")
            if action not in ("SendSms", "QuerySendDetails"):
                return json_response({"Code": "InvalidAction.NotFound", "Message": "Specified api is not found",
                                      "RequestId": request_id}, status=404)
            if not self._signature_matches(request):
                return json_response({"Code": "SignatureDoesNotMatch",
                                      "Message": "Specified signature is not matched with our calculation.",
                                      "RequestId": request_id}, status=400)
            params = dict(parse_qsl(request.query_string, keep_blank_values=True))
            if action == "QuerySendDetails":
                return json_response({"Code": "OK", "Message": "OK", "RequestId": request_id,
                                      **self._send_details(params)})
            call = {"phone_numbers": params.get("PhoneNumbers", ""), "sign_name": params.get("SignName", ""),
                    "template_code": params.get("TemplateCode", ""),
                    "template_param": json.loads(params.get("TemplateParam") or "{}"),
                    "out_id": params.get("OutId")}
            with self._lock:
                code = self._forced_code(call["phone_numbers"])
                if code is None and not all(p.isdigit() and len(p) == 11 for p in call["phone_numbers"].split(",")):
                    code = "isv.MOBILE_NUMBER_ILLEGAL"
                if code:
                    self.refused.append({**call, "code": code})
                    return json_response({"Code": code, "Message": MESSAGES.get(code, code), "RequestId": request_id})
                biz_id = f"{len(self.sent) + 1:06d}^{uuid.uuid4().int % 10**10:010d}"
                self.sent.append({**call, "biz_id": biz_id, "sent_at": self.now()})
            # taken, and the answer is on its way back: a client that dies now never hears it
            await self._answer_delay()
            return json_response({"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": request_id})

        return app
