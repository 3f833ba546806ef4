"""Checks for the identifiers people type: mainland mobile numbers and resident ID numbers (GB 11643-1999)."""
from __future__ import annotations

import re
from datetime import date

from backend.kit import clock

__all__ = ["normalize_phone", "normalize_id_number", "id_number_check_char", "fold_full_width"]

# A Chinese input method types full-width forms (１３９, ＋, Ｘ, －) and the ideographic space: they
# are the same number, so they are folded to ASCII before any check, and one phone is one key (of
# rate limits, of accounts). Any other digit (Arabic-Indic, Devanagari...) is refused: `\d` would take
# it, which is why the patterns below say [0-9].
_FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: ord(" ")}

_PHONE = re.compile(r"1[3-9][0-9]{9}")
_ID = re.compile(r"[0-9]{17}[0-9X]")
_OLD_ID = re.compile(r"[0-9]{15}")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_EARLIEST_BIRTH_YEAR = 1900


def fold_full_width(value: str) -> str:
    """Full-width ASCII forms (U+FF01-FF5E) and the ideographic space as their ASCII characters."""
    return value.translate(_FULL_WIDTH)


def normalize_phone(value: str) -> str:
    """11-digit mainland mobile number; accepts +86/0086 prefixes, spaces, dashes and full-width
    digits. ValueError("field.phone") otherwise."""
    digits = re.sub(r"[\s-]", "", fold_full_width(value))
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits = digits[len(prefix):]
    if not _PHONE.fullmatch(digits):
        raise ValueError("field.phone")
    return digits


def id_number_check_char(first17: str) -> str:
    return _CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def normalize_id_number(value: str) -> str:
    """18-character resident ID number with a possible birth date and its check character (ISO 7064
    MOD 11-2). Each way of being wrong has its own code, so the person is told what to fix."""
    number = fold_full_width(value).strip().upper()
    if _OLD_ID.fullmatch(number):
        raise ValueError("field.id_number_old_format")  # 15-digit cards were replaced by 2004
    if not _ID.fullmatch(number):
        raise ValueError("field.id_number")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise ValueError("field.id_number_birth_date") from None
    if born.year < _EARLIEST_BIRTH_YEAR or born > clock.today():
        raise ValueError("field.id_number_birth_date")
    if id_number_check_char(number[:17]) != number[17]:
        raise ValueError("field.id_number_check")
    return number
