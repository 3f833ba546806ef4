"""Phone + SMS code login: codes are single-use, unguessable past five tries, and rate-limited."""
import asyncio

from backend.accounts.models import Citizen, OtpChallenge
from tests.factories import bearer, login_citizen, new_phone, sms_code_for


class TestRequestCode:
    async def test_the_console_sender_prints_the_code_with_the_phone_masked(self, client, capsys):
        phone = new_phone()
        response = await client.post("/api/v1/auth/sms-code", json={"phone": phone})
        assert response.status_code == 202
        assert response.json() == {"expires_in": 300, "resend_after": 60}
        printed = capsys.readouterr().out
        assert phone not in printed
        assert len(sms_code_for(phone, printed)) == 6

    async def test_the_code_is_stored_hashed(self, client, capsys, server):
        phone = new_phone()
        await client.post("/api/v1/auth/sms-code", json={"phone": phone})
        code = sms_code_for(phone, capsys.readouterr().out)
        index = server.app.ctx.rt.cipher.index(phone, purpose="citizen.phone")
        challenge = await OtpChallenge.filter(phone_index=index).order_by("-id").first()
        assert code not in challenge.code_hash
        assert len(challenge.code_hash.partition("$")[2]) == 64

    async def test_a_second_code_within_a_minute_is_refused_with_retry_after(self, client, capsys):
        phone = new_phone()
        assert (await client.post("/api/v1/auth/sms-code", json={"phone": phone})).status_code == 202
        again = await client.post("/api/v1/auth/sms-code", json={"phone": phone})
        assert again.status_code == 429
        assert 0 < int(again.headers["retry-after"]) <= 60
        assert again.json()["code"] == "rate_limited"
        assert again.json()["retry_after"] == int(again.headers["retry-after"])
        capsys.readouterr()

    async def test_five_an_hour(self, app_with, capsys):
        running = await app_with(otp={"per_phone_per_minute": 1000})
        phone = new_phone()
        async with running.client() as http:
            statuses = [(await http.post("/api/v1/auth/sms-code", json={"phone": phone})).status_code
                        for _ in range(6)]
            refused = await http.post("/api/v1/auth/sms-code", json={"phone": phone})
        assert statuses == [202] * 5 + [429]
        assert 60 < int(refused.headers["retry-after"]) <= 3600
        capsys.readouterr()

    async def test_ten_a_day(self, app_with, capsys):
        running = await app_with(otp={"per_phone_per_minute": 1000, "per_phone_per_hour": 1000})
        phone = new_phone()
        async with running.client() as http:
            statuses = [(await http.post("/api/v1/auth/sms-code", json={"phone": phone})).status_code
                        for _ in range(11)]
            refused = await http.post("/api/v1/auth/sms-code", json={"phone": phone})
        assert statuses == [202] * 10 + [429]
        assert 3600 < int(refused.headers["retry-after"]) <= 86400
        capsys.readouterr()

    async def test_per_client_address(self, app_with, capsys):
        running = await app_with(proxies_count=1, otp={"per_ip_per_hour": 3})
        address = f"192.0.2.{asyncio.get_running_loop().time() % 250:.0f}"  # TEST-NET-1: only a header value
        async with running.client(headers={"X-Forwarded-For": address}) as http:
            statuses = [(await http.post("/api/v1/auth/sms-code", json={"phone": new_phone()})).status_code
                        for _ in range(4)]
        assert statuses == [202, 202, 202, 429]
        capsys.readouterr()

    async def test_login_attempts_per_client_address(self, app_with, capsys):
        running = await app_with(proxies_count=1, otp={"login_per_ip_per_minute": 3})
        async with running.client(headers={"X-Forwarded-For": "198.51.100.7"}) as http:
            statuses = [(await http.post("/api/v1/auth/login", json={"phone": new_phone(), "code": "123456"})).status_code
                        for _ in range(4)]
        assert statuses == [400, 400, 400, 429]

    async def test_a_malformed_phone_is_a_422_and_sends_nothing(self, client, capsys):
        response = await client.post("/api/v1/auth/sms-code", json={"phone": "12345"},
                                     headers={"Accept-Language": "en"})
        assert response.status_code == 422
        body = response.json()
        assert body["errors"] == [{"field": "phone", "code": "field.phone",
                                   "message": "Enter an 11-digit mainland China mobile number."}]
        assert "[SMS to" not in capsys.readouterr().out


class TestLogin:
    async def test_the_right_code_logs_in_once_and_creates_one_citizen(self, client, capsys):
        phone = new_phone()
        await client.post("/api/v1/auth/sms-code", json={"phone": phone})
        code = sms_code_for(phone, capsys.readouterr().out)
        first = await client.post("/api/v1/auth/login", json={"phone": phone, "code": code})
        assert first.status_code == 200
        assert first.json()["token_type"] == "Bearer"
        replay = await client.post("/api/v1/auth/login", json={"phone": phone, "code": code})
        assert replay.status_code == 400 and replay.json()["code"] == "otp_expired"
        me = (await client.get("/api/v1/me", headers=bearer(first.json()))).json()
        assert me["phone"] == phone[:3] + "****" + phone[-4:]

    async def test_logging_in_again_finds_the_same_citizen(self, app_with, capsys):
        running = await app_with(otp={"per_phone_per_minute": 1000})
        phone = new_phone()
        async with running.client() as http:
            first = await login_citizen(http, capsys, phone)
            second = await login_citizen(http, capsys, phone)
            ids = {(await http.get("/api/v1/me", headers=bearer(tokens))).json()["id"] for tokens in (first, second)}
        assert len(ids) == 1
        index = running.app.ctx.rt.cipher.index(phone, purpose="citizen.phone")
        assert await Citizen.filter(phone_index=index).count() == 1

    async def test_a_code_cannot_be_guessed_past_five_tries(self, client, capsys):
        phone = new_phone()
        await client.post("/api/v1/auth/sms-code", json={"phone": phone})
        code = sms_code_for(phone, capsys.readouterr().out)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        answers = [(await client.post("/api/v1/auth/login", json={"phone": phone, "code": wrong})).json()
                   for _ in range(5)]
        assert [a["code"] for a in answers] == ["otp_invalid"] * 4 + ["otp_expired"]
        assert [a.get("remaining") for a in answers] == [4, 3, 2, 1, 0]
        late = await client.post("/api/v1/auth/login", json={"phone": phone, "code": code})
        assert late.status_code == 400 and late.json()["code"] == "otp_expired"

    async def test_fifty_concurrent_guesses_get_only_five_comparisons(self, client, capsys, server):
        phone = new_phone()
        await client.post("/api/v1/auth/sms-code", json={"phone": phone})
        code = sms_code_for(phone, capsys.readouterr().out)
        wrong = [f"{(int(code) + n) % 1_000_000:06d}" for n in range(1, 50)]
        guesses = wrong[:25] + [code] + wrong[25:]
        responses = await asyncio.gather(*(
            client.post("/api/v1/auth/login", json={"phone": phone, "code": guess}) for guess in guesses))
        # a guess was compared if it logged in, was told it was wrong, or burnt the code (remaining 0)
        compared = [r for r in responses if r.status_code == 200 or r.json().get("code") == "otp_invalid"
                    or r.json().get("remaining") == 0]
        index = server.app.ctx.rt.cipher.index(phone, purpose="citizen.phone")
        challenge = await OtpChallenge.filter(phone_index=index).order_by("-id").first()
        assert challenge.attempts <= 5
        assert len(compared) == challenge.attempts
        assert sum(r.status_code == 200 for r in responses) <= 1

    async def test_a_code_for_another_phone_does_not_work(self, client, capsys):
        phone, other = new_phone(), new_phone()
        await client.post("/api/v1/auth/sms-code", json={"phone": phone})
        code = sms_code_for(phone, capsys.readouterr().out)
        response = await client.post("/api/v1/auth/login", json={"phone": other, "code": code})
        assert response.status_code == 400 and response.json()["code"] == "otp_expired"
