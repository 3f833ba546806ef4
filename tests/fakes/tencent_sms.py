"""A fake of Tencent Cloud's SMS API (sms.tencentcloudapi.com, 2021-01-11) on a loopback port.

It speaks what the official SDK (tencentcloud-sdk-python-sms, its async client) sends and expects: a
POST of JSON to `/` with `X-TC-Action: SendSms` and a `TC3-HMAC-SHA256` Authorization header, which the
fake verifies with the secret key it was given (a wrong key is answered as Tencent Cloud does, with
`Response.Error` AuthFailure.SignatureFailure). Each number gets its own status in `SendStatusSet`:
"Ok" with a SerialNo, or a code the test asked for."""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from datetime import datetime, timezone
from typing import Any

from sanic import Request, Sanic
from sanic.response import HTTPResponse, json as json_response

from tests.fakes.loopback import RecordingFake, fake_app

__all__ = ["FakeTencentSms"]

MESSAGES = {
    "FailedOperation.PhoneNumberInBlacklist": "phone number in blacklist",
    "LimitExceeded.PhoneNumberThirtySecondLimit": "the number of SMS messages sent from a single mobile number "
                                                  "within 30 seconds exceeds the upper limit",
    "LimitExceeded.PhoneNumberDailyLimit": "the number of SMS messages sent from a single mobile number every day "
                                           "exceeds the upper limit",
    "InvalidParameterValue.IncorrectPhoneNumber": "incorrect phone number",
}
_AUTHORIZATION = re.compile(r"TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>\w+)"
                            r"/tc3_request, SignedHeaders=content-type;host, Signature=(?P<signature>[0-9a-f]{64})")


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


class FakeTencentSms(RecordingFake):
    """fail_next(code) gives the next numbers that status (e.g. LimitExceeded.PhoneNumberDailyLimit)."""

    name = "fake-tencent-sms"

    def __init__(self, secret_id: str = "AKIDFakeSecretId", secret_key: str = "fake-tencent-key",
                 sdk_app_id: str = "1400000001"):
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.sdk_app_id = sdk_app_id
        super().__init__(self._build_app())

    def _signature_matches(self, request: Request) -> bool:
        found = _AUTHORIZATION.fullmatch(request.headers.get("authorization", ""))
        if not found or found["id"] != self.secret_id:
            return False
        timestamp = request.headers.get("x-tc-timestamp", "")
        if not timestamp.isdigit() or datetime.fromtimestamp(int(timestamp), timezone.utc).strftime("%Y-%m-%d") \
                != found["date"]:
            return False
        canonical = "\n".join([
            request.method, request.path, request.query_string,
            f"content-type:{request.headers.get('content-type', '')}\nhost:{request.headers.get('host', '')}\n",
            "content-type;host", hashlib.sha256(request.body).hexdigest()])
        to_sign = "\n".join(["TC3-HMAC-SHA256", timestamp, f"{found['date']}/{found['service']}/tc3_request",
                             hashlib.sha256(canonical.encode()).hexdigest()])
        key = _hmac(_hmac(_hmac(("TC3" + self.secret_key).encode(), found["date"]), found["service"]), "tc3_request")
        return hmac.compare_digest(hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), found["signature"])

    def _reports(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """PullSmsSendStatusByPhoneNumber: the delivery reports of one number between two instants; the
        fake has every accepted message delivered the moment it was sent."""
        begin, end = body.get("BeginTime", 0), body.get("EndTime", 0)
        offset, limit = body.get("Offset", 0), body.get("Limit", 100)
        with self._lock:
            found = [m for m in self.sent if m["phone"] == body.get("PhoneNumber")
                     and begin <= m["sent_at"].timestamp() <= end]
        return [{"UserReceiveTime": int(m["sent_at"].timestamp()), "CountryCode": "86",
                 "SubscriberNumber": m["phone"].removeprefix("+86"), "PhoneNumber": m["phone"],
                 "SerialNo": m["serial_no"], "ReportStatus": "SUCCESS", "Description": "用户短信送达成功",
                 "SessionContext": m["session_context"]} for m in found[offset: offset + limit]]

    def _build_app(self) -> Sanic:
        app = fake_app("fake_tencent_sms")

        @app.post("/")
        async def api(request: Request) -> HTTPResponse:
            request_id = str(uuid.uuid4())
            if not self._signature_matches(request):
                return json_response({"Response": {"Error": {
                    "Code": "AuthFailure.SignatureFailure",
                    "Message": "The provided credentials could not be validated. Please check your signature is "
                               "correct."}, "RequestId": request_id}})
            action = request.headers.get("x-tc-action")
            if action not in ("SendSms", "PullSmsSendStatusByPhoneNumber"):
                return json_response({"Response": {"Error": {"Code": "InvalidAction", "Message": "no such action"},
                                                   "RequestId": request_id}})
            body = json.loads(request.body)
            if body.get("SmsSdkAppId") != self.sdk_app_id:
                return json_response({"Response": {"Error": {
                    "Code": "FailedOperation.SmsSdkAppIdVerifyFail", "Message": "SmsSdkAppId verify fail"},
                    "RequestId": request_id}})
            if action == "PullSmsSendStatusByPhoneNumber":
                return json_response({"Response": {"PullSmsSendStatusSet": self._reports(body),
                                                   "RequestId": request_id}})
            statuses = []
            with self._lock:
                for number in body.get("PhoneNumberSet", []):
                    call = {"phone": number, "sign_name": body.get("SignName"), "template_id": body.get("TemplateId"),
                            "params": body.get("TemplateParamSet", []), "session_context": body.get("SessionContext")}
                    code = self._forced_code(number)
                    if code is None and not re.fullmatch(r"\+861\d{10}", number):
                        code = "InvalidParameterValue.IncorrectPhoneNumber"
                    if code:
                        self.refused.append({**call, "code": code})
                        statuses.append({"SerialNo": "", "PhoneNumber": number, "Fee": 0,
                                         "SessionContext": call["session_context"], "Code": code,
                                         "Message": MESSAGES.get(code, code), "IsoCode": "CN"})
                        continue
                    serial = f"2433:{uuid.uuid4().int % 10**28:028d}"
                    self.sent.append({**call, "serial_no": serial, "sent_at": self.now()})
                    statuses.append({"SerialNo": serial, "PhoneNumber": number, "Fee": 1,
                                     "SessionContext": call["session_context"], "Code": "Ok",
                                     "Message": "send success", "IsoCode": "CN"})
            await self._answer_delay()   # taken: the answer is on its way back
            return json_response({"Response": {"SendStatusSet": statuses, "RequestId": request_id}})

        return app
