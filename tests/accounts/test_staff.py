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
        running = await app_with(staff={"login_failures_per_15_minutes": 3})
        async with running.client() as http:
            tokens = await staff_tokens(http, Grant("admin"))
            failures = [(await http.post("/api/v1/staff/login",
                                         json={"username": tokens["username"], "password": "bad"})).status_code
                        for _ in range(4)]
            right_password = await http.post("/api/v1/staff/login",
                                             json={"username": tokens["username"], "password": "correct horse battery"})
        assert failures == [401, 401, 401, 429]
        assert right_password.status_code == 429


class TestPersonalData:
    async def test_a_clerk_reads_a_citizens_unmasked_data_and_the_read_is_audited(self, client, capsys):
        citizen = await login_citizen(client, capsys)
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150900"))
        found = await client.post("/api/v1/staff/citizens/lookup", headers=bearer(clerk),
                                  json={"phone": citizen["phone"]})
        assert found.status_code == 200
        assert found.json()["phone"] == citizen["phone"][:3] + "****" + citizen["phone"][-4:]
        citizen_id = found.json()["id"]
        before = await AuditEntry.filter(action="citizen.pii.read", subject_id=str(citizen_id)).count()
        pii = await client.get(f"/api/v1/staff/citizens/{citizen_id}/pii", headers=bearer(clerk))
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
                                        json={"phone": citizen["phone"]})).json()["id"]
        other = await staff_tokens(client, Grant(role))
        refused = await client.get(f"/api/v1/staff/citizens/{citizen_id}/pii", headers=bearer(other))
        assert refused.status_code == 403
        assert not await AuditEntry.filter(action="citizen.pii.read", subject_id=str(citizen_id)).exists()
        as_citizen = await client.get(f"/api/v1/staff/citizens/{citizen_id}/pii", headers=bearer(citizen))
        assert as_citizen.status_code == 403

    async def test_unknown_citizen(self, client):
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150900"))
        response = await client.get("/api/v1/staff/citizens/999999999/pii", headers=bearer(clerk))
        assert response.status_code == 404
