"""Bad input is a clear 4xx problem+json in the caller's language, and changes nothing."""
import pytest

from backend.accounts.models import OtpChallenge
from tests.factories import bearer, login_citizen


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
