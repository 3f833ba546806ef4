"""Login codes through Alibaba Cloud and Tencent Cloud: the official SDKs, pointed by settings at
loopback fakes that verify their signatures and answer in the providers' formats. What a provider
refuses becomes a clear answer: 503 to try later, 422 for a number it will not send to; never a 500."""
import re

import pytest

from tests.factories import new_phone
from tests.notify.conftest import aliyun_settings, tencent_settings


async def _request_code(http, phone: str, language: str = "zh"):
    return await http.post("/api/v1/auth/sms-code", json={"phone": phone}, headers={"Accept-Language": language})


class TestAlibabaCloud:
    async def test_the_code_goes_out_on_the_registered_template_and_logs_in(self, app_with, aliyun, capsys):
        running = await app_with(sms=aliyun_settings(aliyun))
        phone = new_phone()
        async with running.client() as http:
            sent = await _request_code(http, phone)
            assert sent.status_code == 202, sent.text
            message = aliyun.sent[-1]
            assert message["phone_numbers"] == phone and message["sign_name"] == "乌兰察布政务服务"
            assert message["template_code"] == "SMS_000000001"
            assert re.fullmatch(r"\d{6}", message["template_param"]["code"])
            assert message["template_param"]["minutes"] == "5"
            login = await http.post("/api/v1/auth/login", json={"phone": phone,
                                                                 "code": message["template_param"]["code"]})
        assert login.status_code == 200, login.text
        assert phone not in capsys.readouterr().err   # nothing printed the number, not the SDK either

    async def test_the_citizens_language_picks_the_template_registered_for_it(self, app_with, aliyun):
        running = await app_with(sms=aliyun_settings(aliyun))
        async with running.client() as http:
            assert (await _request_code(http, new_phone(), "mn")).status_code == 202
        assert aliyun.sent[-1]["template_code"] == "SMS_000000002"

    @pytest.mark.parametrize("code, status, error", [
        ("isv.BUSINESS_LIMIT_CONTROL", 503, "sms_unavailable"),
        ("isv.AMOUNT_NOT_ENOUGH", 503, "sms_unavailable"),
        ("isv.MOBILE_NUMBER_ILLEGAL", 422, "sms_refused"),
        ("isv.SMS_TEMPLATE_ILLEGAL", 503, "sms_unavailable"),
    ])
    async def test_what_the_provider_refuses_is_a_clear_answer(self, app_with, aliyun, code, status, error):
        running = await app_with(sms=aliyun_settings(aliyun))
        aliyun.fail_next(code)
        async with running.client() as http:
            response = await _request_code(http, new_phone())
        assert response.status_code == status, response.text
        assert response.json()["code"] == error
        assert response.headers["content-type"].startswith("application/problem+json")
        if status == 503:
            assert int(response.headers["retry-after"]) > 0

    async def test_a_wrong_secret_is_refused_by_the_signature_check_and_answered_503(self, app_with, aliyun):
        running = await app_with(sms=aliyun_settings(aliyun, access_key_secret="not-the-secret"))
        before = len(aliyun.sent)
        async with running.client() as http:
            response = await _request_code(http, new_phone())
        assert response.status_code == 503 and response.json()["code"] == "sms_unavailable"
        assert len(aliyun.sent) == before

    async def test_an_unreachable_provider_is_503(self, app_with, aliyun):
        running = await app_with(sms=aliyun_settings(aliyun, endpoint="127.0.0.1:1", timeout_seconds=2))
        async with running.client() as http:
            response = await _request_code(http, new_phone())
        assert response.status_code == 503 and response.json()["code"] == "sms_unavailable"


class TestTencentCloud:
    async def test_the_code_goes_out_with_its_parameters_in_template_order_and_logs_in(self, app_with, tencent,
                                                                                       capsys):
        running = await app_with(sms=tencent_settings(tencent))
        phone = new_phone()
        async with running.client() as http:
            sent = await _request_code(http, phone, "en")
            assert sent.status_code == 202, sent.text
            message = tencent.sent[-1]
            assert message["phone"] == "+86" + phone and message["template_id"] == "1000003"
            code, minutes = message["params"]
            assert re.fullmatch(r"\d{6}", code) and minutes == "5"
            login = await http.post("/api/v1/auth/login", json={"phone": phone, "code": code})
        assert login.status_code == 200, login.text
        assert phone not in capsys.readouterr().err

    @pytest.mark.parametrize("code, status, error", [
        ("LimitExceeded.PhoneNumberThirtySecondLimit", 503, "sms_unavailable"),
        ("LimitExceeded.PhoneNumberDailyLimit", 503, "sms_unavailable"),
        ("FailedOperation.PhoneNumberInBlacklist", 422, "sms_refused"),
    ])
    async def test_what_the_provider_refuses_is_a_clear_answer(self, app_with, tencent, code, status, error):
        running = await app_with(sms=tencent_settings(tencent))
        tencent.fail_next(code)
        async with running.client() as http:
            response = await _request_code(http, new_phone())
        assert response.status_code == status, response.text
        assert response.json()["code"] == error

    @pytest.mark.parametrize("changes", [{"secret_key": "not-the-key"}, {"sdk_app_id": "1400999999"}])
    async def test_wrong_credentials_are_refused_by_the_provider_and_answered_503(self, app_with, tencent, changes):
        running = await app_with(sms=tencent_settings(tencent, **changes))
        before = len(tencent.sent)
        async with running.client() as http:
            response = await _request_code(http, new_phone())
        assert response.status_code == 503 and response.json()["code"] == "sms_unavailable"
        assert len(tencent.sent) == before
