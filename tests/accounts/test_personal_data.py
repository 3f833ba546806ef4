"""Staff reads of a citizen's personal data: a business relation in the reader's hall, a reason, an
allowance per staff member, and an audit row for every read and lookup."""
import asyncio
from datetime import datetime, timedelta

import pytest

from backend.kit.auth import Grant
from backend.kit.models import AuditEntry
from tests.factories import bearer, login_citizen, new_phone, staff_tokens

READ = {"hall": "150900", "reason": "核验身份 identity check at the window"}


async def looked_up(client, clerk: dict, citizen: dict, hall: str = "150900") -> int:
    """A clerk finds the citizen by phone in `hall` (the relation a read needs); the citizen's id."""
    found = await client.post("/api/v1/staff/citizens/lookup", headers=bearer(clerk),
                              json={"phone": citizen["phone"], "hall": hall})
    assert found.status_code == 200, found.text
    return found.json()["id"]


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
        citizen_id = await looked_up(client, clerk, citizen)
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


class TestRelationAndReason:
    async def test_without_a_lookup_in_the_hall_a_clerk_cannot_walk_ids(self, client, capsys):
        citizen = await login_citizen(client, capsys)
        citizen_id = (await client.get("/api/v1/me", headers=bearer(citizen))).json()["id"]
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150900"))
        response = await client.get(f"/api/v1/staff/citizens/{citizen_id}/pii", headers=bearer(clerk), params=READ)
        assert response.status_code == 404 and response.json()["code"] == "citizen_not_related"
        assert citizen["phone"] not in response.text
        assert not await AuditEntry.filter(action="citizen.pii.read", subject_id=str(citizen_id)).exists()

    async def test_the_relation_opens_the_data_for_pii_relation_hours_and_then_no_longer(
            self, client, capsys, frozen_clock):
        looked_up_at = datetime.fromisoformat("2026-10-10T09:00:00+08:00")
        frozen_clock(looked_up_at)
        citizen = await login_citizen(client, capsys)
        citizen_id = await looked_up(client, await staff_tokens(client, Grant("window_clerk", hall="150900")), citizen)
        hours = timedelta(hours=client.rt.settings.staff.pii_relation_hours)
        statuses = []
        for at in (looked_up_at + hours - timedelta(minutes=1), looked_up_at + hours + timedelta(minutes=1)):
            frozen_clock(at)
            clerk = await staff_tokens(client, Grant("window_clerk", hall="150900"))  # logged in at that time
            read = await client.get(f"/api/v1/staff/citizens/{citizen_id}/pii", headers=bearer(clerk), params=READ)
            statuses.append((read.status_code, read.json().get("code")))
        assert statuses == [(200, None), (404, "citizen_not_related")]

    async def test_a_lookup_in_one_hall_does_not_open_the_data_to_another_hall(self, client, capsys):
        citizen = await login_citizen(client, capsys)
        city = await staff_tokens(client, Grant("window_clerk", hall="150900"))
        county = await staff_tokens(client, Grant("window_clerk", hall="150921"))
        citizen_id = await looked_up(client, city, citizen)
        elsewhere = await client.get(f"/api/v1/staff/citizens/{citizen_id}/pii", headers=bearer(county),
                                     params={**READ, "hall": "150921"})
        assert elsewhere.status_code == 404 and elsewhere.json()["code"] == "citizen_not_related"
        # and naming the city hall does not help a county clerk: it is not their hall
        posing = await client.get(f"/api/v1/staff/citizens/{citizen_id}/pii", headers=bearer(county), params=READ)
        assert posing.status_code == 403 and posing.json()["code"] == "out_of_scope"

    async def test_a_lookup_needs_a_hall_the_clerk_works_in(self, client, capsys):
        citizen = await login_citizen(client, capsys)
        county = await staff_tokens(client, Grant("window_clerk", hall="150921"))
        response = await client.post("/api/v1/staff/citizens/lookup", headers=bearer(county),
                                     json={"phone": citizen["phone"], "hall": "150900"})
        assert response.status_code == 403 and response.json()["code"] == "out_of_scope"

    @pytest.mark.parametrize("params", [{"hall": "150900"}, {"reason": "identity check"},
                                        {"hall": "150900", "reason": ""}])
    async def test_a_read_states_its_hall_and_reason(self, client, capsys, params):
        citizen = await login_citizen(client, capsys)
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150900"))
        citizen_id = await looked_up(client, clerk, citizen)
        response = await client.get(f"/api/v1/staff/citizens/{citizen_id}/pii", headers=bearer(clerk), params=params)
        assert response.status_code == 422
        assert not await AuditEntry.filter(action="citizen.pii.read", subject_id=str(citizen_id)).exists()


class TestAudit:
    async def test_lookups_are_audited_found_or_not_and_no_audit_row_holds_the_phone(self, client, capsys):
        citizen = await login_citizen(client, capsys)
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150900"))
        found = await client.post("/api/v1/staff/citizens/lookup", headers=bearer(clerk),
                                  json={"phone": citizen["phone"], "hall": "150900"})
        missing_phone = new_phone()
        missing = await client.post("/api/v1/staff/citizens/lookup", headers=bearer(clerk),
                                    json={"phone": missing_phone, "hall": "150900"})
        assert found.status_code == 200 and missing.status_code == 404
        lookups = await AuditEntry.filter(action="citizen.lookup", actor_id=str(clerk["id"])).order_by("id")
        assert len(lookups) == 2
        assert lookups[0].subject_id == str(found.json()["id"]) and lookups[0].detail["hall"] == "150900"
        assert lookups[0].request_id == found.headers["x-request-id"]
        for row in await AuditEntry.all():
            text = f"{row.subject_id} {row.request_id} {row.detail}"
            assert citizen["phone"] not in text and missing_phone not in text

    async def test_the_audit_request_id_is_ours_not_the_clients(self, client, capsys):
        citizen = await login_citizen(client, capsys)
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150900"))
        planted = "planted-by-the-client-0001"
        citizen_id = await looked_up(client, clerk, citizen)
        read = await client.get(f"/api/v1/staff/citizens/{citizen_id}/pii", params=READ,
                                headers={**bearer(clerk), "X-Request-Id": planted})
        assert read.status_code == 200
        entry = await AuditEntry.filter(action="citizen.pii.read", subject_id=str(citizen_id)).order_by("-id").first()
        assert entry.request_id == read.headers["x-request-id"] != planted
        assert entry.detail["reason"] == READ["reason"] and entry.detail["hall"] == "150900"


class TestAllowance:
    async def test_reads_are_limited_per_staff_member_even_in_parallel(self, app_with, capsys):
        running = await app_with(staff={"pii_reads_per_hour": 3})
        async with running.client() as http:
            citizen = await login_citizen(http, capsys)
            clerk = await staff_tokens(http, Grant("window_clerk", hall="150900"))
            citizen_id = await looked_up(http, clerk, citizen)
            before = await AuditEntry.filter(action="citizen.pii.read", subject_id=str(citizen_id)).count()
            responses = await asyncio.gather(*(
                http.get(f"/api/v1/staff/citizens/{citizen_id}/pii", headers=bearer(clerk), params=READ)
                for _ in range(12)))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] * 3 + [429] * 9
        assert all("retry-after" in r.headers for r in responses if r.status_code == 429)
        after = await AuditEntry.filter(action="citizen.pii.read", subject_id=str(citizen_id)).count()
        assert after - before == 3
