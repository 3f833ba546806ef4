"""Application forms (申报表单) as data: what an item's form asks, and the check of what an applicant sent.

A form is a list of field definitions (config/catalog/forms.toml, stored per item in ServiceItem.form),
so that the app, the mini-program and the window render it from the catalogue and the cases domain
(办件) checks a declaration against the same definition. `check_form_definition` refuses a definition
the loader should not store; `check_form` checks one declaration against a stored definition.

A field definition: {name, type, label{zh,mn,en}, required, help?{zh,mn,en}} and, by type,
  text, textarea   max_length
  integer          min, max
  decimal          min, max, places (default 2)
  date             not_after_today?, not_before_today? (an ISO date, YYYY-MM-DD)
  choice,
  multi_choice     choices: [{value, label{zh,mn,en}}]
  boolean, phone   nothing more (phone: a mainland mobile number, personal data: the cases domain seals it)
"""
from __future__ import annotations

import re
from datetime import date
from decimal import Context, Decimal, InvalidOperation
from typing import Any

from backend.kit import clock
from backend.kit.errors import AppError, FieldError
from backend.kit.http import MAX_FIELD_ERRORS, capped_field_errors, field_path
from backend.kit.i18n import LANGUAGES
from backend.kit.identity import fold_full_width, normalize_phone

__all__ = ["check_form", "check_form_definition", "FormDefinitionError", "FIELD_TYPES", "FORM_ERROR_CODES"]

FIELD_TYPES = ("text", "textarea", "integer", "decimal", "date", "choice", "multi_choice", "boolean", "phone")

# the codes a declaration's fields can be refused with (config/messages/errors.toml); the field.* ones
# mean what they mean for any request body, so a client shows them the same way
FORM_ERROR_CODES = ("form_field_unknown", "form_field_required", "field.type", "field.format", "field.too_long",
                    "field.too_many", "field.range", "field.choice", "field.date", "field.decimal_places",
                    "field.phone")

_COMMON_KEYS = {"name", "type", "label", "required", "help"}
_TYPE_KEYS: dict[str, set[str]] = {
    "text": {"max_length"}, "textarea": {"max_length"},
    "integer": {"min", "max"}, "decimal": {"min", "max", "places"},
    "date": {"not_after_today", "not_before_today"},
    "choice": {"choices"}, "multi_choice": {"choices"},
    "boolean": set(), "phone": set(),
}
_REQUIRED_KEYS: dict[str, set[str]] = {
    "text": {"max_length"}, "textarea": {"max_length"}, "integer": {"min", "max"}, "decimal": {"min", "max"},
    "choice": {"choices"}, "multi_choice": {"choices"},
}
# a field name is a key of the declaration's JSON and of the cases domain's stored answers
_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
_CHOICE_VALUE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_DEFAULT_PLACES = 2
_MAX_PLACES = 6
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")
# longer than any number or phone a person types: refused before it is parsed at all
_MAX_NUMBER_CHARS = 40
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# room for every digit of a number of _MAX_NUMBER_CHARS with _MAX_PLACES more (the default context has 28)
_WIDE = Context(prec=_MAX_NUMBER_CHARS + _MAX_PLACES + 2)


class FormDefinitionError(ValueError):
    """A form definition the catalogue must not hold (the loader names the form in its CatalogueError)."""


def _check_labels(labels: Any, where: str) -> None:
    if not isinstance(labels, dict) or set(labels) != set(LANGUAGES) \
            or not all(isinstance(text, str) and text.strip() for text in labels.values()):
        raise FormDefinitionError(f"{where}: give zh, mn and en (and nothing else), none of them empty")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_form_definition(fields: Any) -> None:
    """Refuse a form definition that check_form could not apply or an app could not render."""
    if not isinstance(fields, list):
        raise FormDefinitionError("fields are a list")
    names: set[str] = set()
    for position, field in enumerate(fields):
        if not isinstance(field, dict):
            raise FormDefinitionError(f"field {position + 1} is not a table")
        name = field.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise FormDefinitionError(f"field {name!r}: a name is lowercase ascii letters, digits and '_', "
                                      "starting with a letter, at most 32")
        if name in names:
            raise FormDefinitionError(f"field {name}: duplicate field name")
        names.add(name)
        kind = field.get("type")
        if kind not in FIELD_TYPES:
            raise FormDefinitionError(f"field {name}: type {kind!r} is not one of {', '.join(FIELD_TYPES)}")
        unknown = set(field) - _COMMON_KEYS - _TYPE_KEYS[kind]
        if unknown:
            raise FormDefinitionError(f"field {name}: {kind} takes no {', '.join(sorted(unknown))}")
        missing = {"name", "type", "label", "required"} | _REQUIRED_KEYS.get(kind, set())
        missing -= set(field)
        if missing:
            raise FormDefinitionError(f"field {name}: give {', '.join(sorted(missing))}")
        if not isinstance(field["required"], bool):
            raise FormDefinitionError(f"field {name}: required is true or false")
        _check_labels(field["label"], f"field {name}: label")
        if "help" in field:
            _check_labels(field["help"], f"field {name}: help")
        _check_limits(field, name, kind)


def _check_limits(field: dict[str, Any], name: str, kind: str) -> None:
    if "max_length" in field and not (isinstance(field["max_length"], int) and 0 < field["max_length"] <= 10_000):
        raise FormDefinitionError(f"field {name}: max_length is a whole number from 1 to 10000")
    if kind == "integer" and not all(isinstance(field[k], int) and not isinstance(field[k], bool)
                                     for k in ("min", "max")):
        raise FormDefinitionError(f"field {name}: min and max of an integer are whole numbers")
    if kind == "decimal":
        if not all(_is_number(field[k]) for k in ("min", "max")):
            raise FormDefinitionError(f"field {name}: min and max are numbers")
        places = field.get("places", _DEFAULT_PLACES)
        if not (isinstance(places, int) and not isinstance(places, bool) and 0 <= places <= _MAX_PLACES):
            raise FormDefinitionError(f"field {name}: places is a whole number from 0 to {_MAX_PLACES}")
    if kind in ("integer", "decimal") and field["min"] > field["max"]:
        raise FormDefinitionError(f"field {name}: min is above max")
    if kind == "date":
        if not all(isinstance(field.get(k, False), bool) for k in ("not_after_today", "not_before_today")):
            raise FormDefinitionError(f"field {name}: not_after_today and not_before_today are true or false")
    if kind in ("choice", "multi_choice"):
        choices = field["choices"]
        if not isinstance(choices, list) or not choices:
            raise FormDefinitionError(f"field {name}: choices is a list of at least one {{value, label}}")
        values = []
        for choice in choices:
            if not isinstance(choice, dict) or set(choice) != {"value", "label"}:
                raise FormDefinitionError(f"field {name}: a choice is {{value, label}}")
            if not isinstance(choice["value"], str) or not _CHOICE_VALUE.fullmatch(choice["value"]):
                raise FormDefinitionError(f"field {name}: choice value {choice['value']!r} is not 1-32 ascii "
                                          "letters, digits, '_' or '-'")
            _check_labels(choice["label"], f"field {name}: choice {choice['value']}: label")
            values.append(choice["value"])
        if len(set(values)) != len(values):
            raise FormDefinitionError(f"field {name}: choice values are not unique")


class _Refused(Exception):
    """One field's value refused: the FieldError code and its parameters."""

    def __init__(self, code: str, **params: Any):
        super().__init__(code)
        self.code = code
        self.params = params


def _is_empty(value: Any) -> bool:
    """Not given: what a rendered form sends for a field left blank."""
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def _text(field: dict[str, Any], value: Any) -> str:
    if not isinstance(value, str):
        raise _Refused("field.type")
    if len(value) > field["max_length"]:
        raise _Refused("field.too_long", max_length=field["max_length"])
    if _CONTROL.search(value):
        raise _Refused("field.format")
    return value


def _in_range(field: dict[str, Any], number: int | Decimal) -> None:
    low, high = field["min"], field["max"]
    if isinstance(number, Decimal):
        # a bound of the TOML (0.01) is a float, which a Decimal compares with exactly (0.0100000000000000002...)
        low, high = Decimal(repr(low)), Decimal(repr(high))
    if number < low:
        raise _Refused("field.range", bound=f"≥ {field['min']}")
    if number > high:
        raise _Refused("field.range", bound=f"≤ {field['max']}")


def _integer(field: dict[str, Any], value: Any) -> int:
    if isinstance(value, float) and value.is_integer():    # 12.0: a client that writes numbers as floats
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Refused("field.type")
    _in_range(field, value)
    return value


def _decimal(field: dict[str, Any], value: Any) -> str:
    """JSON carries no exact decimal: a string ("1200.50") or a number, kept as a string with the
    field's places, so that an amount is never rounded on its way to the case."""
    if isinstance(value, float):
        value = repr(value)                                 # 0.1, not 0.1000000000000000055511
    elif isinstance(value, int) and not isinstance(value, bool):
        value = str(value) if abs(value) < 10 ** _MAX_NUMBER_CHARS else "x"
    if not isinstance(value, str):
        raise _Refused("field.type")
    text = fold_full_width(value).strip()
    if len(text) > _MAX_NUMBER_CHARS or not _DECIMAL.fullmatch(text):
        raise _Refused("field.format")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise _Refused("field.format") from None
    places = field.get("places", _DEFAULT_PLACES)
    # 12.50 has two places but is 12.5: only digits that would be lost count
    exact = number.quantize(Decimal(1).scaleb(-places), context=_WIDE)
    if exact != number:
        raise _Refused("field.decimal_places", places=places)
    _in_range(field, number)
    return f"{exact.copy_abs() if exact == 0 else exact:f}"   # -0.00 is 0.00


def _date(field: dict[str, Any], value: Any) -> str:
    if not isinstance(value, str):
        raise _Refused("field.type")
    if not _ISO_DATE.fullmatch(value):
        raise _Refused("field.date")
    try:
        day = date.fromisoformat(value)
    except ValueError:                                      # 2026-02-30
        raise _Refused("field.date") from None
    today = clock.today()
    if field.get("not_after_today") and day > today:
        raise _Refused("field.range", bound=f"≤ {today.isoformat()}")
    if field.get("not_before_today") and day < today:
        raise _Refused("field.range", bound=f"≥ {today.isoformat()}")
    return day.isoformat()


def _allowed(field: dict[str, Any]) -> list[str]:
    return [choice["value"] for choice in field["choices"]]


def _choice(field: dict[str, Any], value: Any) -> str:
    allowed = _allowed(field)
    if value not in allowed:
        raise _Refused("field.choice", allowed=", ".join(allowed))
    return value


def _multi_choice(field: dict[str, Any], value: Any) -> list[str]:
    if not isinstance(value, list):
        raise _Refused("field.type")
    allowed = _allowed(field)
    if len(value) > len(allowed):
        raise _Refused("field.too_many", max_length=len(allowed))
    if not all(isinstance(v, str) and v in allowed for v in value):
        raise _Refused("field.choice", allowed=", ".join(allowed))
    return list(dict.fromkeys(value))                       # a value ticked twice is ticked once


def _boolean(field: dict[str, Any], value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Refused("field.type")
    return value


def _phone(field: dict[str, Any], value: Any) -> str:
    if not isinstance(value, str):
        raise _Refused("field.type")
    if len(value) > _MAX_NUMBER_CHARS:
        raise _Refused("field.phone")
    try:
        return normalize_phone(value)
    except ValueError:
        raise _Refused("field.phone") from None


_CLEANERS = {"text": _text, "textarea": _text, "integer": _integer, "decimal": _decimal, "date": _date,
             "choice": _choice, "multi_choice": _multi_choice, "boolean": _boolean, "phone": _phone}


def check_form(fields: list[dict[str, Any]], data: object) -> dict[str, object]:
    """The declaration `data` checked against the form `fields` (a stored definition): the cleaned values
    by field name (blank optional fields left out), or AppError("invalid_form", 422) listing every
    problem at once (the first MAX_FIELD_ERRORS of them, `more_errors` counting the rest), each as
    `form.<name>`, so that the applicant fixes the form in one go on a weak network."""
    if not isinstance(data, dict):
        raise AppError("invalid_form", 422, errors=[FieldError(field="form", code="field.type")])
    errors: list[FieldError] = []
    total = 0

    def refuse(name: object, code: str, params: dict[str, Any]) -> None:
        nonlocal total
        total += 1
        # past the cap a problem is only counted: a 10,000-key object costs no path, no FieldError
        if len(errors) < MAX_FIELD_ERRORS:
            errors.append(FieldError(field=field_path(("form", name)), code=code, params=params))

    cleaned: dict[str, object] = {}
    for field in fields:                                    # in the form's order, as the applicant sees it
        name, value = field["name"], data.get(field["name"])
        if _is_empty(value):
            if field["required"]:
                refuse(name, "form_field_required", {})
            continue
        try:
            cleaned[name] = _CLEANERS[field["type"]](field, value)
        except _Refused as refused:
            refuse(name, refused.code, refused.params)
    known = {field["name"] for field in fields}
    for key in data:
        if key not in known:
            refuse(key, "form_field_unknown", {})
    if total:
        raise AppError("invalid_form", 422, **capped_field_errors(errors, total))
    return cleaned
