"""The FAQ, the canned answers and consulting's own texts (config/consult/) say everything in zh, mn
(traditional script) and en, under ids that are unique."""
import tomllib

import pytest

from backend.settings import PROJECT_ROOT

CONSULT = PROJECT_ROOT / "config" / "consult"


def _mongolian(text: str) -> bool:
    return any("\u1800" <= ch <= "\u18af" for ch in text)


@pytest.mark.parametrize("name,entries,fields", [("faq.toml", "faq", ("question", "answer", "keywords")),
                                                 ("canned.toml", "canned", ("title", "text"))])
def test_every_entry_speaks_three_languages_under_a_unique_id(name, entries, fields):
    data = tomllib.loads((CONSULT / name).read_text())[entries]
    assert data and len({entry["id"] for entry in data}) == len(data)
    for entry in data:
        for field in fields:
            assert {"zh", "mn", "en"} <= set(entry[field]), (entry["id"], field)
            mn = entry[field]["mn"]
            assert _mongolian(" ".join(mn) if isinstance(mn, list) else mn), (entry["id"], field)


def test_consultings_own_texts_speak_three_languages():
    for name, texts in tomllib.loads((CONSULT / "texts.toml").read_text()).items():
        assert {"zh", "mn", "en"} <= set(texts) and _mongolian(texts["mn"]), name
