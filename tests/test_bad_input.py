"""Bad input is a clear 4xx problem+json in the caller's language, and changes nothing."""
import pytest
from sanic.response import json as json_response

from backend.accounts.models import OtpChallenge
from tests.conftest import start_server
from tests.factories import bearer, login_citizen, new_phone, sms_code_for


def _is_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code and body["status"] == status and body["detail"] and body["request_id"]
    return body


class TestMalformedRequests:
    async def test_malformed_json(self, client):
        response = await client.post("/api/v1/auth/sms-code", content=b'{"phone": ',
                                     headers={"content-type": "application/json"})
        _is_problem(response, 400, "malformed_json")

    async def test_not_json_at_all(self, client):
        response = await client.post("/api/v1/auth/sms-code", content=b"phone=13800001111",
                                     headers={"content-type": "application/x-www-form-urlencoded"})
        _is_problem(response, 415, "unsupported_media_type")

    @pytest.mark.parametrize("body", [[], "13800001111", 5, None, {"phone": 13800001111}, {"phone": ["1"]}])
    async def test_wrong_types(self, client, body):
        response = await client.post("/api/v1/auth/sms-code", json=body)
        problem = _is_problem(response, 422, "validation_failed")
        assert problem["errors"]

    async def test_missing_fields_are_named(self, client):
        response = await client.post("/api/v1/auth/login", json={}, headers={"Accept-Language": "en"})
        problem = _is_problem(response, 422, "validation_failed")
        assert {e["field"] for e in problem["errors"]} == {"phone", "code"}
        assert all(e["code"] == "field.missing" and e["message"] == "This field is required."
                   for e in problem["errors"])

    async def test_an_oversize_body_is_refused_before_it_is_read(self, client):
        before = await OtpChallenge.all().count()
        response = await client.post("/api/v1/auth/sms-code", content=b'{"phone":"' + b"1" * 70_000 + b'"}',
                                     headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert await OtpChallenge.all().count() == before

    async def test_unknown_routes_and_methods(self, client):
        _is_problem(await client.get("/api/v1/nothing-here"), 404, "not_found")
        _is_problem(await client.delete("/api/v1/halls"), 405, "method_not_allowed")


class TestLanguages:
    @pytest.mark.parametrize("language,fragment", [("zh", "请先登录"), ("en", "log in"), ("mn", "ᠨᠡᠪᠲᠡᠷᠡᠭᠡᠷᠡᠢ")])
    async def test_the_message_follows_accept_language(self, client, language, fragment):
        response = await client.get("/api/v1/me", headers={"Accept-Language": language})
        body = _is_problem(response, 401, "unauthenticated")
        assert fragment in body["detail"]
        assert body["lang"] == language and response.headers["content-language"] == language
        assert body["title"] == "Please log in first."

    async def test_chinese_is_the_default(self, client):
        body = (await client.get("/api/v1/me", headers={"Accept-Language": "fr"})).json()
        assert body["lang"] == "zh"


class TestNothingHalfWritten:
    async def test_a_refused_profile_change_leaves_every_field_as_it_was(self, client, capsys):
        tokens = await login_citizen(client, capsys)
        await client.patch("/api/v1/me", headers=bearer(tokens), json={"name": "乌日娜"})
        response = await client.patch("/api/v1/me", headers=bearer(tokens),
                                      json={"name": "改了", "preferred_language": "en", "id_number": "123"})
        assert response.status_code == 422
        me = (await client.get("/api/v1/me", headers=bearer(tokens))).json()
        assert me["name"] == "乌**" and me["preferred_language"] == "zh"


class TestControlCharacters:
    async def test_a_nul_byte_in_a_query_is_a_422_on_every_backend(self, client):
        response = await client.get("/api/v1/service-items", params={"q": "社保\x00"})
        problem = _is_problem(response, 422, "validation_failed")
        assert problem["errors"][0]["field"] == "q"

    async def test_a_nul_byte_in_a_body(self, client, capsys):
        tokens = await login_citizen(client, capsys)
        response = await client.patch("/api/v1/me", headers=bearer(tokens), json={"name": "巴\x00特尔"})
        _is_problem(response, 422, "validation_failed")


class TestDeepNesting:
    @pytest.mark.parametrize("depth", [900, 20_000])
    async def test_deeply_nested_json_is_a_4xx_not_a_500(self, client, depth):
        body = b"[" * depth + b"]" * depth
        response = await client.post("/api/v1/auth/sms-code", content=body,
                                     headers={"content-type": "application/json"})
        assert response.status_code in (400, 422), response.text
        assert response.headers["content-type"].startswith("application/problem+json")


class TestLoneSurrogates:
    """JSON may spell a lone UTF-16 surrogate ("\\ud800"): no text a person types, and no encoder takes it."""

    async def test_in_a_body(self, client, capsys):
        tokens = await login_citizen(client, capsys)
        response = await client.patch("/api/v1/me", headers={**bearer(tokens), "content-type": "application/json"},
                                      content=b'{"name": "\\ud800x"}')
        _is_problem(response, 422, "validation_failed")

    async def test_in_a_search(self, client):
        response = await client.get("/api/v1/service-items?q=%ED%A0%80")
        assert response.status_code in (200, 400, 422), response.text


class TestErrorAmplification:
    """An error answer stays small whatever the input: a few field errors, short paths, and a count."""

    async def test_thousands_of_control_characters_under_a_long_key_answer_a_small_problem(self, client):
        body = {"k" * 10_000: ["\x01"] * 5_000}   # 60 KB: under the body limit
        response = await client.post("/api/v1/auth/sms-code", json=body)
        problem = _is_problem(response, 422, "validation_failed")
        assert len(response.content) < 8_000, len(response.content)
        assert len(problem["errors"]) == 20 and problem["more_errors"] == 5_000 - 20
        assert all(len(error["field"]) <= 121 and error["code"] == "field.format" for error in problem["errors"])

    async def test_many_model_errors_with_long_names_answer_a_small_problem(self, client):
        body = {f"{i:04d}" + "k" * 1_400: 1 for i in range(40)}   # 40 unknown fields, and phone is missing
        response = await client.post("/api/v1/auth/sms-code", json=body)
        problem = _is_problem(response, 422, "validation_failed")
        assert len(response.content) < 8_000, len(response.content)
        assert len(problem["errors"]) == 20 and problem["more_errors"] == 41 - 20
        assert all(len(error["field"]) <= 121 for error in problem["errors"])

    async def test_a_short_list_of_errors_has_no_count(self, client):
        problem = _is_problem(await client.post("/api/v1/auth/login", json={}), 422, "validation_failed")
        assert "more_errors" not in problem


class TestFieldMessagesNameTheLimits:
    @pytest.mark.parametrize("language", ["zh", "mn", "en"])
    async def test_a_page_size_out_of_range_names_the_largest_allowed(self, client, language):
        response = await client.get("/api/v1/service-items", params={"page_size": 1000},
                                    headers={"Accept-Language": language})
        problem = _is_problem(response, 422, "validation_failed")
        [error] = problem["errors"]
        assert error["field"] == "page_size" and error["code"] == "field.range"
        assert "≤ 100" in error["message"], error["message"]

    async def test_a_page_below_one_names_the_smallest_allowed(self, client):
        response = await client.get("/api/v1/service-items", params={"page": 0}, headers={"Accept-Language": "en"})
        [error] = _is_problem(response, 422, "validation_failed")["errors"]
        assert error["message"] == "Out of the allowed range: must be ≥ 1."

    @pytest.mark.parametrize("language", ["zh", "mn", "en"])
    async def test_a_language_not_offered_names_the_ones_that_are(self, client, capsys, language):
        tokens = await login_citizen(client, capsys)
        response = await client.patch("/api/v1/me", json={"preferred_language": "fr"},
                                      headers={**bearer(tokens), "Accept-Language": language})
        [error] = _is_problem(response, 422, "validation_failed")["errors"]
        assert error["code"] == "field.choice"
        assert "zh, mn, en" in error["message"], error["message"]

    async def test_a_name_too_long_names_the_length_and_its_unit(self, client, capsys):
        tokens = await login_citizen(client, capsys)
        response = await client.patch("/api/v1/me", json={"name": "巴" * 41},
                                      headers={**bearer(tokens), "Accept-Language": "en"})
        [error] = _is_problem(response, 422, "validation_failed")["errors"]
        assert error["code"] == "field.too_long"
        assert error["message"] == "Too long: at most 40 characters."


class TestBodyTooLarge:
    @pytest.mark.parametrize("language", ["zh", "mn", "en"])
    async def test_the_413_names_the_limit(self, client, settings, language):
        response = await client.post("/api/v1/auth/sms-code", content=b'{"phone":"' + b"1" * 70_000 + b'"}',
                                     headers={"content-type": "application/json", "Accept-Language": language})
        problem = _is_problem(response, 413, "body_too_large")
        assert str(settings.max_body_bytes) in problem["detail"] and "{limit}" not in problem["detail"]


class TestUploadRoutesBodyLimit:
    """Routes declared with ctx_upload=True take one file of files.max_upload_bytes in multipart; every
    other route keeps refusing bodies past max_body_bytes before reading them."""

    @pytest.fixture
    async def upload_server(self, settings, database):
        def add_routes(app):
            @app.post("/test/upload", ctx_upload=True)
            async def upload(request):
                return json_response({"received": len(request.files["file"][0].body)})

            @app.post("/test/json")
            async def not_upload(request):
                return json_response({"received": len(request.body)})

        running, stop = await start_server(settings.model_copy(update={
            "files": settings.files.model_copy(update={"max_upload_bytes": 200_000})}), add_routes=add_routes)
        try:
            async with running.client() as http:
                yield http, running.settings
        finally:
            await stop()

    async def test_a_file_of_the_largest_size_fits_in_its_multipart_request(self, upload_server):
        http, settings = upload_server
        data = b"%PDF-" + b"0" * (settings.files.max_upload_bytes - 5)
        response = await http.post("/test/upload", files={"file": ("材料.pdf", data, "application/pdf")},
                                   data={"material": "id_card_front"})
        assert response.status_code == 200, response.text
        assert response.json() == {"received": settings.files.max_upload_bytes}

    async def test_a_request_past_the_upload_limit_names_that_limit(self, upload_server):
        http, settings = upload_server
        data = b"0" * (settings.max_upload_request_bytes + 1)
        response = await http.post("/test/upload", files={"file": ("a.pdf", data, "application/pdf")},
                                   headers={"Accept-Language": "en"})
        problem = _is_problem(response, 413, "body_too_large")
        assert str(settings.max_upload_request_bytes) in problem["detail"]

    async def test_other_routes_keep_the_json_limit(self, upload_server):
        http, settings = upload_server
        response = await http.post("/test/json", content=b"0" * (settings.max_body_bytes + 1),
                                   headers={"Accept-Language": "en"})
        problem = _is_problem(response, 413, "body_too_large")
        assert str(settings.max_body_bytes) in problem["detail"]


def _full_width(digits: str) -> str:
    return digits.translate(str.maketrans("0123456789", "０１２３４５６７８９"))


class TestNonAsciiDigits:
    """One phone is one key, however its digits are typed; digits of other scripts are not a phone."""

    async def test_a_phone_in_full_width_digits_shares_the_ascii_phones_send_limit(self, client, capsys):
        phone = new_phone()
        mixed = phone[:3] + _full_width(phone[3:7]) + phone[7:]
        assert (await client.post("/api/v1/auth/sms-code", json={"phone": mixed})).status_code == 202
        again = await client.post("/api/v1/auth/sms-code", json={"phone": phone})
        assert again.status_code == 429, again.text
        capsys.readouterr()

    async def test_a_full_width_phone_logs_in_to_the_same_account(self, app_with, capsys):
        running = await app_with(otp={"per_phone_per_minute": 1000})
        phone = new_phone()
        async with running.client() as http:
            ascii_login = await login_citizen(http, capsys, phone)
            sent = await http.post("/api/v1/auth/sms-code", json={"phone": _full_width(phone)})
            assert sent.status_code == 202, sent.text
            code = sms_code_for(phone, capsys.readouterr().out)   # the SMS goes to the one phone
            wide_login = (await http.post("/api/v1/auth/login",
                                          json={"phone": _full_width(phone), "code": code})).json()
            first = (await http.get("/api/v1/me", headers=bearer(ascii_login))).json()
            second = (await http.get("/api/v1/me", headers=bearer(wide_login))).json()
        assert first["id"] == second["id"]

    @pytest.mark.parametrize("digits", ["١٣٩٠٠٠٠٣٣٣٣", "१३९००००३३३३", "139٠٠٠٠3333"])
    async def test_digits_of_other_scripts_are_refused(self, client, digits):
        response = await client.post("/api/v1/auth/sms-code", json={"phone": digits})
        [error] = _is_problem(response, 422, "validation_failed")["errors"]
        assert error["code"] == "field.phone"


class TestIdNumberMessages:
    @pytest.mark.parametrize("id_number,code,fragment", [
        ("150921900101123", "field.id_number_old_format", "2004"),
        ("150921" + "19901301" + "1234", "field.id_number_birth_date", "birth date"),
        ("1509211990010112", "field.id_number", "18 characters"),
    ])
    async def test_each_mistake_is_named_in_a_profile_change(self, client, capsys, id_number, code, fragment):
        tokens = await login_citizen(client, capsys)
        response = await client.patch("/api/v1/me", json={"id_number": id_number},
                                      headers={**bearer(tokens), "Accept-Language": "en"})
        [error] = _is_problem(response, 422, "validation_failed")["errors"]
        assert error["field"] == "id_number" and error["code"] == code
        assert fragment in error["message"] and "check digit" not in error["message"]
