"""The citizen's profile: ID numbers are checked, personal data is encrypted at rest and masked in answers."""
import asyncio
import random
import uuid

import pytest

from backend.accounts.models import Citizen
from backend.kit.identity import id_number_check_char
from tests.conftest import TEST_KEY_ID
from tests.factories import bearer, login_citizen, new_phone

ID_17 = "15092119850607321"
ID_NUMBER = ID_17 + id_number_check_char(ID_17)


class TestPatch:
    async def test_name_and_id_number_are_stored_encrypted_and_shown_masked(self, client, capsys):
        tokens = await login_citizen(client, capsys)
        response = await client.patch("/api/v1/me", headers=bearer(tokens),
                                      json={"name": "巴特尔", "id_number": ID_NUMBER, "preferred_language": "mn"})
        assert response.status_code == 200, response.text
        profile = response.json()
        assert profile["name"] == "巴**"
        assert profile["id_number"] == ID_NUMBER[:3] + "*" * 11 + ID_NUMBER[-4:]
        assert profile["preferred_language"] == "mn"
        row = await Citizen.get(id=profile["id"])
        for column in (row.name_enc, row.id_number_enc, row.phone_enc):
            assert column.startswith(TEST_KEY_ID + ":")
        assert ID_NUMBER not in row.id_number_enc and "巴特尔" not in row.name_enc
        assert tokens["phone"] not in row.phone_enc and tokens["phone"] not in row.phone_index

    async def test_a_wrong_check_digit_is_refused_and_changes_nothing(self, client, capsys):
        tokens = await login_citizen(client, capsys)
        wrong = ID_17 + ("0" if ID_NUMBER[-1] != "0" else "1")
        response = await client.patch("/api/v1/me", headers={**bearer(tokens), "Accept-Language": "zh"},
                                      json={"name": "新名字", "id_number": wrong})
        assert response.status_code == 422
        body = response.json()
        assert body["code"] == "validation_failed"
        assert body["errors"][0]["field"] == "id_number" and body["errors"][0]["code"] == "field.id_number_check"
        assert "校验位" in body["errors"][0]["message"]
        me = (await client.get("/api/v1/me", headers=bearer(tokens))).json()
        assert me["name"] is None and me["id_number"] is None

    @pytest.mark.parametrize("body", [{"preferred_language": "fr"}, {"name": ""}, {"name": 5},
                                      {"nickname": "x"}, {"name": "x" * 41}])
    async def test_invalid_fields(self, client, capsys, body):
        tokens = await login_citizen(client, capsys)
        response = await client.patch("/api/v1/me", headers=bearer(tokens), json=body)
        assert response.status_code == 422
        assert response.json()["errors"]


class TestPatchRaces:
    async def test_a_profile_change_never_undoes_a_phone_bound_at_the_same_moment(self, client, fake_wechat):
        """update_profile reads the citizen under lock and writes only the changed columns: a phone
        bound by the mini-program in between survives (on PostgreSQL the two really overlap)."""
        async def one_citizen(i: int) -> tuple[int, str]:
            login = (await client.post("/mp/v1/auth/login", json={
                "code": fake_wechat.issue_login_code(openid=f"o-race-{uuid.uuid4().hex[:20]}")})).json()
            phone = new_phone()
            patched, bound = await asyncio.gather(
                client.patch("/api/v1/me", headers=bearer(login), json={"name": f"其其格{i}"}),
                client.post("/mp/v1/auth/phone", headers=bearer(login),
                            json={"code": fake_wechat.issue_phone_code(phone)}))
            assert patched.status_code == 200 and bound.status_code == 200, (patched.text, bound.text)
            return bound.json()["citizen_id"], phone

        for citizen_id, phone in await asyncio.gather(*(one_citizen(i) for i in range(12))):
            row = await Citizen.get(id=citizen_id)
            assert row.phone_index is not None and row.name_enc is not None


class TestOneIdNumberOneAccount:
    async def test_an_id_number_already_on_another_account_is_refused(self, client, capsys):
        first, second = await login_citizen(client, capsys), await login_citizen(client, capsys)
        number = _new_id_number()
        assert (await client.patch("/api/v1/me", headers=bearer(first), json={"id_number": number})).status_code == 200
        taken = await client.patch("/api/v1/me", headers=bearer(second), json={"name": "乌云", "id_number": number})
        assert taken.status_code == 409 and taken.json()["code"] == "id_number_taken"
        me = (await client.get("/api/v1/me", headers=bearer(second))).json()
        assert me["id_number"] is None and me["name"] is None     # nothing half-written

    async def test_two_accounts_claiming_one_id_number_at_once_one_wins(self, client, capsys):
        accounts = [await login_citizen(client, capsys) for _ in range(4)]
        number = _new_id_number()
        responses = await asyncio.gather(*(
            client.patch("/api/v1/me", headers=bearer(tokens), json={"id_number": number}) for tokens in accounts))
        assert sorted(r.status_code for r in responses) == [200, 409, 409, 409]


class TestLanguage:
    async def test_errors_come_in_the_profiles_language_when_the_app_sends_none(self, client, capsys):
        tokens = await login_citizen(client, capsys)
        await client.patch("/api/v1/me", headers=bearer(tokens), json={"preferred_language": "mn"})
        renewed = (await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})).json()
        refused = await client.patch("/api/v1/me", headers=bearer(renewed), json={"preferred_language": "fr"})
        assert refused.status_code == 422 and refused.json()["lang"] == "mn"
        asked = await client.patch("/api/v1/me", headers={**bearer(renewed), "Accept-Language": "en"},
                                   json={"preferred_language": "fr"})
        assert asked.json()["lang"] == "en"     # a header the app sends still wins


class TestLogin:
    async def test_the_first_login_says_the_citizen_is_new_and_the_next_does_not(self, app_with, capsys):
        running = await app_with(otp={"per_phone_per_minute": 5})
        async with running.client() as http:
            first = await login_citizen(http, capsys)
            again = await login_citizen(http, capsys, first["phone"])
        assert first["is_new"] is True and again["is_new"] is False


def _new_id_number() -> str:
    first17 = "150921" + f"19{random.randint(50, 99)}0{random.randint(1, 9)}1{random.randint(0, 9)}" \
        + f"{random.randint(0, 999):03d}"
    return first17 + id_number_check_char(first17)


class TestLongNames:
    @pytest.mark.parametrize("name", ["😀" * 40, "𠀀" * 40, "𪚥𰻞" * 20])
    async def test_forty_four_byte_characters_fit_the_encrypted_column(self, client, capsys, name):
        tokens = await login_citizen(client, capsys)
        response = await client.patch("/api/v1/me", headers=bearer(tokens), json={"name": name})
        assert response.status_code == 200, response.text
        assert response.json()["name"] == name[0] + "*" * 39

    async def test_a_name_over_forty_characters_is_a_422_that_says_so(self, client, capsys):
        tokens = await login_citizen(client, capsys)
        response = await client.patch("/api/v1/me", headers=bearer(tokens), json={"name": "𠀀" * 41})
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "name"
        assert (await client.get("/api/v1/me", headers=bearer(tokens))).json()["name"] is None
