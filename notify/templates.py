"""The notification rules and templates of config/templates/notifications.toml (which event reaches
whom, with which words), and WeChat's rules for subscribe-message values, applied before sending:
a value WeChat would refuse (47003) is shortened by the template's rule, or the message is not sent."""
from __future__ import annotations

import logging
import re
import string
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from notify.sms import SmsTemplates

__all__ = ["EventRule", "NotificationTemplate", "WechatMessage", "NotificationRules", "TemplateDataError",
           "wechat_values", "load_rules"]

log = logging.getLogger("ehall.notify")


class TemplateDataError(ValueError):
    """A value breaks WeChat's rule for its key even after the template's shortening: never sent."""

    def __init__(self, key: str, rule: str):
        super().__init__(f"{key}: {rule}")
        self.key = key
        self.rule = rule


@dataclass(frozen=True)
class WechatMessage:
    template_id: str
    page: str | None
    data: dict[str, str]
    shorten: dict[str, str] = field(default_factory=dict)
    fallback: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NotificationTemplate:
    name: str
    urgent: bool
    title: dict[str, str]
    wechat: WechatMessage | None


@dataclass(frozen=True)
class EventRule:
    kind: str
    template: NotificationTemplate
    to: str
    extra: dict[str, dict[str, str]]    # values by language that the event adds (a case's step)


_logged_missing: set[tuple[str, str]] = set()


def _in_language(texts: dict[str, str], language: str, what: str) -> str:
    """The text in `language`, or the Chinese one; a missing translation is logged once per process."""
    if language in texts:
        return texts[language]
    if (what, language) not in _logged_missing:
        _logged_missing.add((what, language))
        log.warning("notification text missing, zh used", extra={"ehall": {"text": what, "language": language}})
    return texts["zh"]


def _fill(text: str, params: dict[str, object]) -> str:
    return string.Formatter().vformat(text, (), _Defaulting(params))


class _Defaulting(dict):
    # a value the event did not carry prints as empty rather than failing the whole message
    def __missing__(self, key: str) -> str:
        return ""


class NotificationRules:
    def __init__(self, rules: dict[str, EventRule], templates: dict[str, NotificationTemplate], sms: SmsTemplates):
        self._rules = rules
        self._templates = templates
        self.sms = sms

    @classmethod
    def load(cls, config_dir: Path) -> NotificationRules:
        with (config_dir / "templates" / "notifications.toml").open("rb") as handle:
            data = tomllib.load(handle)
        templates = {}
        for name, spec in data.get("templates", {}).items():
            wechat = spec.get("wechat")
            templates[name] = NotificationTemplate(
                name=name, urgent=bool(spec.get("urgent", False)), title=spec["title"],
                wechat=WechatMessage(template_id=wechat["template_id"], page=wechat.get("page"),
                                     data=wechat["data"], shorten=wechat.get("shorten", {}),
                                     fallback=wechat.get("fallback", {})) if wechat else None)
        rules = {kind: EventRule(kind=kind, template=templates[spec["template"]], to=spec["to"],
                                 extra={key: value for key, value in spec.items() if isinstance(value, dict)})
                 for kind, spec in data.get("events", {}).items()}
        return cls(rules, templates, SmsTemplates(config_dir / "templates" / "sms.toml"))

    def for_event(self, kind: str) -> EventRule | None:
        return self._rules.get(kind)

    def template(self, name: str) -> NotificationTemplate | None:
        return self._templates.get(name)

    def wechat_template_ids(self) -> set[str]:
        return {rule.template.wechat.template_id for rule in self._rules.values() if rule.template.wechat}

    def title(self, template: NotificationTemplate, language: str, params: dict[str, object]) -> str:
        return _fill(_in_language(template.title, language, f"{template.name}.title"), params)

    def body(self, template: NotificationTemplate, language: str, params: dict[str, object]) -> str:
        texts = self.sms.texts(template.name)
        return _fill(_in_language(texts, language, f"{template.name}.text"), params)

    def extra_values(self, rule: EventRule, language: str) -> dict[str, str]:
        return {key: _in_language(texts, language, f"{rule.kind}.{key}") for key, texts in rule.extra.items()}


@cache
def load_rules(config_dir: Path) -> NotificationRules:
    """One copy per process: the files are data that changes with a deployment, not at run time."""
    return NotificationRules.load(config_dir)


# --- WeChat's value rules, by the kind of key (thing3 is a thing) -----------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_CHINESE = re.compile(r"^[\u4e00-\u9fff]+$")
_DIGITS = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_LETTERS = re.compile(r"^[A-Za-z]+$")
_CHARACTER_STRING = re.compile(r"^[\x21-\x7e]+$")   # digits, letters, ASCII symbols
_PHONE = re.compile(r"^[0-9+\-]{1,17}$")
_TIME = re.compile(r"^(\d{4}年\d{1,2}月\d{1,2}日 ?)?(\d{1,2}:\d{2})?$|^\d{4}-\d{2}-\d{2}( \d{2}:\d{2})?$")
_AMOUNT = re.compile(r"^[¥$€£]?[0-9]{1,10}(\.[0-9]{1,2})?元?$")

# the key kind -> (most characters, what the value must look like)
_RULES: dict[str, tuple[int, re.Pattern[str] | None]] = {
    "thing": (20, None), "number": (32, _DIGITS), "letter": (32, _LETTERS),
    "character_string": (32, _CHARACTER_STRING), "phrase": (5, _CHINESE), "name": (20, None),
    "phone_number": (17, _PHONE), "car_number": (8, None), "amount": (13, _AMOUNT), "time": (40, None),
    "date": (40, None),
}


def _fits(kind: str, value: str) -> bool:
    if not value or _CONTROL.search(value):
        return False
    if kind == "name":   # ten Chinese characters, or twenty letters
        return len(value) <= (10 if _CHINESE.match(value) else 20)
    if kind in ("time", "date"):   # 24-hour forms; a range with "~"
        return all(_TIME.match(part.strip()) for part in value.split("~"))
    limit, shape = _RULES[kind]
    return len(value) <= limit and (shape is None or bool(shape.match(value)))


def wechat_values(message: WechatMessage, params: dict[str, object]) -> dict[str, str]:
    """The subscribe message's data, every value within WeChat's rule for its key; raises
    TemplateDataError for a value that cannot be made to fit."""
    data = {}
    for key, template in message.data.items():
        kind = key.rstrip("0123456789")
        if kind not in _RULES:
            raise TemplateDataError(key, "unknown_key_kind")
        value = _CONTROL.sub(" ", _fill(template, params)).strip()
        limit = _RULES[kind][0]
        if not _fits(kind, value) and key in message.shorten and len(value) > limit:
            mark = message.shorten[key]
            value = value[: limit - len(mark)].rstrip() + mark
        if not _fits(kind, value):
            if key not in message.fallback:
                raise TemplateDataError(key, f"{kind}_rule")
            value = message.fallback[key]
        data[key] = value
    return data
