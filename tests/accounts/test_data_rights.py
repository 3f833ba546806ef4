"""A citizen's own data: closing the account (注销) erases it and ends every session; an export gives
the citizen a copy of what the centre holds, and who on the staff read it."""
import asyncio
import uuid
from datetime import date, timedelta

from backend.accounts.models import Citizen, WechatIdentity
from backend.kit.auth import Grant
from backend.kit.identity import id_number_check_char
from backend.kit.models import AuditEntry, OutboxEvent
from tests.factories import bearer, login_citizen, new_phone, sms_code_for, staff_tokens

CLOSE = {"confirm": "true"}
READ = {"hall": "150900", "reason": "核验身份 identity check at the window"}


def _id_number() -> str:
    """A valid ID number no other test uses (the column is unique across the shared database)."""
    n = uuid.uuid4().int
    born = date(1980, 1, 1) + timedelta(days=n // 1000 % 10000)
    first17 = f"150926{born:%Y%m%d}{n % 1000:03d}"
    return first17 + id_number_check_char(first17)


async def _wechat_citizen(client, fake_wechat) -> dict:
    """A mini-program user who has bound a phone: tokens, phone and openid."""
    openid = "o" + uuid.uuid4().hex[:27]
    login = (await client.post("/mp/v1/auth/login",
                               json={"code": fake_wechat.issue_login_code(openid=openid)})).json()
    phone = new_phone()
    bound = await client.post("/mp/v1/auth/phone", headers=bearer(login),
                              json={"code": fake_wechat.issue_phone_code(phone)})
    assert bound.status_code == 200, bound.text
    return {**bound.json(), "phone": phone, "openid": openid}


async def _staff_reads(client, citizen: dict) -> tuple[dict, int]:
    """A window clerk looks the citizen up by phone and reads the unmasked data once."""
    clerk = await staff_tokens(client, Grant("window_clerk", hall="150900"))
    found = await client.post("/api/v1/staff/citizens/lookup", headers=bearer(clerk),
                              json={"phone": citizen["phone"], "hall": "150900"})
    assert found.status_code == 200, found.text
    citizen_id = found.json()["id"]
    read = await client.get(f"/api/v1/staff/citizens/{citizen_id}/pii", headers=bearer(clerk), params=READ)
    assert read.status_code == 200, read.text
    return clerk, citizen_id


class TestCloseAccount:
    async def test_without_the_confirmation_nothing_is_closed(self, client, capsys):
        tokens = await login_citizen(client, capsys)
        for params in ({}, {"confirm": "yes"}, {"confirm": "false"}):
            refused = await client.delete("/api/v1/me", headers=bearer(tokens), params=params)
            assert refused.status_code == 422, refused.text
            assert refused.json()["errors"][0]["field"] == "confirm"
        assert (await client.get("/api/v1/me", headers=bearer(tokens))).status_code == 200

    async def test_the_access_token_that_closed_the_account_stops_at_once(self, client, capsys):
        tokens = await login_citizen(client, capsys)
        closed = await client.delete("/api/v1/me", headers=bearer(tokens), params=CLOSE)
        assert closed.status_code == 204 and closed.content == b""
        me = await client.get("/api/v1/me", headers=bearer(tokens))
        assert me.status_code == 401 and me.json()["code"] == "session_ended"
        again = await client.delete("/api/v1/me", headers=bearer(tokens), params=CLOSE)
        assert again.status_code == 401

    async def test_every_session_ends_and_no_refresh_token_works(self, app_with, capsys):
        running = await app_with(otp={"per_phone_per_minute": 1000})
        async with running.client() as http:
            phone = new_phone()
            first = await login_citizen(http, capsys, phone)
            second = await login_citizen(http, capsys, phone)
            assert (await http.delete("/api/v1/me", headers=bearer(first), params=CLOSE)).status_code == 204
            other_session = await http.get("/api/v1/me", headers=bearer(second))
            refreshes = [await http.post("/api/v1/auth/refresh", json={"refresh_token": t["refresh_token"]})
                         for t in (first, second)]
        assert other_session.status_code == 401 and other_session.json()["code"] == "session_ended"
        assert [r.status_code for r in refreshes] == [401, 401]
        assert {r.json()["code"] for r in refreshes} == {"refresh_token_invalid"}

    async def test_a_login_racing_the_closing_comes_first_and_ends_or_comes_after_as_a_new_citizen(
            self, app_with, capsys):
        """An SMS login of the same phone sent at the same moment as the closing: it must either land
        before it (and its session ends with the others) or after it (and open a new account). A
        session of the closed account that escaped the ending would be accepted everywhere."""
        running = await app_with(otp={"per_phone_per_minute": 1000, "per_phone_per_hour": 1000,
                                      "per_phone_per_day": 1000})
        async with running.client() as http:
            for _ in range(10):
                phone = new_phone()
                first = await login_citizen(http, capsys, phone)
                assert (await http.post("/api/v1/auth/sms-code", json={"phone": phone})).status_code == 202
                code = sms_code_for(phone, capsys.readouterr().out)
                closed, login = await asyncio.gather(
                    http.delete("/api/v1/me", headers=bearer(first), params=CLOSE),
                    http.post("/api/v1/auth/login", json={"phone": phone, "code": code}))
                assert closed.status_code == 204, closed.text
                assert login.status_code == 200, login.text
                raced = login.json()
                # an endpoint that does not read the citizen row: only the session registry stops it
                mine = await http.get("/api/v1/appointments", headers=bearer(raced))
                assert mine.status_code == (200 if raced["is_new"] else 401), (raced["is_new"], mine.text)

    async def test_a_wechat_login_racing_the_closing_comes_first_and_ends_or_comes_after_as_a_new_citizen(
            self, client, fake_wechat):
        for _ in range(10):
            citizen = await _wechat_citizen(client, fake_wechat)
            closed, login = await asyncio.gather(
                client.delete("/api/v1/me", headers=bearer(citizen), params=CLOSE),
                client.post("/mp/v1/auth/login", json={"code": fake_wechat.issue_login_code(openid=citizen["openid"])}))
            assert closed.status_code == 204, closed.text
            assert login.status_code == 200, login.text
            raced = login.json()
            mine = await client.get("/api/v1/appointments", headers=bearer(raced))
            assert mine.status_code == (200 if raced["is_new"] else 401), (raced["is_new"], mine.text)

    async def test_the_row_keeps_its_id_and_loses_phone_name_and_id_number(self, client, capsys):
        tokens = await login_citizen(client, capsys)
        profile = (await client.patch("/api/v1/me", headers=bearer(tokens),
                                      json={"name": "乌云", "id_number": _id_number()})).json()
        assert (await client.delete("/api/v1/me", headers=bearer(tokens), params=CLOSE)).status_code == 204
        row = await Citizen.get(id=profile["id"])
        assert row.closed_at is not None
        assert (row.phone_enc, row.phone_index, row.name_enc, row.id_number_enc, row.id_number_index) == \
            (None, None, None, None, None)
        events = await OutboxEvent.filter(kind="citizen.closed", aggregate=f"citizen:{profile['id']}")
        assert len(events) == 1 and events[0].payload == {}

    async def test_the_same_phone_and_id_number_register_afresh_as_a_new_citizen(self, app_with, capsys):
        running = await app_with(otp={"per_phone_per_minute": 1000})
        phone, id_number = new_phone(), _id_number()
        async with running.client() as http:
            old = await login_citizen(http, capsys, phone)
            old_id = (await http.patch("/api/v1/me", headers=bearer(old), json={"id_number": id_number})).json()["id"]
            assert (await http.delete("/api/v1/me", headers=bearer(old), params=CLOSE)).status_code == 204
            new = await login_citizen(http, capsys, phone)
            me = await http.patch("/api/v1/me", headers=bearer(new), json={"id_number": id_number})
        assert new["is_new"] is True
        assert me.status_code == 200, me.text
        assert me.json()["id"] != old_id

    async def test_the_wechat_identity_goes_and_the_same_wechat_user_becomes_a_new_citizen(self, client,
                                                                                       fake_wechat):
        citizen = await _wechat_citizen(client, fake_wechat)
        assert (await client.delete("/api/v1/me", headers=bearer(citizen), params=CLOSE)).status_code == 204
        assert not await WechatIdentity.filter(openid=citizen["openid"]).exists()
        again = (await client.post("/mp/v1/auth/login",
                                   json={"code": fake_wechat.issue_login_code(openid=citizen["openid"])})).json()
        assert again["is_new"] is True and again["phone_bound"] is False
        assert (await client.get("/api/v1/me", headers=bearer(again))).json()["id"] != citizen["citizen_id"]

    async def test_audit_rows_about_the_citizen_stay_and_the_closing_is_audited(self, client, capsys):
        citizen = await login_citizen(client, capsys)
        _, citizen_id = await _staff_reads(client, citizen)
        closed = await client.delete("/api/v1/me", headers=bearer(citizen), params=CLOSE)
        assert closed.status_code == 204
        actions = await AuditEntry.filter(subject_kind="citizen", subject_id=str(citizen_id)) \
            .order_by("id").values_list("action", flat=True)
        assert actions == ["citizen.lookup", "citizen.pii.read", "citizen.close"]
        closing = await AuditEntry.get(action="citizen.close", subject_id=str(citizen_id))
        assert (closing.actor_kind, closing.actor_id) == ("citizen", str(citizen_id))
        assert closing.request_id == closed.headers["x-request-id"]

    async def test_staff_no_longer_find_or_read_a_closed_account(self, client, capsys):
        citizen = await login_citizen(client, capsys)
        clerk, citizen_id = await _staff_reads(client, citizen)
        assert (await client.delete("/api/v1/me", headers=bearer(citizen), params=CLOSE)).status_code == 204
        lookup = await client.post("/api/v1/staff/citizens/lookup", headers=bearer(clerk),
                                   json={"phone": citizen["phone"], "hall": "150900"})
        read = await client.get(f"/api/v1/staff/citizens/{citizen_id}/pii", headers=bearer(clerk), params=READ)
        assert lookup.status_code == 404 and read.status_code == 404

    async def test_a_staff_token_cannot_close_an_account(self, client):
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150900"))
        response = await client.delete("/api/v1/me", headers=bearer(clerk), params=CLOSE)
        assert response.status_code == 403


class TestExport:
    async def test_the_export_holds_the_unmasked_profile_bindings_sessions_and_staff_reads(
            self, client, fake_wechat, settings):
        citizen = await _wechat_citizen(client, fake_wechat)
        id_number = _id_number()
        await client.patch("/api/v1/me", headers=bearer(citizen), json={"name": "其木格", "id_number": id_number})
        clerk, citizen_id = await _staff_reads(client, citizen)

        response = await client.get("/api/v1/me/export", headers=bearer(citizen))
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        export = response.json()
        profile = export["profile"]
        assert (profile["id"], profile["phone"], profile["name"], profile["id_number"]) == \
            (citizen_id, citizen["phone"], "其木格", id_number)
        assert export["wechat"] == [{"appid": settings.wechat.appid, "created_at": export["wechat"][0]["created_at"]}]
        # the WeChat-only session ended when the phone was bound; the session after binding is open
        assert len(export["sessions"]) >= 1
        assert all(set(s) == {"created_at", "last_refreshed_at", "expires_at", "revoked_at"}
                   for s in export["sessions"])
        assert [s for s in export["sessions"] if s["revoked_at"] is None]
        reads = export["personal_data_reads"]
        assert [(r["action"], r["staff_id"], r["hall"]) for r in reads] == \
            [("citizen.lookup", clerk["id"], "150900"), ("citizen.pii.read", clerk["id"], "150900")]
        assert reads[1]["reason"] == READ["reason"]
        for secret in (citizen["refresh_token"], citizen["access_token"], "session_key", citizen["openid"]):
            assert secret not in response.text

    async def test_the_export_is_audited(self, client, capsys):
        citizen = await login_citizen(client, capsys)
        response = await client.get("/api/v1/me/export", headers=bearer(citizen))
        citizen_id = response.json()["profile"]["id"]
        entry = await AuditEntry.get(action="citizen.export", subject_id=str(citizen_id))
        assert (entry.actor_kind, entry.actor_id) == ("citizen", str(citizen_id))
        assert entry.request_id == response.headers["x-request-id"]
        assert citizen["phone"] not in str(entry.detail)

    async def test_three_exports_an_hour(self, client, capsys):
        citizen = await login_citizen(client, capsys)
        statuses = [(await client.get("/api/v1/me/export", headers=bearer(citizen))).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = await client.get("/api/v1/me/export", headers=bearer(citizen))
        assert 0 < int(refused.headers["retry-after"]) <= 3600

    async def test_a_staff_token_gets_no_export(self, client):
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150900"))
        assert (await client.get("/api/v1/me/export", headers=bearer(clerk))).status_code == 403
