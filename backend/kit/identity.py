"""Checks for the identifiers people type: mainland mobile numbers and resident ID numbers (GB 11643-1999)."""
from __future__ import annotations

import re
from datetime import date

__all__ = ["normalize_phone", "normalize_id_number", "id_number_check_char"]

_PHONE = re.compile(r"^1[3-9]\d{9}$")
_ID = re.compile(r"^\d{17}[\dX]$")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"


def normalize_phone(value: str) -> str:
    """11-digit mainland mobile number; accepts +86/0086 prefixes, spaces and dashes. ValueError otherwise."""
    digits = re.sub(r"[\s-]", "", value)
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits = digits[len(prefix):]
    if not _PHONE.match(digits):
        raise ValueError("field.phone")
    return digits


def id_number_check_char(first17: str) -> str:
    return _CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def normalize_id_number(value: str) -> str:
    """18-character resident ID number with a valid birth date and check character (ISO 7064 MOD 11-2)."""
    number = value.strip().upper()
    if not _ID.match(number):
        raise ValueError("field.id_number")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise ValueError("field.id_number") from None
    if born.year < 1900 or born > date.today():
        raise ValueError("field.id_number")
    if id_number_check_char(number[:17]) != number[17]:
        raise ValueError("field.id_number")
    return number
