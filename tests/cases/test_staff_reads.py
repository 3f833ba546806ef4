"""What staff read beyond the case itself: supervisors the counts per department and the
instant-completion rate (即时办结率) the centre reports; the case's staff the applicant unmasked, audited."""
from backend.kit.auth import Grant
from backend.kit.models import AuditEntry
from tests.factories import bearer, real_name_citizen, staff_tokens
from tests.rows import make_department, make_hall, make_item


async def _declare_and_accept(client, citizen, clerk, item_code: str, *, finish: bool) -> dict:
    declared = await client.post("/api/v1/cases", headers=bearer(citizen), json={"service_item": item_code})
    assert declared.status_code == 201, declared.text
    accepted = await client.post(f"/api/v1/staff/cases/{declared.json()['id']}/accept", headers=bearer(clerk),
                                 json={"finish": finish})
    assert accepted.status_code == 200, accepted.text
    return accepted.json()


class TestCaseStats:
    async def test_counts_and_the_instant_rate_per_department_for_the_supervisors_halls_only(
            self, client, capsys, frozen_clock):
        frozen_clock("2037-03-02T10:00:00+08:00")   # a Monday no other test's calendar touches
        hall = await make_hall(parent="150921")
        department = await make_department(hall.code)
        instant = await make_item(department, instant=True, promised_days=0)
        slow = await make_item(department, promised_days=1)
        citizen = await real_name_citizen(client, capsys)
        clerk = await staff_tokens(client, Grant("window_clerk", hall=hall.code, department=department.code))
        await _declare_and_accept(client, citizen, clerk, instant.code, finish=True)
        await _declare_and_accept(client, citizen, clerk, instant.code, finish=False)
        late = await _declare_and_accept(client, citizen, clerk, slow.code, finish=False)
        assert late["deadline"] == "2037-03-03T17:30:00+08:00"
        # Wednesday: the slow one is past its deadline, and so is the instant one not finished on the
        # spot (an instant item's time runs out at the close of its day)
        frozen_clock("2037-03-04T09:00:00+08:00")

        county = await staff_tokens(client, Grant("supervisor", hall="150921"))
        stats = await client.get("/api/v1/supervision/cases", headers=bearer(county),
                                 params={"from": "2037-03-01", "to": "2037-03-02"})
        assert stats.status_code == 200, stats.text
        (row,) = [row for row in stats.json()["items"] if row["department"] == department.code]
        assert row == {"department": department.code, "hall": hall.code, "accepted": 3, "finished": 1,
                       "finished_late": 0, "overdue_running": 2, "instant_accepted": 2,
                       "instant_finished_at_acceptance": 1, "instant_completion_rate": 0.5}

        other_county = await staff_tokens(client, Grant("supervisor", hall="150922"))
        elsewhere = await client.get("/api/v1/supervision/cases", headers=bearer(other_county),
                                     params={"from": "2037-03-01", "to": "2037-03-02"})
        assert department.code not in {row["department"] for row in elsewhere.json()["items"]}

    async def test_a_clerk_may_not_read_them_and_a_period_over_a_year_is_refused(self, client):
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150900"))
        assert (await client.get("/api/v1/supervision/cases", headers=bearer(clerk))).status_code == 403
        supervisor = await staff_tokens(client, Grant("supervisor", hall="150900"))
        refused = await client.get("/api/v1/supervision/cases", headers=bearer(supervisor),
                                   params={"from": "2030-01-01", "to": "2031-06-01"})
        assert refused.status_code == 422 and refused.json()["errors"][0]["code"] == "field.date_range"


class TestReadApplicant:
    async def test_staff_of_the_case_read_the_applicant_unmasked_once_audited_and_others_do_not(self, client, capsys):
        citizen = await real_name_citizen(client, capsys, name="其木格")
        declared = await client.post("/api/v1/cases", headers=bearer(citizen),
                                     json={"service_item": "rsj.GG002", "form": {"delivery": "window"}})
        assert declared.status_code == 201, declared.text
        case = declared.json()
        assert "其木格" not in declared.text
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150900", department="rsj"))
        read = await client.get(f"/api/v1/staff/cases/{case['id']}/applicant", headers=bearer(clerk),
                                params={"reason": "制证核对"})
        assert read.status_code == 200, read.text
        assert read.json()["name"] == "其木格" and read.headers["cache-control"] == "no-store"
        (audit,) = await AuditEntry.filter(action="case.applicant.read", subject_id=str(case["id"]))
        assert audit.actor_id == str(clerk["id"]) and audit.detail["reason"] == "制证核对"

        elsewhere = await staff_tokens(client, Grant("window_clerk", hall="150900", department="gaj"))
        refused = await client.get(f"/api/v1/staff/cases/{case['id']}/applicant", headers=bearer(elsewhere),
                                   params={"reason": "制证核对"})
        assert refused.status_code == 404
        assert await AuditEntry.filter(action="case.applicant.read", subject_id=str(case["id"])).count() == 1
        no_reason = await client.get(f"/api/v1/staff/cases/{case['id']}/applicant", headers=bearer(clerk))
        assert no_reason.status_code == 422
