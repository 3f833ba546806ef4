"""FAQ entries and canned answers (config/consult/*.toml): data read once per process."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = ["FaqEntry", "CannedAnswer", "load_faq", "load_canned", "matching_faq"]


@dataclass(frozen=True)
class FaqEntry:
    id: str
    department: str | None
    service_item: str | None
    keywords: tuple[str, ...]          # every language's, lowercased
    question: dict[str, str]
    answer: dict[str, str]


@dataclass(frozen=True)
class CannedAnswer:
    id: str
    department: str | None
    title: dict[str, str]
    text: dict[str, str]


@cache
def load_faq(config_dir: Path) -> tuple[FaqEntry, ...]:
    with (config_dir / "consult" / "faq.toml").open("rb") as handle:
        data = tomllib.load(handle)
    return tuple(FaqEntry(id=entry["id"], department=entry.get("department"), service_item=entry.get("service_item"),
                          keywords=tuple(word.lower() for words in entry.get("keywords", {}).values() for word in words),
                          question=entry["question"], answer=entry["answer"])
                 for entry in data.get("faq", []))


@cache
def load_canned(config_dir: Path) -> tuple[CannedAnswer, ...]:
    with (config_dir / "consult" / "canned.toml").open("rb") as handle:
        data = tomllib.load(handle)
    return tuple(CannedAnswer(id=entry["id"], department=entry.get("department"), title=entry["title"],
                              text=entry["text"])
                 for entry in data.get("canned", []))


def matching_faq(entries: tuple[FaqEntry, ...], *, text: str | None, department: str | None,
                 service_item: str | None) -> list[FaqEntry]:
    """Entries for the department (and item) asked about, or for every department; with `text`, only
    those whose keywords it contains. The item's own entries come first."""
    wanted = (text or "").lower()
    found = [entry for entry in entries
             if (department is None or entry.department in (None, department))
             and (service_item is None or entry.service_item in (None, service_item))
             and (not wanted or any(word in wanted for word in entry.keywords))]
    return sorted(found, key=lambda entry: (entry.service_item is None, entry.department is None))
