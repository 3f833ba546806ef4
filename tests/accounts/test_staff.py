"""Staff: argon2id passwords, roles scoped to halls, audited reads of personal data."""
import asyncio

import pytest

from backend.accounts.models import StaffUser
from backend.kit.auth import Grant
from backend.kit.models import AuditEntry
from tests.factories import bearer, login_citizen, staff_tokens, unique_address


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


class TestHallScope:
    async def test_a_clerk_of_zhuozi_county_is_refused_on_jining_district(self, client):
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150921"))
        jining = (await client.get("/api/v1/halls/150902")).json()["windows"][0]["number"]
        refused = await client.patch(f"/api/v1/staff/halls/150902/windows/{jining}", headers=bearer(clerk),
                                     json={"status": "open"})
        assert refused.status_code == 403
        assert refused.json()["code"] == "out_of_scope"
        after = (await client.get("/api/v1/halls/150902")).json()["windows"][0]
        assert after["status"] == "closed"

    async def test_the_same_clerk_opens_a_window_of_their_own_hall(self, client):
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150921"))
        number = (await client.get("/api/v1/halls/150921")).json()["windows"][0]["number"]
        response = await client.patch(f"/api/v1/staff/halls/150921/windows/{number}", headers=bearer(clerk),
                                      json={"status": "open"})
        assert response.status_code == 200 and response.json()["status"] == "open"
        # the hall detail is partly kept in a cache; the window's status in it is live
        shown = (await client.get("/api/v1/halls/150921")).json()["windows"]
        assert next(w for w in shown if w["number"] == number)["status"] == "open"
        closed = await client.patch(f"/api/v1/staff/halls/150921/windows/{number}", headers=bearer(clerk),
                                    json={"status": "closed"})
        assert closed.json()["status"] == "closed"

    async def test_a_county_clerk_does_not_reach_down_to_township_halls_but_a_supervisor_does(self, client):
        townships = (await client.get("/api/v1/halls", params={"parent": "150921"})).json()["items"]
        with_windows = [t["code"] for t in townships
                        if (await client.get(f"/api/v1/halls/{t['code']}")).json()["windows"]]
        assert with_windows, "the catalogue should give a township hall under 卓资县 a window"
        township = with_windows[0]
        number = (await client.get(f"/api/v1/halls/{township}")).json()["windows"][0]["number"]
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150921"))
        supervisor = await staff_tokens(client, Grant("supervisor", hall="150921"))
        path = f"/api/v1/staff/halls/{township}/windows/{number}"
        assert (await client.patch(path, headers=bearer(clerk), json={"status": "paused"})).status_code == 403
        assert (await client.patch(path, headers=bearer(supervisor), json={"status": "paused"})).status_code == 200

    async def test_an_approver_has_no_window_role(self, client):
        approver = await staff_tokens(client, Grant("approver", hall="150921"))
        response = await client.patch("/api/v1/staff/halls/150921/windows/01", headers=bearer(approver),
                                      json={"status": "open"})
        assert response.status_code == 403 and response.json()["code"] == "forbidden_role"

    async def test_unknown_window_and_bad_status(self, client):
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150921"))
        missing = await client.patch("/api/v1/staff/halls/150921/windows/99", headers=bearer(clerk),
                                     json={"status": "open"})
        assert missing.status_code == 404 and missing.json()["code"] == "window_not_found"
        bad = await client.patch("/api/v1/staff/halls/150921/windows/01", headers=bearer(clerk),
                                 json={"status": "broken"})
        assert bad.status_code == 422

    async def test_a_window_change_is_published_to_the_halls_channel(self, client, server):
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150929"))
        number = (await client.get("/api/v1/halls/150929")).json()["windows"][0]["number"]
        import asyncio

        async with server.app.ctx.rt.broker.subscribe("hall:150929") as messages:
            await client.patch(f"/api/v1/staff/halls/150929/windows/{number}", headers=bearer(clerk),
                               json={"status": "open"})
            message = await asyncio.wait_for(anext(messages), timeout=5)
        assert message == {"channel": "hall:150929", "event": "window.status_changed", "window": number,
                           "status": "open"}


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
