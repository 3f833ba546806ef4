"""Staff: argon2id passwords, login limits that hold under parallel guesses, tokens of staff who are gone."""
import asyncio

from backend.accounts.models import StaffUser
from backend.kit.auth import Grant
from tests.factories import bearer, staff_tokens, unique_address


class TestLogin:
    async def test_passwords_are_argon2id(self, client):
        tokens = await staff_tokens(client, Grant("window_clerk", hall="150921"))
        staff = await StaffUser.get(username=tokens["username"])
        assert staff.password_hash.startswith("$argon2id$")
        me = (await client.get("/api/v1/staff/me", headers=bearer(tokens))).json()
        assert me["grants"] == [{"role": "window_clerk", "hall": "150921", "department": None}]

    async def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(self, client):
        tokens = await staff_tokens(client, Grant("approver", hall="150900", department="zjw"))
        wrong = await client.post("/api/v1/staff/login", json={"username": tokens["username"], "password": "nope"})
        unknown = await client.post("/api/v1/staff/login", json={"username": "nobody-here", "password": "nope"})
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json()["code"] == unknown.json()["code"] == "login_failed"

    async def test_repeated_failures_lock_the_username_for_a_while(self, app_with):
        running = await app_with(staff={"login_attempts_per_15_minutes": 3})
        async with running.client() as http:
            tokens = await staff_tokens(http, Grant("admin"))
            failures = [(await http.post("/api/v1/staff/login",
                                         json={"username": tokens["username"], "password": "bad"})).status_code
                        for _ in range(4)]
            right_password = await http.post("/api/v1/staff/login",
                                             json={"username": tokens["username"], "password": "correct horse battery"})
        assert failures == [401, 401, 401, 429]
        assert right_password.status_code == 429


class TestLoginUnderAttack:
    async def test_forty_parallel_guesses_compare_at_most_the_allowed_passwords(self, app_with):
        running = await app_with(staff={"login_attempts_per_15_minutes": 10})
        async with running.client() as http:
            tokens = await staff_tokens(http, Grant("admin"))
            guesses = [f"wrong guess {i}" for i in range(40)]
            guesses[30] = "correct horse battery"
            responses = await asyncio.gather(*(
                http.post("/api/v1/staff/login", json={"username": tokens["username"], "password": guess})
                for guess in guesses))
        statuses = [r.status_code for r in responses]
        # every attempt is counted before argon2 runs: 10 were compared, 30 refused unchecked
        assert len([s for s in statuses if s in (200, 401)]) == 10
        assert statuses.count(429) == 30
        right = responses[30]
        assert right.status_code in (200, 429)  # accepted only if it was among the ten compared

    async def test_logins_from_one_address_are_limited_whatever_the_usernames(self, app_with):
        running = await app_with(proxies_count=1, staff={"login_attempts_per_ip_per_15_minutes": 3})
        async with running.client(headers={"X-Forwarded-For": unique_address()}) as http:
            statuses = [(await http.post("/api/v1/staff/login",
                                         json={"username": f"nobody-{i}", "password": "x"})).status_code
                        for i in range(5)]
        assert statuses == [401, 401, 401, 429, 429]

    async def test_a_flood_of_unknown_usernames_is_turned_away_instead_of_queued(self, app_with):
        running = await app_with(staff={"password_checks_running": 1, "password_checks_waiting": 2})
        async with running.client() as http:
            responses = await asyncio.gather(*(
                http.post("/api/v1/staff/login", json={"username": f"ghost-{i}", "password": "x"})
                for i in range(30)))
            statuses = [r.status_code for r in responses]
            busy = [r for r in responses if r.status_code == 503]
            assert busy and set(statuses) <= {401, 503}
            assert all(r.json()["code"] == "busy" and r.headers["retry-after"] == "1" for r in busy)
            # at most one running and two waiting at any moment: the rest never reached argon2
            assert statuses.count(401) < 30
            tokens = await staff_tokens(http, Grant("admin"))   # the flood is over: a real login works
            assert tokens["access_token"]

    async def test_a_successful_login_clears_the_usernames_count(self, app_with):
        running = await app_with(staff={"login_attempts_per_15_minutes": 3})
        async with running.client() as http:
            tokens = await staff_tokens(http, Grant("admin"))
            for _ in range(2):
                await http.post("/api/v1/staff/login", json={"username": tokens["username"], "password": "bad"})
                ok = await http.post("/api/v1/staff/login",
                                     json={"username": tokens["username"], "password": "correct horse battery"})
                assert ok.status_code == 200


class TestStaffTokens:
    async def test_a_token_of_a_deleted_staff_member_is_refused_not_a_500(self, client):
        tokens = await staff_tokens(client, Grant("window_clerk", hall="150921"))
        await StaffUser.filter(id=tokens["id"]).delete()
        response = await client.get("/api/v1/staff/me", headers=bearer(tokens))
        assert response.status_code == 401 and response.json()["code"] == "token_invalid"
