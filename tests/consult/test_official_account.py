"""The official account's callback (GET/POST /wechat/oa/callback) as WeChat calls it, in plain and safe
mode, and staff answers going back as customer-service messages through the loopback fake of WeChat."""
from __future__ import annotations

import hashlib
import secrets
import string
import time
import uuid
from datetime import timedelta

import pytest
from pydantic import SecretStr
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import to_text
import xmltodict

from backend.consult.models import Conversation, ConversationMessage
from backend.kit import clock
from backend.kit.auth import Grant
from backend.kit.models import OutboxEvent
from tests.conftest import start_server
from tests.consult.conftest import msg_id
from tests.factories import bearer, staff_tokens

TOKEN = "oatesttoken2026"
AES_KEY = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(43))
APPID, SECRET = "wxoatest00000001", "oa-test-secret"


@pytest.fixture(scope="session")
async def account_server(settings, database, fake_wechat):
    """One server of this run with the official account configured (the others have no token)."""
    fake_wechat.add_account(APPID, SECRET)
    running, stop = await start_server(settings.model_copy(update={
        "official_account": settings.official_account.model_copy(update={
            "appid": APPID, "secret": SecretStr(SECRET), "token": SecretStr(TOKEN),
            "encoding_aes_key": SecretStr(AES_KEY), "department": ""})}))
    try:
        yield running
    finally:
        await stop()


@pytest.fixture
async def account(account_server, business_time):
    return account_server


def _signed(**extra) -> dict:
    timestamp, nonce = str(int(time.time())), secrets.token_hex(6)
    signature = hashlib.sha1("".join(sorted([TOKEN, timestamp, nonce])).encode()).hexdigest()
    return {"signature": signature, "timestamp": timestamp, "nonce": nonce, **extra}


def _xml(openid: str, kind: str = "text", **fields) -> str:
    parts = "".join(f"<{k}><![CDATA[{v}]]></{k}>" if isinstance(v, str) else f"<{k}>{v}</{k}>" for k, v in fields.items())
    return (f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[{kind}]]></MsgType>{parts}</xml>")


def _text(openid: str, content: str, msg: int | None = None) -> str:
    return _xml(openid, Content=content, MsgId=msg or secrets.randbits(62))


def _reply(response) -> dict:
    return xmltodict.parse(response.text)["xml"]


def follower() -> str:
    return f"oOA{uuid.uuid4().hex[:20]}"


class TestUrlVerification:
    async def test_the_echostr_comes_back_when_the_signature_is_right(self, account):
        async with account.client() as http:
            good = await http.get("/wechat/oa/callback", params=_signed(echostr="7311965327843"))
            assert good.status_code == 200 and good.text == "7311965327843"
            bad = await http.get("/wechat/oa/callback", params=_signed(echostr="1") | {"signature": "0" * 40})
            assert bad.status_code == 403 and bad.json()["code"] == "wechat_signature_invalid"

    async def test_without_a_token_configured_every_callback_is_refused(self, client):
        response = await client.get("/wechat/oa/callback", params=_signed(echostr="1"))
        assert response.status_code == 403


class TestPlainMode:
    async def test_text_becomes_a_consulting_message_once_however_often_wechat_retries(self, account):
        openid = follower()
        body = _text(openid, "请问营业执照在哪里办？", msg=secrets.randbits(62))
        async with account.client() as http:
            for _ in range(3):
                response = await http.post("/wechat/oa/callback", params=_signed(), content=body)
                assert response.status_code == 200 and response.text == "success"
        conversation = await Conversation.get(oa_openid=openid)
        assert conversation.channel == "oa" and conversation.hall_code == "150900" and conversation.status == "open"
        assert [m.text for m in await ConversationMessage.filter(conversation_id=conversation.id)] == \
            ["请问营业执照在哪里办？"]

    async def test_a_follower_writing_again_continues_the_same_conversation(self, account):
        openid = follower()
        async with account.client() as http:
            for text in ("第一个问题", "第二个问题"):
                await http.post("/wechat/oa/callback", params=_signed(), content=_text(openid, text))
        conversation = await Conversation.get(oa_openid=openid)
        assert await ConversationMessage.filter(conversation_id=conversation.id).count() == 2

    async def test_a_subscribe_event_gets_the_welcome(self, account):
        openid = follower()
        async with account.client() as http:
            response = await http.post("/wechat/oa/callback", params=_signed(),
                                       content=_xml(openid, "event", Event="subscribe"))
        reply = _reply(response)
        assert reply["MsgType"] == "text" and reply["ToUserName"] == openid
        assert "欢迎关注" in reply["Content"] and "CX" in reply["Content"]

    @pytest.mark.parametrize("asked", ["CX 20261125001", "查询 20261125001", "cx20261125001"])
    async def test_a_progress_keyword_of_an_unbound_follower_answers_not_found(self, account, asked):
        openid = follower()
        async with account.client() as http:
            response = await http.post("/wechat/oa/callback", params=_signed(), content=_text(openid, asked))
        assert "20261125001" in _reply(response)["Content"] and "没有找到" in _reply(response)["Content"]
        assert not await Conversation.exists(oa_openid=openid)

    async def test_an_unknown_message_type_is_answered_success_and_stores_nothing(self, account):
        openid = follower()
        async with account.client() as http:
            response = await http.post("/wechat/oa/callback", params=_signed(),
                                       content=_xml(openid, "location", Location_X=23.1, MsgId=secrets.randbits(62)))
        assert response.status_code == 200 and response.text == "success"
        assert not await Conversation.exists(oa_openid=openid)

    async def test_a_bad_signature_bad_xml_and_an_oversize_body_are_refused(self, account):
        openid = follower()
        async with account.client() as http:
            forged = await http.post("/wechat/oa/callback", params=_signed() | {"signature": "a" * 40},
                                     content=_text(openid, "伪造"))
            assert forged.status_code == 403
            broken = await http.post("/wechat/oa/callback", params=_signed(), content="<xml><MsgType>text")
            assert broken.status_code == 400 and broken.json()["code"] == "wechat_message_malformed"
            huge = await http.post("/wechat/oa/callback", params=_signed(), content=_text(openid, "长" * 40000))
            assert huge.status_code == 413
        assert not await Conversation.exists(oa_openid=openid)


class TestSafeMode:
    async def test_an_encrypted_message_is_read_and_the_reply_encrypted(self, account):
        crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)
        openid = follower()
        query = _signed()
        wrapped = xmltodict.parse(crypto.encrypt_message(_xml(openid, "event", Event="subscribe"), query["nonce"],
                                                         query["timestamp"]))["xml"]
        body = f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName><Encrypt><![CDATA[{wrapped['Encrypt']}]]></Encrypt></xml>"
        async with account.client() as http:
            response = await http.post("/wechat/oa/callback", content=body, params=query | {
                "encrypt_type": "aes", "msg_signature": wrapped["MsgSignature"]})
            assert response.status_code == 200, response.text
            sealed = xmltodict.parse(response.text)["xml"]
            plain = crypto.decrypt_message(response.text, sealed["MsgSignature"], sealed["TimeStamp"], sealed["Nonce"])
            assert "欢迎关注" in to_text(plain)
            forged = await http.post("/wechat/oa/callback", content=body, params=_signed() | {
                "encrypt_type": "aes", "msg_signature": "b" * 40})
            assert forged.status_code == 403


class TestCustomerServiceReply:
    async def _follower_conversation(self, account, openid: str) -> int:
        async with account.client() as http:
            await http.post("/wechat/oa/callback", params=_signed(), content=_text(openid, "社保卡怎么补办？"))
        return (await Conversation.get(oa_openid=openid)).id

    async def test_within_48_hours_a_staff_answer_goes_back_as_a_customer_service_message(self, account, fake_wechat):
        openid = follower()
        fake_wechat.follower_wrote(openid)
        conversation = await self._follower_conversation(account, openid)
        async with account.client() as http:
            clerk = await staff_tokens(http, Grant("window_clerk", hall="150900"))
            sent = await http.post(f"/api/v1/staff/conversations/{conversation}/messages", headers=bearer(clerk),
                                   json={"text": "请带身份证到二楼窗口。", "client_msg_id": msg_id()})
        assert sent.status_code == 201, sent.text
        delivered = [m for m in fake_wechat.customer_service_messages if m["touser"] == openid]
        assert delivered == [{"touser": openid, "msgtype": "text", "text": {"content": "请带身份证到二楼窗口。"}}]

    async def test_after_48_hours_no_customer_service_message_is_tried(self, account, fake_wechat):
        openid = follower()
        fake_wechat.follower_wrote(openid)
        conversation = await self._follower_conversation(account, openid)
        clock.advance(timedelta(hours=49))
        async with account.client() as http:
            clerk = await staff_tokens(http, Grant("window_clerk", hall="150900"))
            sent = await http.post(f"/api/v1/staff/conversations/{conversation}/messages", headers=bearer(clerk),
                                   json={"text": "迟到的答复", "client_msg_id": msg_id()})
        assert sent.status_code == 201
        assert not [m for m in fake_wechat.customer_service_messages if m["touser"] == openid]

    async def test_wechat_refusing_with_45015_leaves_the_answer_saved(self, account, fake_wechat):
        openid = follower()   # WeChat has no message of theirs within 48 hours: 45015
        conversation = await self._follower_conversation(account, openid)
        async with account.client() as http:
            clerk = await staff_tokens(http, Grant("window_clerk", hall="150900"))
            sent = await http.post(f"/api/v1/staff/conversations/{conversation}/messages", headers=bearer(clerk),
                                   json={"text": "窗口外的答复", "client_msg_id": msg_id()})
        assert sent.status_code == 201
        assert await ConversationMessage.filter(conversation_id=conversation, sender_kind="staff").count() == 1
        assert not [m for m in fake_wechat.customer_service_messages if m["touser"] == openid]
        # an unbound follower is no citizen notify could reach: no event either
        assert not await OutboxEvent.filter(kind="consult.answered", aggregate=f"conversation:{conversation}").exists()


class TestProgressKeyword:
    async def test_a_bound_follower_gets_the_status_line_of_their_own_application_and_nobody_elses(
            self, account, capsys):
        from backend.accounts.models import WechatIdentity
        from tests.consult.conftest import citizen_id
        from tests.factories import real_name_citizen
        owner, stranger = follower(), follower()
        async with account.client() as http:
            citizen = await real_name_citizen(http, capsys)
            await WechatIdentity.create(appid=APPID, openid=owner, citizen_id=citizen_id(http, citizen))
            declared = await http.post("/api/v1/cases", headers=bearer(citizen),
                                       json={"service_item": "rsj.GG002", "form": {"delivery": "window"}})
            assert declared.status_code == 201, declared.text
            receipt = declared.json()["receipt"]
            spoken = f"{receipt[:6]}-{receipt[6:12]} {receipt[12:]}"   # as read out over the phone
            mine = await http.post("/wechat/oa/callback", params=_signed(), content=_text(owner, f"CX {spoken}"))
            theirs = await http.post("/wechat/oa/callback", params=_signed(),
                                     content=_text(stranger, f"查询{receipt}"))
        assert _reply(mine)["Content"] == f"办件{receipt}：已申报，办结时限-。"
        assert receipt in _reply(theirs)["Content"] and "没有找到" in _reply(theirs)["Content"]
        assert not await Conversation.exists(oa_openid=owner)


class TestBoundFollower:
    async def test_a_follower_bound_to_a_citizen_gets_a_late_answer_through_notify(self, account, capsys,
                                                                                   fake_wechat):
        from backend.accounts.models import WechatIdentity
        from tests.consult.conftest import citizen_id
        from tests.factories import login_citizen
        openid = follower()
        async with account.client() as http:
            citizen = await login_citizen(http, capsys)
            # the binding row the official account's login makes (the same person, the account's openid)
            await WechatIdentity.create(appid=APPID, openid=openid, citizen_id=citizen_id(http, citizen))
            await http.post("/wechat/oa/callback", params=_signed(), content=_text(openid, "医保怎么转移？"))
            conversation = await Conversation.get(oa_openid=openid)
            assert conversation.citizen_id == citizen_id(http, citizen)
            mine = (await http.get("/api/v1/conversations", headers=bearer(citizen))).json()["items"]
            assert [c["id"] for c in mine] == [conversation.id] and mine[0]["channel"] == "oa"
            clock.advance(timedelta(hours=49))
            clerk = await staff_tokens(http, Grant("window_clerk", hall="150900"))
            sent = await http.post(f"/api/v1/staff/conversations/{conversation.id}/messages", headers=bearer(clerk),
                                   json={"text": "请到医保窗口办理转移。", "client_msg_id": msg_id()})
        assert sent.status_code == 201
        events = await OutboxEvent.filter(kind="consult.answered", aggregate=f"conversation:{conversation.id}")
        assert [e.payload["citizen"] for e in events] == [conversation.citizen_id]
        assert not [m for m in fake_wechat.customer_service_messages if m["touser"] == openid]
