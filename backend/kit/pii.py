"""Personal data at rest: AES-GCM with the key id in the ciphertext, an HMAC blind index for lookups,
and the masks every response and log line uses (PIPL art. 51, GB/T 35273-2020 6.3)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import re

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["PiiCipher", "sealed_length", "NAME_MAX_CHARS", "mask_phone", "mask_id_number", "mask_name", "redact_text", "reveal", "masked",
           "PHONE", "NAME", "ID_NUMBER"]


MAX_KEY_ID_LENGTH = 16


def sealed_length(max_chars: int) -> int:
    """The longest ciphertext of a value of up to `max_chars` characters (4 UTF-8 bytes each at most:
    an emoji or a rare CJK character), so that an encrypted column is sized for it: key id, colon,
    base64 of nonce (12) + text + GCM tag (16)."""
    return MAX_KEY_ID_LENGTH + 1 + 4 * math.ceil((12 + 4 * max_chars + 16) / 3)


class PiiCipher:
    """Encrypts with the active key; decrypts with whichever key id the ciphertext names (rotation)."""

    def __init__(self, keyring: dict[str, bytes], active_key_id: str, index_key: bytes):
        if active_key_id not in keyring:
            raise ValueError("the active PII key id is not in the keyring")
        if any(len(key_id) > MAX_KEY_ID_LENGTH for key_id in keyring):
            raise ValueError(f"PII key ids have at most {MAX_KEY_ID_LENGTH} characters")
        for key_id, key in keyring.items():
            if len(key) != 32:
                raise ValueError(f"PII key {key_id} must be 32 bytes (AES-256)")
        self._keys = {key_id: AESGCM(key) for key_id, key in keyring.items()}
        self._active = active_key_id
        self._index_key = index_key

    def encrypt(self, plaintext: str, *, purpose: str) -> str:
        """`purpose` ("citizen.phone") is bound as associated data: a value cannot be moved to another column."""
        nonce = os.urandom(12)
        sealed = self._keys[self._active].encrypt(nonce, plaintext.encode(), purpose.encode())
        return f"{self._active}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, *, purpose: str) -> str:
        key_id, _, encoded = token.partition(":")
        raw = base64.urlsafe_b64decode(encoded)
        return self._keys[key_id].decrypt(raw[:12], raw[12:], purpose.encode()).decode()

    def index(self, value: str, *, purpose: str) -> str:
        """Deterministic keyed hash for equality lookups; without the key it cannot be brute-forced offline."""
        message = f"{purpose}\x00{value}".encode()
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "*" * len(phone)


def mask_id_number(id_number: str | None) -> str | None:
    if not id_number:
        return id_number
    return id_number[:3] + "*" * (len(id_number) - 7) + id_number[-4:] if len(id_number) > 7 else "*" * len(id_number)


def mask_name(name: str | None) -> str | None:
    if not name:
        return name
    return name[0] + "*" * max(1, len(name) - 1)


# [0-9], not \d: \d takes any script's digits. Full-width digits are folded first (they are the same
# number); separators between a phone's 3-4-4 groups are masked across, as people write them.
_PHONE_IN_TEXT = re.compile(r"(?<![0-9])(1[3-9][0-9])[- ]?([0-9]{4})[- ]?([0-9]{4})(?![0-9])")
_ID_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])([0-9]{3})([0-9]{11})([0-9]{3}[0-9Xx])(?![0-9A-Za-z])")
_FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")
_PERCENT_ESCAPES = re.compile(r"(?:%[0-9A-Fa-f]{2})+")


def _decode_percent_escapes(text: str) -> str:
    """A URL path may spell a phone as %31%33%38...: read the escapes (runs that are not UTF-8 stay)."""
    def decode(match: re.Match[str]) -> str:
        try:
            return bytes.fromhex(match.group().replace("%", "")).decode()
        except UnicodeDecodeError:
            return match.group()
    return _PERCENT_ESCAPES.sub(decode, text)


def redact_text(text: str) -> str:
    """Mask anything that looks like a mainland mobile number or an 18-character ID number, however
    it is written: percent-escaped, in full-width digits, or with dashes or spaces in a phone."""
    text = _decode_percent_escapes(text).translate(_FULL_WIDTH_DIGITS)
    text = _ID_IN_TEXT.sub(lambda m: m.group(1) + "*" * 11 + m.group(3), text)
    return _PHONE_IN_TEXT.sub(lambda m: m.group(1) + "****" + m.group(3), text)


# What each encrypted column holds. The purpose is bound into the ciphertext (a phone cannot be
# copied into the name column) and names the mask a response uses.
PHONE = "citizen.phone"
NAME_MAX_CHARS = 40                  # a person's name; Mongolian names written in Chinese run long
NAME = "citizen.name"
ID_NUMBER = "citizen.id_number"

_MASKS = {PHONE: mask_phone, NAME: mask_name, ID_NUMBER: mask_id_number}


def reveal(cipher: PiiCipher, sealed: str | None, purpose: str) -> str | None:
    """The clear value of an encrypted column (None stays None). Only for the owner or an audited read."""
    return None if sealed is None else cipher.decrypt(sealed, purpose=purpose)


def masked(cipher: PiiCipher, sealed: str | None, purpose: str) -> str | None:
    """The value as every response and log line shows it: 138****1234, 张*, 150***********123X."""
    return _MASKS[purpose](reveal(cipher, sealed, purpose))
