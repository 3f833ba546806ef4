import base64
import os

import pytest
from cryptography.exceptions import InvalidTag

from backend.kit.pii import PiiCipher, mask_id_number, mask_name, mask_phone, redact_text


def _key() -> bytes:
    return os.urandom(32)


class TestCipher:
    def test_round_trip_carries_the_key_id_and_never_the_plaintext(self):
        cipher = PiiCipher({"k1": _key()}, "k1", b"index-key")
        sealed = cipher.encrypt("13800001111", purpose="citizen.phone")
        assert sealed.startswith("k1:")
        assert "13800001111" not in sealed
        assert base64.urlsafe_b64decode(sealed[3:]).find(b"13800001111") == -1
        assert cipher.decrypt(sealed, purpose="citizen.phone") == "13800001111"

    def test_same_value_encrypts_differently_each_time(self):
        cipher = PiiCipher({"k1": _key()}, "k1", b"index-key")
        assert cipher.encrypt("张三", purpose="citizen.name") != cipher.encrypt("张三", purpose="citizen.name")

    def test_rotated_keyring_still_reads_old_ciphertexts_and_writes_with_the_new_key(self):
        old, new = _key(), _key()
        sealed_before = PiiCipher({"k1": old}, "k1", b"i").encrypt("150921199001011233", purpose="citizen.id_number")
        rotated = PiiCipher({"k2": new, "k1": old}, "k2", b"i")
        assert rotated.decrypt(sealed_before, purpose="citizen.id_number") == "150921199001011233"
        assert rotated.encrypt("x", purpose="p").startswith("k2:")

    def test_a_value_cannot_be_moved_to_another_column(self):
        cipher = PiiCipher({"k1": _key()}, "k1", b"index-key")
        sealed = cipher.encrypt("13800001111", purpose="citizen.phone")
        with pytest.raises(InvalidTag):
            cipher.decrypt(sealed, purpose="citizen.name")

    def test_blind_index_is_stable_keyed_and_purpose_bound(self):
        a = PiiCipher({"k1": _key()}, "k1", b"index-key-a")
        b = PiiCipher({"k1": _key()}, "k1", b"index-key-b")
        assert a.index("13800001111", purpose="citizen.phone") == a.index("13800001111", purpose="citizen.phone")
        assert a.index("13800001111", purpose="citizen.phone") != b.index("13800001111", purpose="citizen.phone")
        assert a.index("13800001111", purpose="citizen.phone") != a.index("13800001111", purpose="other")

    def test_short_keys_are_refused(self):
        with pytest.raises(ValueError):
            PiiCipher({"k1": b"short"}, "k1", b"i")


class TestMasks:
    def test_phone(self):
        assert mask_phone("13812341234") == "138****1234"

    def test_id_number(self):
        assert mask_id_number("15092119900101123X") == "150***********123X"

    def test_name_keeps_only_the_family_name(self):
        assert mask_name("张三丰") == "张**"
        assert mask_name("王五") == "王*"

    def test_free_text_is_redacted(self):
        text = "call 13812341234 about 15092119900101123X, order 123456789012345678901"
        redacted = redact_text(text)
        assert "13812341234" not in redacted and "138****1234" in redacted
        assert "15092119900101123X" not in redacted and "150***********123X" in redacted
        assert "123456789012345678901" in redacted  # longer digit runs are not ID numbers


class TestRedactionReadsHowAPhoneIsWritten:
    @pytest.mark.parametrize("written", [
        "/api/v1/x/%31%33%38%31%32%33%34%31%32%33%34",   # percent-escaped, as a URL path carries it
        "call 138-1234-1234", "call 138 1234 1234",         # grouped the way people write it
        "call １３８１２３４１２３４",                           # full-width digits
    ])
    def test_a_phone_is_masked_however_it_is_written(self, written):
        redacted = redact_text(written)
        assert "138****1234" in redacted
        assert "12341234" not in redacted.replace("-", "").replace(" ", "")

    def test_a_percent_escaped_id_number_is_masked(self):
        escaped = "".join(f"%{ord(c):02X}" for c in "15092119900101123X")
        assert "150***********123X" in redact_text("/a/" + escaped)

    def test_escapes_that_are_not_text_are_left_alone(self):
        assert redact_text("/a/%FF%FE and 50%") == "/a/%FF%FE and 50%"

    def test_digits_of_other_scripts_are_not_taken_for_ascii_ones(self):
        # \d would have let an Arabic-Indic digit stand next to a phone and hide its boundary
        assert redact_text("x١13812341234") == "x١138****1234"
