"""Staff: argon2id passwords, roles scoped to halls, audited reads of personal data."""
import pytest

from backend.accounts.models import StaffUser
from backend.kit.auth import Grant
from backend.kit.models import AuditEntry
from tests.factories import bearer, login_citizen, staff_tokens


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


READ = {"hall": "150900", "reason": "核验身份 identity check at the window"}


class TestPersonalData:
    async def test_a_clerk_reads_a_citizens_unmasked_data_and_the_read_is_audited(self, client, capsys):
        citizen = await login_citizen(client, capsys)
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150900"))
        found = await client.post("/api/v1/staff/citizens/lookup", headers=bearer(clerk),
                                  json={"phone": citizen["phone"], "hall": "150900"})
        assert found.status_code == 200
        assert found.json()["phone"] == citizen["phone"][:3] + "****" + citizen["phone"][-4:]
        citizen_id = found.json()["id"]
        before = await AuditEntry.filter(action="citizen.pii.read", subject_id=str(citizen_id)).count()
        pii = await client.get(f"/api/v1/staff/citizens/{citizen_id}/pii", headers=bearer(clerk), params=READ)
        assert pii.status_code == 200
        assert pii.json()["phone"] == citizen["phone"]
        assert pii.headers["cache-control"] == "no-store"
        entries = await AuditEntry.filter(action="citizen.pii.read", subject_id=str(citizen_id))
        assert len(entries) == before + 1
        assert entries[-1].actor_id == str(clerk["id"])
        assert entries[-1].request_id == pii.headers["x-request-id"]

    @pytest.mark.parametrize("role", ["admin"])
    async def test_roles_without_need_are_refused_and_nothing_is_audited(self, client, capsys, role):
        citizen = await login_citizen(client, capsys)
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150900"))
        citizen_id = (await client.post("/api/v1/staff/citizens/lookup", headers=bearer(clerk),
                                        json={"phone": citizen["phone"], "hall": "150900"})).json()["id"]
        other = await staff_tokens(client, Grant(role))
        refused = await client.get(f"/api/v1/staff/citizens/{citizen_id}/pii", headers=bearer(other), params=READ)
        assert refused.status_code == 403
        assert not await AuditEntry.filter(action="citizen.pii.read", subject_id=str(citizen_id)).exists()
        as_citizen = await client.get(f"/api/v1/staff/citizens/{citizen_id}/pii", headers=bearer(citizen),
                                      params=READ)
        assert as_citizen.status_code == 403

    async def test_unknown_citizen(self, client):
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150900"))
        response = await client.get("/api/v1/staff/citizens/999999999/pii", headers=bearer(clerk), params=READ)
        assert response.status_code == 404
