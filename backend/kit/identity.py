"""Checks for the identifiers people type: mainland mobile numbers, resident ID numbers (GB 11643-1999)
and unified social credit codes of organisations (GB 32100-2015); and the check character our own
numbers carry (ISO 7064 MOD 11-2), so that a mistyped number is told apart from an unknown one."""
from __future__ import annotations

import re
from datetime import date

from backend.kit import clock

__all__ = ["normalize_phone", "normalize_id_number", "id_number_check_char", "fold_full_width",
           "mod11_2_check_char", "normalize_uscc", "uscc_check_char"]

# A Chinese input method types full-width forms (１３９, ＋, Ｘ, －) and the ideographic space: they
# are the same number, so they are folded to ASCII before any check, and one phone is one key (of
# rate limits, of accounts). Any other digit (Arabic-Indic, Devanagari...) is refused: `\d` would take
# it, which is why the patterns below say [0-9].
_FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: ord(" ")}

_PHONE = re.compile(r"1[3-9][0-9]{9}")
_ID = re.compile(r"[0-9]{17}[0-9X]")
_OLD_ID = re.compile(r"[0-9]{15}")
_DIGITS = re.compile(r"[0-9]+")
_MOD11_2_CHARS = "0123456789X"
# 统一社会信用代码: registration authority and kind (2), division code (6), organisation code (9), check (1),
# over 31 characters: the digits and the capitals without I, O, Z, S, V (read as 1, 0, 2, 5, U)
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC = re.compile(f"[{_USCC_CHARS}]{{18}}")
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))   # 1, 3, 9, 27, 19, 26, 16, ...
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


def mod11_2_check_char(digits: str) -> str:
    """ISO 7064 MOD 11-2 check character ("0"-"9" or "X") of a digit string of any length. It catches
    every single-digit change and every swap of two adjacent digits, so a number with a wrong check
    character was mistyped rather than never issued."""
    if not _DIGITS.fullmatch(digits):
        raise ValueError("mod11_2_check_char takes ASCII digits only")
    remainder = 0
    for digit in digits:   # Horner's rule: each digit's weight is 2^(its distance from the check) mod 11
        remainder = (remainder + int(digit)) * 2 % 11
    return _MOD11_2_CHARS[(12 - remainder) % 11]


def id_number_check_char(first17: str) -> str:
    """The 18th character of a resident ID number (GB 11643-1999 uses ISO 7064 MOD 11-2)."""
    if len(first17) != 17:
        raise ValueError("an ID number's check character is over its first 17 digits")
    return mod11_2_check_char(first17)


def uscc_check_char(first17: str) -> str:
    """The 18th character of a unified social credit code (GB 32100-2015: MOD 31-3)."""
    if len(first17) != 17 or any(ch not in _USCC_CHARS for ch in first17):
        raise ValueError("a unified social credit code's check character is over 17 of its characters")
    total = sum(_USCC_CHARS.index(ch) * weight for ch, weight in zip(first17, _USCC_WEIGHTS))
    return _USCC_CHARS[(31 - total % 31) % 31]


def normalize_uscc(value: str) -> str:
    """18-character unified social credit code (统一社会信用代码) of a company, institution or other
    organisation, upper-cased, with full-width forms folded: ValueError("field.uscc") for a wrong
    length or a character the code never uses, ValueError("field.uscc_check") for a wrong check character."""
    code = fold_full_width(value).strip().upper()
    if not _USCC.fullmatch(code):
        raise ValueError("field.uscc")
    if uscc_check_char(code[:17]) != code[17]:
        raise ValueError("field.uscc_check")
    return code


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
