"""Language of a request (zh default, mn, en) and the message catalogue in config/messages/."""
from __future__ import annotations

import tomllib
from pathlib import Path

__all__ = ["MessageCatalogue", "negotiate_language", "DEFAULT_LANGUAGE", "LANGUAGES"]

LANGUAGES = ("zh", "mn", "en")
DEFAULT_LANGUAGE = "zh"


def negotiate_language(accept_language: str | None, supported: tuple[str, ...] = LANGUAGES) -> str:
    """Pick the best supported language from an Accept-Language header (RFC 9110 q-values)."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in supported and quality > 0:
            ranked.append((-quality, position, primary))
    return sorted(ranked)[0][2] if ranked else DEFAULT_LANGUAGE


class MessageCatalogue:
    """Messages by stable code, each in zh, mn and en, with {placeholders}."""

    def __init__(self, messages: dict[str, dict[str, str]]):
        self._messages = messages

    @classmethod
    def load(cls, path: Path) -> "MessageCatalogue":
        with path.open("rb") as handle:
            return cls(tomllib.load(handle))

    def codes(self) -> set[str]:
        return set(self._messages)

    def render(self, code: str, language: str, **params: object) -> str:
        entry = self._messages.get(code) or self._messages["internal_error"]
        template = entry.get(language) or entry[DEFAULT_LANGUAGE]
        try:
            return template.format(**params)
        except (KeyError, IndexError, ValueError):
            return template
