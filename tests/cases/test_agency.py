"""Agency (代办): a village agent records a citizen's 委托 for items their agency point takes, declares and
follows applications under it, and the citizen finds them in their own account on first login."""
import json

from tortoise import connections

from backend.cases.models import Case, Mandate
from backend.kit.auth import Grant
from tests.cases.declaring import JPEG_BYTES, PDF_BYTES, fill_form, item_detail, stored_files, upload
from tests.factories import bearer, login_citizen, new_id_number, new_phone, staff_tokens

MAGAITU = "150921106202"          # 马盖图村代办点: takes 150921-rs.GG003, 150921-rs.GG002, 150921-scjg.XK005
PENSION = "150921-rs.GG003"       # 城乡居民养老保险参保登记
PENSION_BENEFIT = "150921-rs.GG002"
NOT_TAKEN_HERE = "150921-ga.QR001"   # 居民身份证申领: the county hall takes it, the village point does not


def _person(name: str = "其其格") -> dict:
    return {"name": name, "id_number": new_id_number(), "phone": new_phone()}


async def _agent(client, point: str = MAGAITU) -> dict:
    agent = await staff_tokens(client, Grant("agent", hall=point))
    return {**agent, "headers": bearer(agent)}


async def _mandate(client, agent: dict, person: dict, *, items=(PENSION,), reference: str = "WT-2026-0001"):
    return await client.post("/api/v1/agent/mandates", headers=agent["headers"],
                             json={"citizen": person, "items": list(items), "reference": reference})


async def _declare(client, agent: dict, mandate_id: int, item: str = PENSION):
    detail = await item_detail(client, item)
    return await client.post("/api/v1/agent/cases", headers=agent["headers"],
                             json={"service_item": item, "form": fill_form(detail), "mandate_id": mandate_id})


class TestRecordMandate:
    async def test_a_mandate_for_the_points_items_is_recorded_and_answered_masked(self, client):
        agent, person = await _agent(client), _person("其其格")
        recorded = await _mandate(client, agent, person, items=(PENSION, "150921-scjg.XK005"))

        assert recorded.status_code == 201, recorded.text
        mandate = recorded.json()
        assert mandate["hall"] == MAGAITU and mandate["reference"] == "WT-2026-0001"
        assert mandate["items"] == sorted([PENSION, "150921-scjg.XK005"])
        assert mandate["citizen_name"] == "其**"
        assert mandate["citizen_phone"] == person["phone"][:3] + "****" + person["phone"][-4:]
        assert person["id_number"] not in recorded.text and person["phone"] not in recorded.text
        assert "其其格" not in recorded.text
        again = await client.get(f"/api/v1/agent/mandates/{mandate['id']}", headers=agent["headers"])
        assert again.status_code == 200 and again.json() == mandate

    async def test_the_citizens_name_id_number_and_phone_are_stored_sealed_in_the_mandate_and_its_case(self,
                                                                                                     client):
        agent, person = await _agent(client), _person("其其格")
        recorded = await _mandate(client, agent, person)
        assert recorded.status_code == 201, recorded.text

        rows = await connections.get("default").execute_query_dict(
            "SELECT * FROM case_mandate WHERE id = " + str(int(recorded.json()["id"])))
        raw = json.dumps(rows, default=str, ensure_ascii=False)
        assert rows and rows[0]["name_enc"] and rows[0]["id_number_enc"] and rows[0]["phone_enc"]
        declared = await _declare(client, agent, recorded.json()["id"])
        assert declared.status_code == 201, declared.text
        rows += await connections.get("default").execute_query_dict(
            "SELECT * FROM cases WHERE id = " + str(int(declared.json()["id"])))
        raw = json.dumps(rows, default=str, ensure_ascii=False)
        assert len(rows) == 2
        # (8 characters: 4 could occur by chance in a date or a ciphertext)
        for value in ("其其格", person["id_number"], person["phone"], person["id_number"][-8:], person["phone"][-8:]):
            assert value not in raw

    async def test_an_item_the_point_does_not_take_is_422_and_nothing_is_recorded(self, client):
        agent, person = await _agent(client), _person()
        before = await Mandate.filter(agent_id=agent["id"]).count()
        refused = await _mandate(client, agent, person, items=(PENSION, NOT_TAKEN_HERE))

        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"] == [{"field": "items.1", "code": "field.item_not_taken_here",
                                             "message": refused.json()["errors"][0]["message"]}]
        assert await Mandate.filter(agent_id=agent["id"]).count() == before

    async def test_a_staff_member_who_is_not_an_agent_cannot_record_one(self, client):
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150921", department="150921-rs"))
        refused = await client.post("/api/v1/agent/mandates", headers=bearer(clerk),
                                    json={"citizen": _person(), "items": [PENSION], "reference": "WT-1"})
        assert refused.status_code == 403, refused.text


class TestDeclareAsAgent:
    async def test_an_application_under_the_mandate_shows_the_agent_submitted_it(self, client):
        agent, person = await _agent(client), _person()
        mandate = (await _mandate(client, agent, person)).json()

        declared = await _declare(client, agent, mandate["id"])

        assert declared.status_code == 201, declared.text
        case = declared.json()
        assert (case["channel"], case["submitted_by"], case["status"]) == ("agent", "agent", "submitted")
        assert case["service_item"]["code"] == PENSION
        assert case["applicant"]["name"] == "其**"
        assert case["applicant"]["id_number"].endswith(person["id_number"][-4:])
        assert person["id_number"] not in declared.text
        row = await Case.get(id=case["id"])
        assert (row.mandate_id, row.submitted_by) == (mandate["id"], f"staff:{agent['id']}")

    async def test_an_item_the_mandate_does_not_cover_is_403(self, client):
        agent, person = await _agent(client), _person()
        mandate = (await _mandate(client, agent, person, items=(PENSION,))).json()
        before = await Case.filter(mandate_id=mandate["id"]).count()

        refused = await _declare(client, agent, mandate["id"], item=PENSION_BENEFIT)   # the point takes it

        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "mandate_does_not_cover_item"
        assert await Case.filter(mandate_id=mandate["id"]).count() == before

    async def test_an_unsigned_mandate_declares_nothing_until_the_signed_form_is_uploaded(self, client, server):
        agent, person = await _agent(client), _person()
        mandate = (await _mandate(client, agent, person, reference="")).json()
        assert mandate["reference"] == "" and mandate["signature_document_id"] is None

        unsigned = await _declare(client, agent, mandate["id"])
        root = server.settings.resolved_file_root()
        before = stored_files(root)
        not_a_photo = await upload(client, agent["headers"], f"/api/v1/agent/mandates/{mandate['id']}/signature",
                                   material=None, data=b"signed", filename="sig.jpg", content_type="image/jpeg")
        still_unsigned = await _declare(client, agent, mandate["id"])
        signed = await upload(client, agent["headers"], f"/api/v1/agent/mandates/{mandate['id']}/signature",
                              material=None, data=JPEG_BYTES, filename="委托书.jpg", content_type="image/jpeg")
        declared = await _declare(client, agent, mandate["id"])

        assert unsigned.status_code == 409 and unsigned.json()["code"] == "mandate_unsigned", unsigned.text
        assert not_a_photo.status_code == 422, not_a_photo.text
        assert still_unsigned.status_code == 409
        assert signed.status_code == 200, signed.text
        assert signed.json()["signature_document_id"] is not None
        assert [path.read_bytes() for path in stored_files(root) - before] == [JPEG_BYTES]
        assert declared.status_code == 201, declared.text

    async def test_another_agents_mandate_is_404_for_reading_signing_and_declaring(self, client, server):
        agent, other = await _agent(client), await _agent(client)
        mandate = (await _mandate(client, agent, _person(), reference="")).json()
        root = server.settings.resolved_file_root()
        before = stored_files(root)

        read = await client.get(f"/api/v1/agent/mandates/{mandate['id']}", headers=other["headers"])
        signed = await upload(client, other["headers"], f"/api/v1/agent/mandates/{mandate['id']}/signature",
                              material=None, data=JPEG_BYTES, filename="a.jpg", content_type="image/jpeg")
        declared = await _declare(client, other, mandate["id"])

        for answer in (read, signed, declared):
            assert answer.status_code == 404, answer.text
            assert answer.json()["code"] == "mandate_not_found"
        assert stored_files(root) == before
        assert (await Mandate.get(id=mandate["id"])).signature_document_id is None


class TestFollowAsAgent:
    async def test_the_agent_lists_reads_completes_and_resubmits_and_the_citizen_sees_it_on_login(
            self, client, capsys):
        agent, person = await _agent(client), _person()
        mandate = (await _mandate(client, agent, person)).json()
        case = (await _declare(client, agent, mandate["id"])).json()
        required = [m["name"] for m in case["required_materials"]]
        other_agent = await _agent(client)

        listed = await client.get("/api/v1/agent/cases", headers=agent["headers"])
        others_list = await client.get("/api/v1/agent/cases", headers=other_agent["headers"])
        read = await client.get(f"/api/v1/staff/cases/{case['id']}", headers=agent["headers"])
        not_theirs = await client.get(f"/api/v1/staff/cases/{case['id']}", headers=other_agent["headers"])
        uploaded = await upload(client, agent["headers"], f"/api/v1/agent/cases/{case['id']}/materials",
                                material=required[0], data=PDF_BYTES)
        others_upload = await upload(client, other_agent["headers"], f"/api/v1/agent/cases/{case['id']}/materials",
                                     material=required[0], data=PDF_BYTES)

        assert [c["id"] for c in listed.json()["items"]] == [case["id"]]
        assert case["id"] not in [c["id"] for c in others_list.json()["items"]]
        assert read.status_code == 200 and read.json()["id"] == case["id"], read.text
        assert not_theirs.status_code == 404
        assert uploaded.status_code == 201, uploaded.text
        assert others_upload.status_code == 404, others_upload.text

        too_early = await client.post(f"/api/v1/agent/cases/{case['id']}/resubmit", headers=agent["headers"],
                                      json={})
        assert too_early.status_code == 409, too_early.text     # nothing was asked for: nothing to resubmit
        assert too_early.json()["code"] == "case_move_not_allowed" and "submitted" in too_early.json()["detail"]
        assert (await Case.get(id=case["id"])).status == "submitted"

        clerk = await staff_tokens(client, Grant("window_clerk", hall="150921", department="150921-rs"))
        for action, body in (("accept", {}), ("request-supplement", {"missing": [required[1]]})):
            moved = await client.post(f"/api/v1/staff/cases/{case['id']}/{action}", headers=bearer(clerk), json=body)
            assert moved.status_code == 200, moved.text
        added = await upload(client, agent["headers"], f"/api/v1/agent/cases/{case['id']}/materials",
                             material=required[1], data=JPEG_BYTES, filename="hukou.jpg", content_type="image/jpeg")
        others_resubmit = await client.post(f"/api/v1/agent/cases/{case['id']}/resubmit",
                                            headers=other_agent["headers"], json={})
        resubmitted = await client.post(f"/api/v1/agent/cases/{case['id']}/resubmit", headers=agent["headers"],
                                        json={"comment": "已补户口簿"})

        assert added.status_code == 201, added.text
        assert others_resubmit.status_code == 404
        assert resubmitted.status_code == 200, resubmitted.text
        assert resubmitted.json()["status"] == "accepted" and resubmitted.json()["missing"] == []
        assert resubmitted.json()["timeline"][-1]["action"] == "resubmit"

        # the citizen, who never had an account, logs in by SMS with the mandate's phone
        tokens = await login_citizen(client, capsys, phone=person["phone"])
        mine = await client.get("/api/v1/cases", headers=bearer(tokens))
        assert mine.status_code == 200, mine.text
        assert [(c["id"], c["status"]) for c in mine.json()["items"]] == [(case["id"], "accepted")]
        own = (await client.get(f"/api/v1/cases/{case['id']}", headers=bearer(tokens))).json()
        assert own["submitted_by"] == "agent" and {m["material"] for m in own["materials"]} == set(required[:2])
