"""Mini-program login through wechatpy against the fake WeChat server, and phone binding that
makes the app user and the WeChat user one citizen."""
import uuid

from pydantic import SecretStr

from backend.accounts.models import Citizen, WechatIdentity
from tests.factories import bearer, login_citizen, new_phone


def _openid() -> str:
    return "o" + uuid.uuid4().hex[:27]


class TestWechatLogin:
    async def test_a_new_openid_becomes_a_citizen_and_session_key_never_leaves(self, client, fake_wechat):
        openid = _openid()
        code = fake_wechat.issue_login_code(openid=openid, unionid="u" + openid[1:])
        response = await client.post("/mp/v1/auth/login", json={"code": code})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["phone_bound"] is False
        assert "session_key" not in response.text and "openid" not in body
        identity = await WechatIdentity.get(openid=openid)
        assert identity.unionid == "u" + openid[1:]
        me = (await client.get("/api/v1/me", headers=bearer(body))).json()
        assert me == {"id": identity.citizen_id, "phone": None, "name": None, "id_number": None,
                      "preferred_language": "zh", "wechat_bound": True,
                      "notifications": {"wechat": True, "sms": True}}

    async def test_logging_in_again_is_the_same_citizen(self, client, fake_wechat):
        openid = _openid()
        first = (await client.post("/mp/v1/auth/login",
                                   json={"code": fake_wechat.issue_login_code(openid=openid)})).json()
        second = (await client.post("/mp/v1/auth/login",
                                    json={"code": fake_wechat.issue_login_code(openid=openid)})).json()
        ids = [(await client.get("/api/v1/me", headers=bearer(t))).json()["id"] for t in (first, second)]
        assert ids[0] == ids[1]

    async def test_a_code_works_once(self, client, fake_wechat):
        code = fake_wechat.issue_login_code(openid=_openid())
        assert (await client.post("/mp/v1/auth/login", json={"code": code})).status_code == 200
        again = await client.post("/mp/v1/auth/login", json={"code": code}, headers={"Accept-Language": "en"})
        assert again.status_code == 400
        assert again.json()["code"] == "wechat_code_invalid"
        assert "WeChat" in again.json()["detail"]

    async def test_wechat_busy_is_a_503_and_nothing_is_created(self, client, fake_wechat):
        openid = _openid()
        code = fake_wechat.issue_login_code(openid=openid)
        fake_wechat.fail_next("/sns/jscode2session", -1)
        response = await client.post("/mp/v1/auth/login", json={"code": code})
        assert response.status_code == 503 and response.json()["code"] == "wechat_unavailable"
        assert not await WechatIdentity.filter(openid=openid).exists()


class TestPhoneBinding:
    async def test_binding_a_new_phone_keeps_the_citizen(self, client, fake_wechat):
        login = (await client.post("/mp/v1/auth/login",
                                   json={"code": fake_wechat.issue_login_code(openid=_openid())})).json()
        phone = new_phone()
        bound = await client.post("/mp/v1/auth/phone", headers=bearer(login),
                                  json={"code": fake_wechat.issue_phone_code(phone)})
        assert bound.status_code == 200, bound.text
        assert bound.json()["merged"] is False
        me = (await client.get("/api/v1/me", headers=bearer(bound.json()))).json()
        assert me["phone"] == phone[:3] + "****" + phone[-4:]

    async def test_the_app_user_and_the_wechat_user_become_one_citizen(self, client, capsys, fake_wechat):
        phone = new_phone()
        app_tokens = await login_citizen(client, capsys, phone)
        app_citizen = (await client.get("/api/v1/me", headers=bearer(app_tokens))).json()["id"]
        await client.patch("/api/v1/me", headers=bearer(app_tokens), json={"name": "其木格"})

        openid = _openid()
        wx = (await client.post("/mp/v1/auth/login",
                                json={"code": fake_wechat.issue_login_code(openid=openid)})).json()
        wx_citizen = (await client.get("/api/v1/me", headers=bearer(wx))).json()["id"]
        assert wx_citizen != app_citizen

        bound = await client.post("/mp/v1/auth/phone", headers=bearer(wx),
                                  json={"code": fake_wechat.issue_phone_code(phone)})
        assert bound.status_code == 200, bound.text
        assert bound.json()["merged"] is True and bound.json()["citizen_id"] == app_citizen
        me = (await client.get("/api/v1/me", headers=bearer(bound.json()))).json()
        assert me["id"] == app_citizen and me["wechat_bound"] and me["name"] == "其**"
        assert not await Citizen.filter(id=wx_citizen).exists()
        assert (await WechatIdentity.get(openid=openid)).citizen_id == app_citizen
        # the WeChat-only session is over; a new mini-program login lands on the merged citizen
        stale = await client.post("/api/v1/auth/refresh", json={"refresh_token": wx["refresh_token"]})
        assert stale.status_code == 401
        again = (await client.post("/mp/v1/auth/login",
                                   json={"code": fake_wechat.issue_login_code(openid=openid)})).json()
        assert again["phone_bound"] is True
        assert (await client.get("/api/v1/me", headers=bearer(again))).json()["id"] == app_citizen

    async def test_a_phone_already_bound_to_another_wechat_user_is_refused(self, client, fake_wechat):
        phone = new_phone()
        first = (await client.post("/mp/v1/auth/login",
                                   json={"code": fake_wechat.issue_login_code(openid=_openid())})).json()
        await client.post("/mp/v1/auth/phone", headers=bearer(first), json={"code": fake_wechat.issue_phone_code(phone)})
        second = (await client.post("/mp/v1/auth/login",
                                    json={"code": fake_wechat.issue_login_code(openid=_openid())})).json()
        refused = await client.post("/mp/v1/auth/phone", headers=bearer(second),
                                    json={"code": fake_wechat.issue_phone_code(phone)})
        assert refused.status_code == 409 and refused.json()["code"] == "phone_already_bound"

    async def test_an_app_user_without_wechat_cannot_bind(self, client, capsys, fake_wechat):
        tokens = await login_citizen(client, capsys)
        response = await client.post("/mp/v1/auth/phone", headers=bearer(tokens),
                                     json={"code": fake_wechat.issue_phone_code(new_phone())})
        assert response.status_code == 403 and response.json()["code"] == "wechat_login_required"

    async def test_a_used_phone_code(self, client, fake_wechat):
        login = (await client.post("/mp/v1/auth/login",
                                   json={"code": fake_wechat.issue_login_code(openid=_openid())})).json()
        code = fake_wechat.issue_phone_code(new_phone())
        assert (await client.post("/mp/v1/auth/phone", headers=bearer(login), json={"code": code})).status_code == 200
        again = await client.post("/mp/v1/auth/phone", headers=bearer(login), json={"code": code})
        assert again.status_code == 400 and again.json()["code"] == "wechat_code_invalid"


class TestNotConfigured:
    async def test_without_a_wechat_secret_the_answer_says_so(self, app_with):
        running = await app_with(wechat={"secret": SecretStr("")})
        async with running.client() as http:
            response = await http.post("/mp/v1/auth/login", json={"code": "0a1b2c3d"},
                                       headers={"Accept-Language": "en"})
        assert response.status_code == 503
        assert response.json()["code"] == "wechat_not_configured"
        assert "not configured" in response.json()["detail"]


class TestNewCitizen:
    async def test_the_first_wechat_login_says_new_and_the_next_does_not(self, client, fake_wechat):
        openid = _openid()
        first = (await client.post("/mp/v1/auth/login", json={"code": fake_wechat.issue_login_code(openid=openid)}))
        again = (await client.post("/mp/v1/auth/login", json={"code": fake_wechat.issue_login_code(openid=openid)}))
        assert first.json()["is_new"] is True and again.json()["is_new"] is False
