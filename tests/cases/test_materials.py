"""Materials (申请材料): uploads checked on their bytes, stored under random names outside any served
folder, nothing left behind by a refused upload; 一口录入 (a document given once, given again); the
file read back by its applicant and by every department of a parallel review, each staff read audited."""
import hashlib
import json

import pytest

from backend.cases.models import CaseMaterial, Document
from backend.kit.auth import Grant
from backend.kit.models import AuditEntry
from tests.cases.declaring import JPEG_BYTES, PDF_BYTES, PNG_BYTES, citizen, declare, stored_files, upload
from tests.factories import bearer, staff_tokens

PENSION = "150921-rs.GG003"      # 城乡居民养老保险参保登记: personal, online, three materials
PERMIT = "zjw.XK007"             # 建筑工程施工许可证核发: 并联审批 of zjw (lead), rfb and qxj in hall 150900


def _required(case: dict) -> list[str]:
    return [m["name"] for m in case["required_materials"]]


async def _rows(case_id: int, citizen_id: int | None = None) -> tuple[int, int]:
    documents = await Document.filter(citizen_id=citizen_id).count() if citizen_id is not None else 0
    return await CaseMaterial.filter(case_id=case_id).count(), documents


def _padded_pdf(size: int) -> bytes:
    """A real PDF of exactly `size` bytes: a comment line before its end makes up the length."""
    padded = PDF_BYTES + b"%" + b"x" * (size - len(PDF_BYTES) - 8) + b"\n%%EOF\n"
    assert len(padded) == size
    return padded


async def _citizen_id(client, person) -> int:
    return (await client.get("/api/v1/me", headers=person["headers"])).json()["id"]


async def _accept(client, case_id: int, *, hall: str, department: str) -> None:
    clerk = await staff_tokens(client, Grant("window_clerk", hall=hall, department=department))
    accepted = await client.post(f"/api/v1/staff/cases/{case_id}/accept", headers=bearer(clerk), json={})
    assert accepted.status_code == 200, accepted.text


class TestUploadMaterial:
    async def test_a_pdf_and_a_png_are_kept_with_size_checksum_and_the_type_of_their_bytes(self, client, capsys,
                                                                                          server):
        person = await citizen(client, capsys)
        case = await declare(client, person, PENSION)
        id_card, household = _required(case)[:2]
        before = stored_files(server.settings.resolved_file_root())

        pdf = await upload(client, person["headers"], f"/api/v1/cases/{case['id']}/materials", material=id_card,
                           data=PDF_BYTES, filename="巴特尔身份证.pdf", content_type="application/pdf")
        # no declared type at all (as WeChat's uploader sends): the bytes alone say PNG
        png = await upload(client, person["headers"], f"/api/v1/cases/{case['id']}/materials", material=household,
                           data=PNG_BYTES, filename="hukou", content_type="application/octet-stream")

        assert pdf.status_code == 201, pdf.text
        assert png.status_code == 201, png.text
        assert pdf.json() | {"id": 0, "attached_at": ""} == {
            "id": 0, "material": id_card, "content_type": "application/pdf", "size": len(PDF_BYTES),
            "sha256": hashlib.sha256(PDF_BYTES).hexdigest(), "attached_at": ""}
        assert png.json()["content_type"] == "image/png" and png.json()["size"] == len(PNG_BYTES)
        assert png.json()["sha256"] == hashlib.sha256(PNG_BYTES).hexdigest()
        again = (await client.get(f"/api/v1/cases/{case['id']}", headers=person["headers"])).json()
        assert {m["name"]: m["provided"] for m in again["required_materials"]}[id_card] is True
        assert {m["id"] for m in again["materials"]} == {pdf.json()["id"], png.json()["id"]}

        # two new files, under random 32-hex names in the store's root, neither named after the client's file
        new = stored_files(server.settings.resolved_file_root()) - before
        assert len(new) == 2
        assert {path.read_bytes() for path in new} == {PDF_BYTES, PNG_BYTES}
        for path in new:
            assert len(path.name) == 32 and all(ch in "0123456789abcdef" for ch in path.name)
            assert "身份证" not in str(path) and "hukou" not in str(path) and not path.suffix
            assert path.stat().st_mode & 0o077 == 0      # only the server's user reads it
            relative = path.relative_to(server.settings.resolved_file_root())
            # nothing serves the store's folder: the file is reached only through the checked route
            for url in (f"/{path.name}", f"/{relative}", f"/files/{relative}", f"/var/files/{relative}",
                        f"/static/{relative}"):
                assert (await client.get(url)).status_code == 404, url
        # the key is the store's business: no answer gives it out
        documents = await client.get("/api/v1/me/documents", headers=person["headers"])
        for answer in (pdf, png, documents):
            assert not any(path.name in answer.text for path in new)
        assert not any(path.name in json.dumps(again) for path in new)

    @pytest.mark.parametrize("data, filename, content_type, status, code", [
        (PNG_BYTES, "x.pdf", "application/pdf", 422, "upload_type_mismatch"),    # a PNG that says it is a PDF
        (JPEG_BYTES, "photo.png", "image/png", 422, "upload_type_mismatch"),
        (b"just some words, not a document\n", "note.pdf", "application/octet-stream", 422, "upload_type_mismatch"),
        (b"just some words, not a document\n", "note.txt", "text/plain", 415, "upload_type_not_allowed"),
        (PDF_BYTES[:-40], "cut.pdf", "application/pdf", 422, "upload_type_mismatch"),   # cut off mid-file
        (b"", "empty.pdf", "application/pdf", 422, "upload_empty"),
    ])
    async def test_a_file_whose_bytes_are_not_an_allowed_type_is_refused_and_nothing_is_kept(
            self, client, capsys, server, data, filename, content_type, status, code):
        person = await citizen(client, capsys)
        case = await declare(client, person, PENSION)
        citizen_id = await _citizen_id(client, person)
        root = server.settings.resolved_file_root()
        before, rows = stored_files(root), await _rows(case["id"], citizen_id)

        refused = await upload(client, person["headers"], f"/api/v1/cases/{case['id']}/materials",
                               material=_required(case)[0], data=data, filename=filename, content_type=content_type)

        assert refused.status_code == status, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == code
        assert stored_files(root) == before
        assert await _rows(case["id"], citizen_id) == rows

    async def test_a_file_over_the_size_limit_is_413_and_nothing_is_kept(self, app_with, capsys):
        running = await app_with(files={"max_upload_bytes": 2048})
        async with running.client() as http:
            person = await citizen(http, capsys)
            case = await declare(http, person, PENSION)
            citizen_id = await _citizen_id(http, person)
            root = running.settings.resolved_file_root()
            before, rows = stored_files(root), await _rows(case["id"], citizen_id)
            big, fits = _padded_pdf(2049), _padded_pdf(2048)

            refused = await upload(http, person["headers"], f"/api/v1/cases/{case['id']}/materials",
                                   material=_required(case)[0], data=big)
            # far over: the body is cut off while it streams in, before any handler runs
            too_long = _padded_pdf(running.settings.max_upload_request_bytes + 1)
            far_over = await upload(http, person["headers"], f"/api/v1/cases/{case['id']}/materials",
                                    material=_required(case)[0], data=too_long)
            taken = await upload(http, person["headers"], f"/api/v1/cases/{case['id']}/materials",
                                 material=_required(case)[0], data=fits)

        assert refused.status_code == 413, refused.text
        assert refused.json()["code"] == "upload_too_large"
        assert far_over.status_code == 413, far_over.text
        assert far_over.headers["content-type"].startswith("application/problem+json")
        assert taken.status_code == 201, taken.text   # the limit is the size, not something else
        assert [path.read_bytes() for path in stored_files(root) - before] == [fits]
        assert await _rows(case["id"], citizen_id) == (rows[0] + 1, rows[1] + 1)

    async def test_a_material_the_item_does_not_list_is_422_and_nothing_is_kept(self, client, capsys, server):
        person = await citizen(client, capsys)
        case = await declare(client, person, PENSION)
        citizen_id = await _citizen_id(client, person)
        root = server.settings.resolved_file_root()
        before, rows = stored_files(root), await _rows(case["id"], citizen_id)

        refused = await upload(client, person["headers"], f"/api/v1/cases/{case['id']}/materials",
                               material="营业执照副本", data=PDF_BYTES)
        missing = await upload(client, person["headers"], f"/api/v1/cases/{case['id']}/materials",
                               material=None, data=PDF_BYTES)

        assert refused.status_code == 422 and refused.json()["code"] == "material_unknown", refused.text
        assert missing.status_code == 422 and missing.json()["code"] == "material_unknown", missing.text
        assert stored_files(root) == before
        assert await _rows(case["id"], citizen_id) == rows

    async def test_a_case_already_accepted_takes_no_upload_409_and_nothing_is_kept(self, client, capsys, server):
        person = await citizen(client, capsys)
        case = await declare(client, person, PENSION)
        await _accept(client, case["id"], hall="150921", department="150921-rs")
        citizen_id = await _citizen_id(client, person)
        root = server.settings.resolved_file_root()
        before, rows = stored_files(root), await _rows(case["id"], citizen_id)

        refused = await upload(client, person["headers"], f"/api/v1/cases/{case['id']}/materials",
                               material=_required(case)[0], data=PDF_BYTES)

        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "case_materials_closed"
        assert "accepted" in refused.json()["detail"]
        assert stored_files(root) == before
        assert await _rows(case["id"], citizen_id) == rows

    async def test_another_citizens_case_is_404_and_nothing_is_kept(self, client, capsys, server):
        owner, stranger = await citizen(client, capsys), await citizen(client, capsys)
        case = await declare(client, owner, PENSION)
        stranger_id = await _citizen_id(client, stranger)
        root = server.settings.resolved_file_root()
        before, rows = stored_files(root), await _rows(case["id"], stranger_id)

        refused = await upload(client, stranger["headers"], f"/api/v1/cases/{case['id']}/materials",
                               material=_required(case)[0], data=PDF_BYTES)

        assert refused.status_code == 404 and refused.json()["code"] == "case_not_found", refused.text
        assert stored_files(root) == before
        assert await _rows(case["id"], stranger_id) == rows


    async def test_a_case_holds_no_more_materials_than_the_limit(self, app_with, capsys):
        running = await app_with(cases={"materials_per_case": 1})
        async with running.client() as http:
            person = await citizen(http, capsys)
            case = await declare(http, person, PENSION)
            path, root = f"/api/v1/cases/{case['id']}/materials", running.settings.resolved_file_root()
            first = await upload(http, person["headers"], path, material=_required(case)[0], data=PDF_BYTES)
            before = stored_files(root)
            second = await upload(http, person["headers"], path, material=_required(case)[1], data=PNG_BYTES,
                                  content_type="image/png")

        assert first.status_code == 201, first.text
        assert second.status_code == 409 and second.json()["code"] == "too_many_materials", second.text
        assert stored_files(root) == before
        assert await CaseMaterial.filter(case_id=case["id"]).count() == 1


class TestUploadLimit:
    async def test_the_daily_upload_limit_counts_refused_files_before_their_bytes_are_checked(self, app_with,
                                                                                            capsys):
        running = await app_with(cases={"uploads_per_citizen_per_day": 2})
        async with running.client() as http:
            person = await citizen(http, capsys)
            case = await declare(http, person, PENSION)
            path, material = f"/api/v1/cases/{case['id']}/materials", _required(case)[0]
            root = running.settings.resolved_file_root()
            before = stored_files(root)
            first = await upload(http, person["headers"], path, material=material, data=b"")
            second = await upload(http, person["headers"], path, material=material, data=b"not a pdf")
            third = await upload(http, person["headers"], path, material=material, data=PDF_BYTES)

        assert [first.status_code, second.status_code] == [422, 422]
        assert third.status_code == 429, third.text     # a good file, but two tries were spent on bad ones
        assert stored_files(root) == before


class TestReuseDocument:
    async def test_a_document_given_once_is_offered_and_given_to_a_second_application_without_upload(
            self, client, capsys, server):
        person = await citizen(client, capsys)
        first, second = await declare(client, person, PENSION), await declare(client, person, PENSION)
        id_card = _required(first)[0]
        uploaded = await upload(client, person["headers"], f"/api/v1/cases/{first['id']}/materials",
                                material=id_card, data=PDF_BYTES)
        assert uploaded.status_code == 201, uploaded.text
        root = server.settings.resolved_file_root()
        before = stored_files(root)

        offered = await client.get("/api/v1/me/documents", headers=person["headers"])
        assert offered.status_code == 200, offered.text
        [document] = [d for d in offered.json()["items"] if d["sha256"] == uploaded.json()["sha256"]]
        assert document["material"] == id_card and document["size"] == len(PDF_BYTES)
        reused = await client.post(f"/api/v1/cases/{second['id']}/materials/reuse", headers=person["headers"],
                                   json={"material": id_card, "document_id": document["id"]})
        twice = await client.post(f"/api/v1/cases/{second['id']}/materials/reuse", headers=person["headers"],
                                  json={"material": id_card, "document_id": document["id"]})

        assert reused.status_code == 201, reused.text
        assert reused.json()["sha256"] == uploaded.json()["sha256"] and reused.json()["material"] == id_card
        assert twice.status_code == 409 and twice.json()["code"] == "material_already_attached", twice.text
        assert stored_files(root) == before    # given again, not stored again
        case = (await client.get(f"/api/v1/cases/{second['id']}", headers=person["headers"])).json()
        assert [m["id"] for m in case["materials"]] == [reused.json()["id"]]
        read = await client.get(f"/api/v1/cases/{second['id']}/materials/{reused.json()['id']}",
                                headers=person["headers"])
        assert read.status_code == 200 and read.content == PDF_BYTES

    async def test_another_citizens_document_cannot_be_given(self, client, capsys):
        owner, other = await citizen(client, capsys), await citizen(client, capsys)
        owners_case, others_case = await declare(client, owner, PENSION), await declare(client, other, PENSION)
        id_card = _required(owners_case)[0]
        uploaded = await upload(client, owner["headers"], f"/api/v1/cases/{owners_case['id']}/materials",
                                material=id_card, data=PDF_BYTES)
        document_id = (await Document.get(id=(await CaseMaterial.get(id=uploaded.json()["id"])).document_id)).id

        taken = await client.post(f"/api/v1/cases/{others_case['id']}/materials/reuse", headers=other["headers"],
                                  json={"material": id_card, "document_id": document_id})

        assert taken.status_code == 404 and taken.json()["code"] == "document_not_found", taken.text
        assert await CaseMaterial.filter(case_id=others_case["id"]).count() == 0
        offered = (await client.get("/api/v1/me/documents", headers=other["headers"])).json()["items"]
        assert offered == []


class TestReadMaterial:
    async def test_the_applicant_reads_the_same_bytes_never_cached(self, client, capsys):
        person, stranger = await citizen(client, capsys), await citizen(client, capsys)
        case = await declare(client, person, PENSION)
        uploaded = await upload(client, person["headers"], f"/api/v1/cases/{case['id']}/materials",
                                material=_required(case)[0], data=PNG_BYTES, filename="a.png",
                                content_type="image/png")
        path = f"/api/v1/cases/{case['id']}/materials/{uploaded.json()['id']}"

        read = await client.get(path, headers=person["headers"])
        not_theirs = await client.get(path, headers=stranger["headers"])

        assert read.status_code == 200 and read.content == PNG_BYTES
        assert read.headers["content-type"] == "image/png"
        assert "private" in read.headers["cache-control"] and "no-store" in read.headers["cache-control"]
        assert read.headers["x-content-type-options"] == "nosniff"
        assert not_theirs.status_code == 404

    async def test_every_department_of_a_parallel_review_reads_the_same_file_each_read_audited(self, client,
                                                                                              capsys):
        person = await citizen(client, capsys)
        case = await declare(client, person, PERMIT, enterprise=True)
        uploaded = await upload(client, person["headers"], f"/api/v1/cases/{case['id']}/materials",
                                material=_required(case)[0], data=PDF_BYTES)
        assert uploaded.status_code == 201, uploaded.text
        await _accept(client, case["id"], hall="150900", department="zjw")
        path = f"/api/v1/staff/cases/{case['id']}/materials/{uploaded.json()['id']}"
        reviewers = [await staff_tokens(client, Grant("approver", hall="150900", department=department))
                     for department in ("zjw", "rfb", "qxj")]
        outsider = await staff_tokens(client, Grant("approver", hall="150900", department="gaj"))

        reads = [await client.get(path, headers=bearer(reviewer)) for reviewer in reviewers]
        refused = await client.get(path, headers=bearer(outsider))

        for read in reads:
            assert read.status_code == 200, read.text
            assert read.content == PDF_BYTES and read.headers["content-type"] == "application/pdf"
            assert "no-store" in read.headers["cache-control"] and "private" in read.headers["cache-control"]
        assert refused.status_code == 404, refused.text
        audited = await AuditEntry.filter(action="case.material.read", subject_kind="case",
                                          subject_id=str(case["id"])).order_by("id")
        assert [(row.actor_kind, row.actor_id) for row in audited] == [("staff", str(r["id"])) for r in reviewers]
        assert all(row.detail["material"] == uploaded.json()["id"] for row in audited)
        assert [row.request_id for row in audited] == [read.headers["x-request-id"] for read in reads]

    async def test_a_material_is_read_only_under_its_own_case(self, client, capsys):
        person = await citizen(client, capsys)
        first, second = await declare(client, person, PENSION), await declare(client, person, PENSION)
        uploaded = await upload(client, person["headers"], f"/api/v1/cases/{first['id']}/materials",
                                material=_required(first)[0], data=PDF_BYTES)
        material_id = uploaded.json()["id"]
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150921", department="150921-rs"))

        mine = await client.get(f"/api/v1/cases/{second['id']}/materials/{material_id}", headers=person["headers"])
        staff = await client.get(f"/api/v1/staff/cases/{second['id']}/materials/{material_id}", headers=bearer(clerk))
        right = await client.get(f"/api/v1/staff/cases/{first['id']}/materials/{material_id}", headers=bearer(clerk))

        assert (mine.status_code, mine.json()["code"]) == (404, "material_not_found")
        assert (staff.status_code, staff.json()["code"]) == (404, "material_not_found")
        assert right.status_code == 200 and right.content == PDF_BYTES
