"""The applications domain's own events, as it records them, reach the applicant: the herder a window
clerk declared for, who has never opened the app, gets the receipt number and each step by SMS."""
from backend.kit.auth import Grant
from tests.factories import bearer, new_id_number, new_phone, staff_tokens
from tests.notify.conftest import drain


async def test_a_herder_without_the_app_hears_of_the_receipt_and_the_acceptance_by_sms(notifying, aliyun):
    phone = new_phone()
    async with notifying.client() as http:
        clerk = await staff_tokens(http, Grant("window_clerk", hall="150900", department="rsj"))
        declared = await http.post("/api/v1/staff/cases", headers=bearer(clerk), json={
            "service_item": "rsj.GG002", "form": {"delivery": "window"},
            "citizen": {"name": "乌力吉", "id_number": new_id_number(), "phone": phone}})
        assert declared.status_code == 201, declared.text
        case = declared.json()
        await drain(notifying.rt)
        accepted = await http.post(f"/api/v1/staff/cases/{case['id']}/accept", headers=bearer(clerk), json={})
        assert accepted.status_code == 200, accepted.text
        await drain(notifying.rt)
    texts = [message for message in aliyun.sent if message["phone_numbers"] == phone]
    assert [m["template_param"]["receipt"] for m in texts] == [case["receipt"], case["receipt"]]
    assert [m["template_param"]["step"] for m in texts] == ["已申报，请凭此编号查询进度", "已受理"]
    assert all(m["template_param"]["item"] == "社会保障卡申领" for m in texts)
