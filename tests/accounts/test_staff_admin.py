"""Administering staff accounts: what a new account must satisfy, and disabling a staff member or
changing their roles ends their sessions at once, access tokens included, even for a login that
races the change."""
import asyncio
import time
import uuid

import pytest

from backend.accounts.models import RefreshToken, StaffGrant, StaffUser
from backend.accounts.staff import create_staff, disable_staff, set_staff_grants, set_staff_phone, staff_contacts
from backend.kit.auth import Grant
from backend.kit.errors import AppError
from backend.kit.models import AuditEntry, OutboxEvent
from backend.kit.uow import unit_of_work
from tests.factories import bearer, staff_tokens

PASSWORD = "correct horse battery"


def _username() -> str:
    return f"staff-{uuid.uuid4().hex[:10]}"


async def _login(client, username: str):
    return await client.post("/api/v1/staff/login", json={"username": username, "password": PASSWORD})


class TestCreateStaff:
    @pytest.mark.parametrize("username", ["two words", "Clerk", "ab", "-clerk", "clerk/1", "张三", "x" * 65])
    async def test_a_username_outside_the_pattern_is_refused(self, client, username):
        before = await StaffUser.all().count()
        with pytest.raises(AppError) as refused:
            await create_staff(client.rt, username=username, password=PASSWORD, grants=[Grant("admin")])
        assert refused.value.code == "staff_username_invalid"
        assert await StaffUser.all().count() == before

    @pytest.mark.parametrize("grant,code", [
        (Grant("window_clerk", hall="159999"), "staff_hall_unknown"),
        (Grant("approver", hall="150921", department="zjw"), "staff_department_unknown"),  # zjw sits in 150900
        (Grant("approver", hall="150900", department="nosuch"), "staff_department_unknown"),
        (Grant("approver", department="zjw"), "staff_department_needs_hall"),
        (Grant("janitor", hall="150900"), "unknown_role"),
    ])
    async def test_a_grant_the_catalogue_does_not_have_is_refused(self, client, grant, code):
        username = _username()
        with pytest.raises(AppError) as refused:
            await create_staff(client.rt, username=username, password=PASSWORD,
                               grants=[Grant("admin"), grant])
        assert refused.value.code == code and refused.value.status == 422
        assert not await StaffUser.filter(username=username).exists()

    async def test_a_department_of_the_grants_hall_is_accepted(self, client):
        staff = await create_staff(client.rt, username=_username(), password=PASSWORD,
                                   grants=[Grant("approver", hall="150921", department="150921-ga")])
        grant = await StaffGrant.get(staff_id=staff.id)
        assert (grant.hall_code, grant.department_code) == ("150921", "150921-ga")

    @pytest.mark.parametrize("password", ["123456789", "x" * 257])
    async def test_a_password_of_the_wrong_length_is_refused(self, client, password):
        username = _username()
        with pytest.raises(AppError) as refused:
            await create_staff(client.rt, username=username, password=password, grants=[Grant("admin")])
        assert refused.value.code == "staff_password_length"
        assert refused.value.params == {"min": 10, "max": 256}
        assert not await StaffUser.filter(username=username).exists()

    async def test_a_display_name_longer_than_the_column_is_refused(self, client):
        with pytest.raises(AppError) as refused:
            await create_staff(client.rt, username=_username(), password=PASSWORD, display_name="名" * 65,
                               grants=[Grant("admin")])
        assert refused.value.code == "staff_display_name_too_long"

    async def test_the_refusals_read_as_words_in_each_language(self, client):
        messages = client.rt.messages
        assert messages.render("staff_hall_unknown", "en", hall="159999") == \
            'There is no service hall with the code "159999".'
        assert "159999" in messages.render("staff_hall_unknown", "zh", hall="159999")
        assert "{" not in messages.render("staff_password_length", "mn", min=10, max=256)


class TestDisableStaff:
    async def test_an_access_token_from_before_is_refused_right_after(self, client):
        tokens = await staff_tokens(client, Grant("window_clerk", hall="150921"))
        assert (await client.get("/api/v1/staff/me", headers=bearer(tokens))).status_code == 200
        await disable_staff(client.rt, username=tokens["username"], actor="staff:1")
        refused = await client.get("/api/v1/staff/me", headers=bearer(tokens))
        assert refused.status_code == 401 and refused.json()["code"] == "session_ended"

    async def test_no_refresh_and_no_new_login(self, client):
        tokens = await staff_tokens(client, Grant("window_clerk", hall="150921"))
        await disable_staff(client.rt, username=tokens["username"], actor="staff:1")
        refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refresh.status_code == 401
        login = await _login(client, tokens["username"])
        assert login.status_code == 403 and login.json()["code"] == "account_disabled"

    async def test_it_is_audited_and_recorded(self, client):
        tokens = await staff_tokens(client, Grant("window_clerk", hall="150921"))
        await disable_staff(client.rt, username=tokens["username"], actor="system:cli:root")
        entry = await AuditEntry.get(action="staff.disable", subject_id=str(tokens["id"]))
        assert (entry.actor_kind, entry.actor_id) == ("system", "cli:root")
        assert await OutboxEvent.filter(kind="staff.disabled", aggregate=f"staff:{tokens['id']}").exists()

    async def test_an_unknown_username(self, client):
        with pytest.raises(AppError) as refused:
            await disable_staff(client.rt, username="nobody-at-all", actor="system:cli")
        assert refused.value.code == "staff_not_found" and refused.value.status == 404


class TestSetStaffGrants:
    async def test_an_access_token_with_the_old_roles_is_refused_right_after(self, client):
        tokens = await staff_tokens(client, Grant("window_clerk", hall="150921"))
        await set_staff_grants(client.rt, username=tokens["username"], grants=[Grant("supervisor", hall="150900")],
                               actor="staff:1")
        refused = await client.get("/api/v1/staff/me", headers=bearer(tokens))
        assert refused.status_code == 401 and refused.json()["code"] == "session_ended"
        refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refresh.status_code == 401

    async def test_a_new_login_carries_the_new_roles_only(self, client):
        tokens = await staff_tokens(client, Grant("window_clerk", hall="150921"))
        await set_staff_grants(client.rt, username=tokens["username"], actor="staff:1", grants=[
            Grant("supervisor", hall="150900"), Grant("approver", hall="150900", department="zjw")])
        again = (await _login(client, tokens["username"])).json()
        me = (await client.get("/api/v1/staff/me", headers=bearer(again))).json()
        assert me["grants"] == [{"role": "supervisor", "hall": "150900", "department": None},
                                {"role": "approver", "hall": "150900", "department": "zjw"}]

    async def test_the_change_is_audited_with_the_roles_before_and_after(self, client):
        tokens = await staff_tokens(client, Grant("window_clerk", hall="150921"))
        await set_staff_grants(client.rt, username=tokens["username"], grants=[Grant("admin")], actor="staff:1")
        entry = await AuditEntry.get(action="staff.grants", subject_id=str(tokens["id"]))
        assert entry.detail == {"before": ["window_clerk@150921"], "after": ["admin"]}

    async def test_a_grant_the_catalogue_does_not_have_changes_nothing_and_ends_nothing(self, client):
        tokens = await staff_tokens(client, Grant("window_clerk", hall="150921"))
        with pytest.raises(AppError) as refused:
            await set_staff_grants(client.rt, username=tokens["username"], actor="staff:1",
                                   grants=[Grant("window_clerk", hall="159999")])
        assert refused.value.code == "staff_hall_unknown"
        me = await client.get("/api/v1/staff/me", headers=bearer(tokens))
        assert me.status_code == 200
        assert me.json()["grants"] == [{"role": "window_clerk", "hall": "150921", "department": None}]


async def _until(condition, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.01)


class TestLoginRacingAccountChanges:
    """A login takes seconds (argon2); a disabling or a change of roles that commits meanwhile must
    not leave it with a session of the account as it was."""

    async def test_a_disabling_committed_while_the_password_is_checked_refuses_the_login(self, app_with):
        running = await app_with(staff={"password_checks_running": 1})
        async with running.client() as http:
            tokens = await staff_tokens(http, Grant("window_clerk", hall="150921"))
            gate = running.rt.password_checks
            async with gate.turn():  # the login reads the account, then waits here for its argon2 turn
                login = asyncio.create_task(_login(http, tokens["username"]))

                async def login_waits() -> bool:
                    return gate._waiting == 1
                await _until(login_waits, "the login waits for its password check")
                await disable_staff(running.rt, username=tokens["username"], actor="system:test")
            refused = await login
        assert refused.status_code == 403 and refused.json()["code"] == "account_disabled"
        assert not await RefreshToken.filter(subject_kind="staff", subject_id=tokens["id"],
                                             revoked_at__isnull=True).exists()

    @pytest.mark.postgres_only
    async def test_a_login_during_a_change_of_roles_waits_for_it_and_carries_the_new_roles(self, client):
        """The change holds the row locked until it commits; a login opening its session meanwhile
        waits for it, so its session neither escapes the change's ending of sessions nor keeps the
        old roles. Before, the login read the old roles and committed a session the change never saw."""
        tokens = await staff_tokens(client, Grant("window_clerk", hall="150921"))
        async with unit_of_work(client.rt) as uow:
            await set_staff_grants(client.rt, username=tokens["username"], grants=[Grant("supervisor", hall="150900")],
                                   actor="system:test", tx=uow)
            login = asyncio.create_task(_login(client, tokens["username"]))

            async def login_done_or_blocked() -> bool:
                if login.done():
                    return True
                # asked inside the change's transaction: a fresh snapshot of the activity each time
                await uow.tx.execute_query("SELECT pg_stat_clear_snapshot()")
                _, rows = await uow.tx.execute_query(
                    "SELECT count(*) AS n FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'")
                return rows[0]["n"] > 0
            await _until(login_done_or_blocked, "the login finishes or waits for the row lock", timeout=30)
        raced = await login
        assert raced.status_code == 200, raced.text
        me = await client.get("/api/v1/staff/me", headers=bearer(raced.json()))
        assert me.status_code == 200, me.text
        assert me.json()["grants"] == [{"role": "supervisor", "hall": "150900", "department": None}]


class TestStaffPhone:
    async def test_a_phone_is_kept_encrypted_and_can_be_changed_or_removed(self, client):
        staff = await staff_tokens(client, Grant("approver", hall="150900"), phone="139 0000 1111")
        row = await StaffUser.get(id=staff["id"])
        assert row.phone_enc and "13900001111" not in row.phone_enc
        assert (await staff_contacts(client.rt, staff_ids=[staff["id"]]))[staff["id"]].phone == "13900001111"
        await set_staff_phone(client.rt, username=staff["username"], phone="13900002222", actor="system:test")
        assert (await staff_contacts(client.rt, staff_ids=[staff["id"]]))[staff["id"]].phone == "13900002222"
        await set_staff_phone(client.rt, username=staff["username"], phone=None, actor="system:test")
        assert await staff_contacts(client.rt, staff_ids=[staff["id"]]) == {}
        audited = await AuditEntry.filter(subject_kind="staff", subject_id=str(staff["id"]), action="staff.phone")
        assert len(audited) == 2 and all("139" not in str(entry.detail) for entry in audited)

    async def test_a_number_that_is_not_a_mainland_mobile_is_refused_and_nothing_is_created(self, client):
        username = f"staff-{uuid.uuid4().hex[:10]}"
        for phone in ("12345", "２３９０００01111", "+1 415 555 0100"):
            with pytest.raises(AppError) as refused:
                await create_staff(client.rt, username=username, password="correct horse battery",
                                   grants=[Grant("approver")], phone=phone)
            assert refused.value.code == "staff_phone_invalid"
        assert not await StaffUser.filter(username=username).exists()
