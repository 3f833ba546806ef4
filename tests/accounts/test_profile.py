"""The citizen's profile: ID numbers are checked, personal data is encrypted at rest and masked in answers."""
import pytest

from backend.accounts.models import Citizen
from backend.kit.identity import id_number_check_char
from tests.factories import bearer, login_citizen

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
            assert column.startswith("t1:")
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
