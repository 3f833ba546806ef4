"""Refresh tokens work once; a reused one kills its session; logout ends it; forged and expired
access tokens are refused."""
import asyncio
from datetime import datetime, timedelta, timezone

import jwt
import pytest

from backend.kit.models import OutboxEvent

from tests.factories import bearer, login_citizen


class TestRefresh:
    async def test_a_refresh_token_works_once(self, client, capsys):
        tokens = await login_citizen(client, capsys)
        renewed = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert renewed.status_code == 200
        assert renewed.json()["refresh_token"] != tokens["refresh_token"]
        assert (await client.get("/api/v1/me", headers=bearer(renewed.json()))).status_code == 200
        replay = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert replay.status_code == 401
        assert replay.json()["code"] == "refresh_token_invalid"

    async def test_reusing_a_spent_token_revokes_the_whole_session(self, app_with, capsys):
        running = await app_with(auth={"refresh_reuse_grace_seconds": 0})   # the thief comes later
        async with running.client() as client:
            tokens = await login_citizen(client, capsys)
            renewed = (await client.post("/api/v1/auth/refresh",
                                         json={"refresh_token": tokens["refresh_token"]})).json()
            thief = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
            legit = await client.post("/api/v1/auth/refresh", json={"refresh_token": renewed["refresh_token"]})
        assert thief.status_code == 401
        assert legit.status_code == 401
        assert await OutboxEvent.filter(kind="auth.refresh_token_reused").exists()

    async def test_ten_concurrent_refreshes_of_one_token_yield_one_new_pair_that_keeps_working(self, client,
                                                                                             capsys):
        tokens = await login_citizen(client, capsys)
        responses = await asyncio.gather(*(
            client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
            for _ in range(10)))
        assert sorted(r.status_code for r in responses) == [200] + [401] * 9
        winner = next(r.json() for r in responses if r.status_code == 200)
        # the losers were the same app racing, not a thief: the session survives
        again = await client.post("/api/v1/auth/refresh", json={"refresh_token": winner["refresh_token"]})
        assert again.status_code == 200

    async def test_logout_ends_the_session(self, client, capsys):
        tokens = await login_citizen(client, capsys)
        out = await client.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
        assert out.status_code == 204
        again = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert again.status_code == 401
        assert (await client.post("/api/v1/auth/logout",
                                  json={"refresh_token": tokens["refresh_token"]})).status_code == 204

    async def test_an_unknown_refresh_token(self, client):
        response = await client.post("/api/v1/auth/refresh", json={"refresh_token": "x" * 43})
        assert response.status_code == 401


class TestAccessTokens:
    def _claims(self, settings, **changes):
        now = datetime.now(timezone.utc)
        return {"sub": "citizen:1", "sid": "0" * 32, "iss": settings.auth.issuer, "aud": settings.auth.audience,
                "iat": now, "exp": now + timedelta(minutes=5), **changes}

    async def test_no_token(self, client):
        response = await client.get("/api/v1/me")
        assert response.status_code == 401 and response.json()["code"] == "unauthenticated"
        assert response.headers["www-authenticate"] == "Bearer"

    async def test_a_token_signed_with_another_key_is_refused(self, client, settings):
        forged = jwt.encode(self._claims(settings), "not-our-secret-but-long-enough-32b", algorithm="HS256")
        response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401 and response.json()["code"] == "token_invalid"

    async def test_an_unsigned_token_is_refused(self, client, settings):
        unsigned = jwt.encode(self._claims(settings), None, algorithm="none")
        response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {unsigned}"})
        assert response.status_code == 401 and response.json()["code"] == "token_invalid"

    async def test_an_expired_token_says_so(self, client, settings):
        past = datetime.now(timezone.utc) - timedelta(hours=1)
        expired = jwt.encode(self._claims(settings, iat=past, exp=past + timedelta(minutes=5)),
                             settings.jwt_secret.get_secret_value(), algorithm="HS256")
        response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {expired}"})
        assert response.status_code == 401 and response.json()["code"] == "token_expired"

    @pytest.mark.parametrize("header", ["Bearer", "Basic abc", "Bearer a.b.c", "token"])
    async def test_garbage_authorization_headers(self, client, header):
        response = await client.get("/api/v1/me", headers={"Authorization": header})
        assert response.status_code == 401

    async def test_a_staff_token_cannot_use_citizen_endpoints_and_vice_versa(self, client, capsys, settings):
        citizen = await login_citizen(client, capsys)
        assert (await client.get("/api/v1/staff/me", headers=bearer(citizen))).status_code == 403
        staff = jwt.encode(self._claims(settings, sub="staff:1", grants=[{"role": "admin", "hall": None}]),
                           settings.jwt_secret.get_secret_value(), algorithm="HS256")
        response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {staff}"})
        assert response.status_code == 403 and response.json()["code"] == "forbidden_role"


class TestSessionEnd:
    async def test_logout_stops_the_access_token_at_once(self, client, capsys):
        tokens = await login_citizen(client, capsys)
        assert (await client.get("/api/v1/me", headers=bearer(tokens))).status_code == 200
        await client.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
        after = await client.get("/api/v1/me", headers=bearer(tokens))
        assert after.status_code == 401 and after.json()["code"] == "session_ended"

    async def test_logout_ends_only_that_session(self, app_with, capsys):
        running = await app_with(otp={"per_phone_per_minute": 5})
        async with running.client() as client:
            phone_tokens = await login_citizen(client, capsys)
            other = await login_citizen(client, capsys, phone_tokens["phone"])   # the same person on a tablet
            await client.post("/api/v1/auth/logout", json={"refresh_token": phone_tokens["refresh_token"]})
            assert (await client.get("/api/v1/me", headers=bearer(phone_tokens))).status_code == 401
            assert (await client.get("/api/v1/me", headers=bearer(other))).status_code == 200

    async def test_a_refreshed_access_token_belongs_to_the_same_session(self, client, capsys):
        tokens = await login_citizen(client, capsys)
        renewed = (await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})).json()
        await client.post("/api/v1/auth/logout", json={"refresh_token": renewed["refresh_token"]})
        for pair in (tokens, renewed):
            assert (await client.get("/api/v1/me", headers=bearer(pair))).status_code == 401

    @pytest.mark.parametrize("sub", ["staff:\u0661", "staff:\uff11", "staff:\u00b2", "citizen:99999999999999999999"])
    async def test_a_signed_token_with_a_strange_id_is_refused_not_a_500(self, client, settings, sub):
        token = jwt.encode(TestAccessTokens()._claims(settings, sub=sub), settings.jwt_secret.get_secret_value(),
                           algorithm="HS256")
        response = await client.get("/api/v1/staff/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401 and response.json()["code"] == "token_invalid"

    async def test_a_token_without_a_session_is_refused(self, client, settings):
        claims = TestAccessTokens()._claims(settings)
        del claims["sid"]
        token = jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")
        assert (await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})).status_code == 401
