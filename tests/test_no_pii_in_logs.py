"""Neither log lines nor responses carry an unmasked phone or ID number (except the audited staff read)."""
import io
import logging
from urllib.parse import unquote

import pytest

from backend.kit.auth import Grant
from backend.kit.identity import id_number_check_char
from backend.kit.observability import JsonFormatter
from tests.factories import bearer, login_citizen, new_phone, staff_tokens

ID_17 = "15092619770315002"
ID_NUMBER = ID_17 + id_number_check_char(ID_17)


async def test_a_whole_citizen_and_staff_journey_logs_no_personal_data(client, capsys, fake_wechat):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    loggers = [logging.getLogger(name) for name in ("ehall", "ehall.http", "ehall.errors", "ehall.wechat",
                                                    "sanic.error", "sanic.root")]
    for logger in loggers:
        logger.addHandler(handler)
    phone = new_phone()
    responses = []
    try:
        tokens = await login_citizen(client, capsys, phone)
        responses.append(await client.patch("/api/v1/me", headers=bearer(tokens),
                                            json={"name": "斯琴", "id_number": ID_NUMBER}))
        responses.append(await client.get("/api/v1/me", headers=bearer(tokens)))
        responses.append(await client.post("/api/v1/auth/sms-code", json={"phone": phone}))   # 429
        responses.append(await client.post("/api/v1/auth/login", json={"phone": phone, "code": "000000"}))
        responses.append(await client.patch("/api/v1/me", headers=bearer(tokens),
                                            json={"id_number": ID_17 + "0" if ID_NUMBER[-1] != "0" else ID_17 + "1"}))
        responses.append(await client.get(f"/api/v1/nothing/{phone}/{ID_NUMBER}"))          # in a URL
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150900"))
        found = await client.post("/api/v1/staff/citizens/lookup", headers=bearer(clerk), json={"phone": phone, "hall": "150900"})
        responses.append(found)
        wx = await client.post("/mp/v1/auth/login", json={"code": fake_wechat.issue_login_code(openid="o-pii-test")})
        responses.append(await client.post("/mp/v1/auth/phone", headers=bearer(wx.json()),
                                           json={"code": fake_wechat.issue_phone_code(phone)}))
        pii = await client.get(f"/api/v1/staff/citizens/{found.json()['id']}/pii", headers=bearer(clerk),
                               params={"hall": "150900", "reason": "identity check"})
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    logged = stream.getvalue()
    assert logged.count('"msg": "request"') >= 10, "the access log did not run: this test would prove nothing"
    for secret in (phone, ID_NUMBER, "斯琴"):
        assert secret not in logged
        for response in responses:
            assert secret not in response.text, response.request.url
    assert phone[:3] + "****" + phone[-4:] in logged          # the masked URL made it to the log
    assert pii.json()["phone"] == phone and pii.json()["id_number"] == ID_NUMBER  # the one audited read
    assert phone not in capsys.readouterr().out               # the console SMS prints it masked too


def _percent_escaped(text: str) -> str:
    return "".join(f"%{ord(c):02X}" for c in text)


@pytest.mark.parametrize("spelling", [
    _percent_escaped, lambda phone: f"{phone[:3]}-{phone[3:7]}-{phone[7:]}",
    lambda phone: f"{phone[:3]}%20{phone[3:7]}%20{phone[7:]}",
])
async def test_a_phone_in_a_url_is_masked_in_the_access_log_and_the_problem_however_it_is_written(
        client, spelling):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    access_log = logging.getLogger("ehall.http")
    access_log.addHandler(handler)
    phone = new_phone()
    try:
        response = await client.get(f"/api/v1/nothing/{spelling(phone)}")
    finally:
        access_log.removeHandler(handler)
    logged = stream.getvalue()
    assert response.status_code == 404 and '"msg": "request"' in logged
    masked = phone[:3] + "****" + phone[-4:]
    instance = response.json()["instance"]
    assert instance.startswith("/api/v1/nothing/")
    for text in (instance, logged):
        readable = unquote(text).replace("-", "").replace(" ", "")
        assert phone not in readable and phone[3:] not in readable, text
        assert masked in readable, text
