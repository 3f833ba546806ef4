"""Progress without an account: a receipt and the last 4 characters of the applicant's ID number or
phone (the answer masked, an unknown number and a wrong tail told apart by nothing, a mistyped number
told as such, every try counted per receipt and per address before the lookup), and by text message,
"CX <receipt>" from the phone on the application, pushed by Alibaba Cloud or Tencent Cloud."""
import asyncio
import json

import pytest
from pydantic import SecretStr

from backend.cases.machine import STATUS_TEXT
from backend.kit.auth import Grant
from backend.kit.identity import mod11_2_check_char
from backend.kit.ratelimit import MemoryRateLimiter, RedisRateLimiter
from backend.settings import AliyunSmsSettings
from tests.cases.declaring import citizen, declare, fill_form
from tests.conftest import BACKEND
from tests.factories import bearer, new_id_number, new_phone, staff_tokens, unique_address
from tests.fakes.aliyun_sms import FakeAliyunSms

PENSION = "150921-rs.GG003"      # 城乡居民养老保险参保登记 in 卓资县 (150921), personal, online
RECEIPT_TOKEN = "inbound-token-for-the-cases-tests"
STATUS_LINE, STATUS_UNKNOWN = "SMS_000000191", "SMS_000000194"   # config/templates/sms.toml, zh, Alibaba Cloud
STAFF_COMMENT = "材料齐全，经办人王五核对"


def _other_receipt(receipt: str) -> str:
    """A well-formed receipt with a valid check character that nobody was issued: the same hall and day,
    a sequence number no test reaches."""
    body = receipt[:-6] + "99999"
    return body + mod11_2_check_char(body)


def _mistyped(receipt: str) -> str:
    """The receipt with one digit of its body changed: the check character no longer matches."""
    digit = receipt[-3]
    return receipt[:-3] + str((int(digit) + 1) % 10) + receipt[-2:]


def _wrong_tail(person: dict) -> str:
    return next(t for t in ("0000", "1111", "2222") if t not in (person["id_number"][-4:], person["phone"][-4:]))


async def _applied(client, capsys, *, reviewed: bool = False) -> tuple[dict, dict]:
    """A citizen and their application; `reviewed`: accepted, its step decided and sent back for 补正, each
    with a staff comment."""
    person = await citizen(client, capsys, name="巴特尔")
    case = await declare(client, person, PENSION)
    if reviewed:
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150921", department="150921-rs"))
        accepted = await client.post(f"/api/v1/staff/cases/{case['id']}/accept", headers=bearer(clerk),
                                     json={"comment": STAFF_COMMENT})
        assert accepted.status_code == 200, accepted.text
        approver = await staff_tokens(client, Grant("approver", hall="150921", department="150921-rs"))
        decided = await client.post(f"/api/v1/staff/cases/{case['id']}/decide-step", headers=bearer(approver),
                                    json={"decision": "approve", "comment": STAFF_COMMENT})
        assert decided.status_code == 200, decided.text
        assert decided.json()["steps"][0]["comment"] == STAFF_COMMENT     # staff see it; the lookup must not
        asked = await client.post(f"/api/v1/staff/cases/{case['id']}/request-supplement", headers=bearer(clerk),
                                  json={"comment": STAFF_COMMENT, "missing": ["居民户口簿首页"]})
        assert asked.status_code == 200, asked.text
        person["clerk"] = clerk
    return person, case


@pytest.fixture
async def lookups(app_with):
    """A server behind one proxy (the client address from X-Forwarded-For) with the given case settings,
    and a client of it from an address no other test uses."""
    async def start(**cases):
        running = await app_with(proxies_count=1, cases=cases) if cases else await app_with(proxies_count=1)
        return running, running.client(headers={"X-Forwarded-For": unique_address()})
    return start


class TestLookupProgress:
    async def test_the_receipt_and_the_last_4_of_the_id_number_or_the_phone_show_progress_masked(self, client,
                                                                                                 capsys, lookups):
        person, case = await _applied(client, capsys, reviewed=True)
        running, http = await lookups()
        async with http:
            by_id = await http.post("/api/v1/progress/lookup", json={"receipt": case["receipt"],
                                                                      "tail": person["id_number"][-4:]})
            by_phone = await http.post("/api/v1/progress/lookup", json={"receipt": case["receipt"],
                                                                         "tail": person["phone"][-4:]})

        for answer in (by_id, by_phone):
            assert answer.status_code == 200, answer.text
            progress = answer.json()
            assert progress["receipt"] == case["receipt"] and progress["status"] == "supplement_required"
            assert progress["applicant"] == "巴**"
            assert [row["action"] for row in progress["timeline"]] == ["submit", "accept", "decide_step",
                                                                   "request_supplement"]
            assert all(row["comment"] == "" and row["actor"] is None for row in progress["timeline"])
            assert [(step["status"], step["comment"]) for step in progress["steps"]] == [("approved", "")]
            text = answer.text
            assert "巴特尔" not in text and person["id_number"] not in text and person["phone"] not in text
            assert person["id_number"][6:14] not in text     # not even the birth date in the middle
            assert STAFF_COMMENT not in text and "王五" not in text and "居民户口簿首页" not in text
            assert "staff:" not in text and person["clerk"]["username"] not in text
            assert "decided_by" not in text
        assert by_id.json() == by_phone.json()

    async def test_a_wrong_tail_and_an_unknown_receipt_get_the_same_answer(self, client, capsys, lookups):
        person, case = await _applied(client, capsys)
        running, http = await lookups()
        wrong_tail = _wrong_tail(person)
        async with http:
            wrong = await http.post("/api/v1/progress/lookup", json={"receipt": case["receipt"], "tail": wrong_tail})
            unknown = await http.post("/api/v1/progress/lookup", json={"receipt": _other_receipt(case["receipt"]),
                                                                        "tail": person["id_number"][-4:]})

        assert wrong.status_code == unknown.status_code == 404
        assert wrong.json()["code"] == "progress_not_found"
        without_id = [{k: v for k, v in answer.json().items() if k != "request_id"} for answer in (wrong, unknown)]
        assert without_id[0] == without_id[1]
        assert wrong.text.replace(wrong.json()["request_id"], "") \
            == unknown.text.replace(unknown.json()["request_id"], "")
        assert {k: v for k, v in wrong.headers.items() if k not in ("x-request-id", "date")} \
            == {k: v for k, v in unknown.headers.items() if k not in ("x-request-id", "date")}

    async def test_a_receipt_with_a_wrong_check_character_is_told_mistyped(self, client, capsys, lookups):
        person, case = await _applied(client, capsys)
        running, http = await lookups()
        receipt = case["receipt"]
        assert mod11_2_check_char(receipt[:-1]) == receipt[-1]
        async with http:
            changed = await http.post("/api/v1/progress/lookup", json={"receipt": _mistyped(receipt),
                                                                        "tail": person["id_number"][-4:]})
            wrong_check = "0" if receipt[-1] != "0" else "1"
            checked = await http.post("/api/v1/progress/lookup", json={"receipt": receipt[:-1] + wrong_check,
                                                                        "tail": person["id_number"][-4:]})
        for answer in (changed, checked):
            assert answer.status_code == 422, answer.text
            assert answer.json()["code"] == "receipt_mistyped"
            assert answer.json()["errors"][0]["field"] == "receipt"

    @pytest.mark.parametrize("spelled", [
        lambda r: f"{r[:6]} {r[6:12]} {r[12:]}",                              # grouped as printed
        lambda r: f"{r[:6]}-{r[6:12]}-{r[12:-1]}-{r[-1]}",
        lambda r: r.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")),   # a Chinese keyboard
        lambda r: f"{r[:6]}－{r[6:12]}\u3000{r[12:]}".translate(str.maketrans("0123456789", "０１２３４５６７８９")),
        lambda r: r.lower(),
    ], ids=["spaces", "dashes", "full-width", "full-width-grouped", "lower-case"])
    async def test_spaces_dashes_and_full_width_digits_in_the_receipt_are_taken(self, client, capsys, lookups,
                                                                                spelled):
        person, case = await _applied(client, capsys)
        running, http = await lookups()
        async with http:
            found = await http.post("/api/v1/progress/lookup", json={"receipt": spelled(case["receipt"]),
                                                                      "tail": person["phone"][-4:]})
        assert found.status_code == 200, found.text
        assert found.json()["receipt"] == case["receipt"]


    async def test_an_id_number_ending_in_x_is_found_with_a_small_x_or_full_width_digits(self, client, capsys,
                                                                                       lookups):
        person = await citizen(client, capsys, id_number_ending="X")
        case = await declare(client, person, PENSION)
        tail = person["id_number"][-4:]
        running, http = await lookups()
        async with http:
            answers = [await http.post("/api/v1/progress/lookup", json={"receipt": case["receipt"], "tail": typed})
                       for typed in (tail, tail.lower(), tail.translate(str.maketrans("0123456789X", "０１２３４５６７８９ｘ")))]
        assert [answer.status_code for answer in answers] == [200, 200, 200], [a.text for a in answers]


class TestLookupLimits:
    async def test_tries_on_one_receipt_are_counted_before_the_lookup_right_or_wrong(self, client, capsys,
                                                                                    lookups):
        person, case = await _applied(client, capsys)
        other_person, other_case = await _applied(client, capsys)
        running, _ = await lookups(lookups_per_receipt_per_hour=3)
        answers = []
        for tail in (_wrong_tail(person), person["id_number"][-4:], _wrong_tail(person), person["phone"][-4:]):
            # each try from a new address: only the receipt's own count can refuse the fourth
            async with running.client(headers={"X-Forwarded-For": unique_address()}) as http:
                answers.append(await http.post("/api/v1/progress/lookup",
                                               json={"receipt": case["receipt"], "tail": tail}))
        async with running.client(headers={"X-Forwarded-For": unique_address()}) as http:
            other = await http.post("/api/v1/progress/lookup",
                                    json={"receipt": other_case["receipt"], "tail": other_person["phone"][-4:]})

        assert [a.status_code for a in answers] == [404, 200, 404, 429], answers[3].text
        # the right tail, but three tries were spent on this receipt, two of them wrong
        assert answers[3].json()["code"] == "rate_limited"
        assert other.status_code == 200, other.text      # another receipt has its own count

    async def test_no_more_than_the_limit_of_concurrent_lookups_from_one_address_get_past_it(self, client, capsys,
                                                                                             lookups):
        person, case = await _applied(client, capsys)
        limit = 6
        running, http = await lookups(lookups_per_ip_per_hour=limit, lookups_per_receipt_per_hour=1000)
        # the PostgreSQL run counts in Redis (one Lua script), the SQLite run in the process
        assert isinstance(running.rt.limiter, RedisRateLimiter if BACKEND == "postgres" else MemoryRateLimiter)
        async with http:
            answers = await asyncio.gather(*(
                http.post("/api/v1/progress/lookup", json={"receipt": case["receipt"], "tail": person["phone"][-4:]})
                for _ in range(limit + 5)))
            async with running.client(headers={"X-Forwarded-For": unique_address()}) as elsewhere:
                another_address = await elsewhere.post("/api/v1/progress/lookup", json={
                    "receipt": case["receipt"], "tail": person["phone"][-4:]})

        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200] * limit + [429] * 5, statuses
        assert another_address.status_code == 200, another_address.text


def _aliyun_push(phone: str, text: str) -> list[dict]:
    return [{"phone_number": phone, "send_time": "2026-12-03 10:00:01", "content": text, "sign_name": "乌兰察布政务",
             "dest_code": "1234", "sequence_id": 1234567}]


def _aliyun_push_2024(phone: str, text: str) -> list[dict]:
    # the SmsUp page as it reads now: no sign_name, the sequence as a string
    return [{"phone_number": phone, "content": text, "send_time": "2026-12-03 10:00:01", "dest_code": "1234",
             "sequence_id": "1234567890"}]


def _tencent_push(phone: str, text: str) -> dict:
    # Tencent Cloud's reply callback (SMS Reply, api/382/43548): `extend` is sent null when the channel's
    # extended code is not enabled, which is the default
    return {"extend": None, "mobile": phone, "nationcode": "86", "sign": "乌兰察布政务", "text": text, "time": 1764727201}


@pytest.fixture(scope="module")
async def aliyun():
    async with FakeAliyunSms() as fake:
        yield fake


@pytest.fixture
async def inbound(app_with, aliyun):
    """A server whose SMS goes through Alibaba Cloud's SDK to its fake, taking pushes with RECEIPT_TOKEN."""
    async def start(**cases):
        return await app_with(
            sms={"backend": "aliyun", "aliyun": AliyunSmsSettings(
                access_key_id=aliyun.access_key_id, access_key_secret=aliyun.access_key_secret,
                endpoint=aliyun.address, protocol="http")},
            notify={"receipt_token": SecretStr(RECEIPT_TOKEN)}, **({"cases": cases} if cases else {}))
    return start


def _sent_to(fake: FakeAliyunSms, phone: str) -> list[dict]:
    return [message for message in fake.sent if message["phone_numbers"] == phone]


class TestInboundSms:
    @pytest.mark.parametrize("push", [_aliyun_push, _aliyun_push_2024, _tencent_push],
                             ids=["aliyun", "aliyun-now", "tencent"])
    @pytest.mark.parametrize("words", ["CX {receipt}", "查询{receipt}", "cx  {receipt}", "查询：{spaced}"])
    async def test_cx_receipt_from_the_applications_phone_is_answered_with_its_status_line(
            self, client, capsys, aliyun, inbound, push, words):
        person, case = await _applied(client, capsys)
        running = await inbound()
        receipt = case["receipt"]
        text = words.format(receipt=receipt, spaced=f"{receipt[:6]} {receipt[6:12]} {receipt[12:]}")
        async with running.client() as http:
            answer = await http.post("/api/v1/sms/inbound", params={"token": RECEIPT_TOKEN},
                                     json=push(person["phone"], text))

        assert answer.status_code == 200, answer.text
        # each provider reads its own fields: Alibaba Cloud code (msg), Tencent Cloud result and errmsg
        assert answer.json() | {"msg": "", "errmsg": ""} == {"code": 0, "result": 0, "msg": "", "errmsg": ""}
        assert answer.json()["errmsg"] == "OK" and answer.json()["msg"]
        [sent] = _sent_to(aliyun, person["phone"])
        assert sent["template_code"] == STATUS_LINE
        assert sent["template_param"] == {"receipt": receipt, "status": "已申报", "deadline": "-"}

    async def test_the_status_line_is_in_the_language_the_citizen_chose(self, client, capsys, aliyun, inbound):
        person, case = await _applied(client, capsys)
        chosen = await client.patch("/api/v1/me", headers=person["headers"], json={"preferred_language": "mn"})
        assert chosen.status_code == 200, chosen.text
        running = await inbound()
        async with running.client() as http:
            answer = await http.post("/api/v1/sms/inbound", params={"token": RECEIPT_TOKEN},
                                     json=_aliyun_push(person["phone"], f"CX {case['receipt']}"))
        assert answer.status_code == 200, answer.text
        [sent] = _sent_to(aliyun, person["phone"])
        assert sent["template_code"] == "SMS_000000192"      # case_status_line, mn
        assert sent["template_param"]["status"] == STATUS_TEXT["submitted"]["mn"] != STATUS_TEXT["submitted"]["zh"]

    async def test_a_herder_whose_application_an_agent_declared_is_answered_without_ever_using_the_app(
            self, client, aliyun, inbound):
        herder = {"name": "敖日格乐", "id_number": new_id_number(), "phone": new_phone()}
        agent = await staff_tokens(client, Grant("agent", hall="150921106202"))
        mandate = await client.post("/api/v1/agent/mandates", headers=bearer(agent),
                                    json={"citizen": herder, "items": [PENSION], "reference": "WT-2026-0042"})
        assert mandate.status_code == 201, mandate.text
        detail = (await client.get(f"/api/v1/service-items/{PENSION}")).json()
        case = await client.post("/api/v1/agent/cases", headers=bearer(agent), json={
            "service_item": PENSION, "form": fill_form(detail), "mandate_id": mandate.json()["id"]})
        assert case.status_code == 201, case.text
        running = await inbound()
        async with running.client() as http:
            answer = await http.post("/api/v1/sms/inbound", params={"token": RECEIPT_TOKEN},
                                     json=_tencent_push(herder["phone"], f"查询 {case.json()['receipt']}"))
        assert answer.status_code == 200, answer.text
        [sent] = _sent_to(aliyun, herder["phone"])
        assert (sent["template_code"], sent["template_param"]["receipt"]) == (STATUS_LINE, case.json()["receipt"])

    @pytest.mark.parametrize("push", [_aliyun_push, _tencent_push], ids=["aliyun", "tencent"])
    async def test_another_phone_an_unknown_receipt_or_other_words_get_the_polite_fixed_answer(
            self, client, capsys, aliyun, inbound, push):
        person, case = await _applied(client, capsys)
        stranger = await citizen(client, capsys)
        running = await inbound()
        never_logged_in = new_phone()
        async with running.client() as http:
            for phone, text in ((stranger["phone"], f"CX {case['receipt']}"),
                                (never_logged_in, f"CX {case['receipt']}"),
                                (person["phone"], f"CX {_other_receipt(case['receipt'])}"),
                                (person["phone"], f"CX {_mistyped(case['receipt'])}"),
                                (person["phone"], "你好，我的养老保险办好了吗")):
                answer = await http.post("/api/v1/sms/inbound", params={"token": RECEIPT_TOKEN}, json=push(phone, text))
                assert answer.status_code == 200, answer.text

        for phone in (stranger["phone"], never_logged_in):
            [sent] = _sent_to(aliyun, phone)
            assert (sent["template_code"], sent["template_param"]) == (STATUS_UNKNOWN, {})
        to_applicant = _sent_to(aliyun, person["phone"])
        assert [(s["template_code"], s["template_param"]) for s in to_applicant] == [(STATUS_UNKNOWN, {})] * 3
        assert case["receipt"] not in json.dumps([s["template_param"] for s in aliyun.sent
                                                  if s["phone_numbers"] == stranger["phone"]])

    @pytest.mark.parametrize("params", [{}, {"token": ""}, {"token": "not-the-token"},
                                        {"token": RECEIPT_TOKEN + "x"}], ids=["none", "empty", "wrong", "longer"])
    async def test_a_push_without_the_token_is_401_and_nothing_is_sent(self, client, capsys, aliyun, inbound,
                                                                       params):
        person, case = await _applied(client, capsys)
        running = await inbound()
        async with running.client() as http:
            answer = await http.post("/api/v1/sms/inbound", params=params,
                                     json=_aliyun_push(person["phone"], f"CX {case['receipt']}"))
        assert answer.status_code == 401, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert _sent_to(aliyun, person["phone"]) == []

    async def test_a_server_with_no_token_set_takes_no_push(self, client, capsys, aliyun, app_with):
        person, case = await _applied(client, capsys)
        running = await app_with(sms={"backend": "aliyun", "aliyun": AliyunSmsSettings(
            access_key_id=aliyun.access_key_id, access_key_secret=aliyun.access_key_secret,
            endpoint=aliyun.address, protocol="http")}, notify={"receipt_token": SecretStr("")})
        async with running.client() as http:
            answer = await http.post("/api/v1/sms/inbound", params={"token": ""},
                                     json=_aliyun_push(person["phone"], f"CX {case['receipt']}"))
        assert answer.status_code == 401
        assert _sent_to(aliyun, person["phone"]) == []

    async def test_replies_to_one_phone_are_limited(self, client, capsys, aliyun, inbound):
        person, case = await _applied(client, capsys)
        other, other_case = await _applied(client, capsys)
        running = await inbound(sms_replies_per_phone_per_hour=2)
        async with running.client() as http:
            for _ in range(4):
                answer = await http.post("/api/v1/sms/inbound", params={"token": RECEIPT_TOKEN},
                                         json=_aliyun_push(person["phone"], f"CX {case['receipt']}"))
                assert answer.status_code == 200    # the provider is told "taken" either way: no retries
            answer = await http.post("/api/v1/sms/inbound", params={"token": RECEIPT_TOKEN},
                                     json=_aliyun_push(other["phone"], f"CX {other_case['receipt']}"))
            assert answer.status_code == 200

        assert len(_sent_to(aliyun, person["phone"])) == 2
        assert len(_sent_to(aliyun, other["phone"])) == 1
