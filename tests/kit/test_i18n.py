import re
import tomllib

import pytest

from backend.kit.i18n import negotiate_language
from backend.settings import PROJECT_ROOT

MESSAGES = tomllib.loads((PROJECT_ROOT / "config" / "messages" / "errors.toml").read_text())


@pytest.mark.parametrize("header,expected", [
    (None, "zh"), ("", "zh"), ("en-US,en;q=0.9", "en"), ("mn", "mn"), ("mn-Mong-CN;q=0.8,en;q=0.9", "en"),
    ("fr-FR, de;q=0.5", "zh"), ("zh-CN", "zh"), ("en;q=0, mn;q=0.1", "mn"), ("en;q=abc", "zh"),
])
def test_accept_language(header, expected):
    assert negotiate_language(header) == expected


def test_every_error_code_raised_in_the_code_has_a_message_in_all_three_languages():
    sources = [p for d in ("backend", "miniprogram_api", "notify") for p in (PROJECT_ROOT / d).rglob("*.py")]
    raised = set()
    for path in sources:
        text = path.read_text()
        raised |= set(re.findall(r'AppError\(\s*"([a-z_.]+)"', text))
        raised |= set(re.findall(r'ValueError\("(field\.[a-z_]+)"\)', text))
        raised |= set(re.findall(r'"(field\.[a-z_]+)"', text))
        raised |= set(re.findall(r'"(form_field_[a-z_]+)"', text))    # application forms' field codes
        raised |= set(re.findall(r'\(\s*"(wechat_[a-z_]+|rate_limited)"\s*,\s*\d{3}\s*\)', text))
    assert raised, "the scan found nothing: the pattern is wrong"
    missing = {code for code in raised if code not in MESSAGES}
    assert not missing
    for code, texts in MESSAGES.items():
        assert {"zh", "mn", "en"} <= set(texts), code
        mongolian = [ch for ch in texts["mn"] if "\u1800" <= ch <= "\u18af"]
        assert mongolian, f"{code}: the mn message is not in Mongolian script"
