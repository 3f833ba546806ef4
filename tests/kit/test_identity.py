from datetime import datetime, timezone

import pytest

from backend.kit import clock
from backend.kit.identity import id_number_check_char, normalize_id_number, normalize_phone


def _with_check_char(first17: str) -> str:
    return first17 + id_number_check_char(first17)


def _code_of(value: str) -> str:
    with pytest.raises(ValueError) as raised:
        normalize_id_number(value)
    return str(raised.value)


class TestIdNumber:
    def test_a_valid_number_passes_and_a_lowercase_x_is_normalised(self):
        first17 = "11010519491231002"
        assert id_number_check_char(first17) == "X"
        assert normalize_id_number(first17 + "x") == first17 + "X"

    @pytest.mark.parametrize("wrong_last", list("0123456789"))
    def test_every_wrong_check_digit_is_refused(self, wrong_last):
        first17 = "15092119900101123"
        if id_number_check_char(first17) == wrong_last:
            return_value = normalize_id_number(first17 + wrong_last)
            assert return_value == first17 + wrong_last
        else:
            with pytest.raises(ValueError, match="field.id_number"):
                normalize_id_number(first17 + wrong_last)

    @pytest.mark.parametrize("value", ["15092119901301123X", "1509211990010112", "A50921199001011233",
                                       "150921" + "2999" + "0101" + "1233"])
    def test_impossible_dates_lengths_and_characters_are_refused(self, value):
        with pytest.raises(ValueError):
            normalize_id_number(value)


class TestIdNumberMistakesHaveTheirOwnCodes:
    def test_a_15_digit_number_is_the_old_format(self):
        assert _code_of("150921900101123") == "field.id_number_old_format"

    @pytest.mark.parametrize("first17", ["15092119901301123", "15092119900230123", "15092118991231123"])
    def test_a_birth_date_that_cannot_be(self, first17):
        # month 13, 30 February, before 1900: each with a matching check character, so only the date is wrong
        assert _code_of(_with_check_char(first17)) == "field.id_number_birth_date"

    def test_a_birth_date_after_today_by_the_business_clock(self):
        tomorrow = "150921" + "20300102" + "123"
        clock.freeze(datetime(2030, 1, 1, 12, tzinfo=timezone.utc))
        try:
            assert _code_of(_with_check_char(tomorrow)) == "field.id_number_birth_date"
            clock.freeze(datetime(2030, 1, 1, 16, 30, tzinfo=timezone.utc))   # 2 January 00:30 in the halls' zone
            assert normalize_id_number(_with_check_char(tomorrow)) == _with_check_char(tomorrow)
        finally:
            clock.unfreeze()

    def test_a_wrong_check_character(self):
        first17 = "15092119900101123"
        wrong = "0" if id_number_check_char(first17) != "0" else "1"
        assert _code_of(first17 + wrong) == "field.id_number_check"

    @pytest.mark.parametrize("value", ["1509211990010112", "A50921199001011233", "15092119900101123Y",
                                       "1509211990010112345"])
    def test_a_wrong_length_or_character_is_the_generic_code(self, value):
        assert _code_of(value) == "field.id_number"

    def test_full_width_digits_and_x_are_the_same_number(self):
        number = "11010519491231002X"
        wide = number.translate(str.maketrans("0123456789X", "０１２３４５６７８９ｘ"))
        assert normalize_id_number(wide) == number

    def test_digits_of_other_scripts_are_refused(self):
        # int() reads Arabic-Indic digits, so with \d these 17 and a right ASCII check character passed
        first17 = "15092119900101123"
        arabic_indic = first17.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
        assert _code_of(arabic_indic + id_number_check_char(first17)) == "field.id_number"


class TestPhone:
    @pytest.mark.parametrize("raw", ["13800001111", "+86 138 0000 1111", "0086-138-0000-1111"])
    def test_common_spellings(self, raw):
        assert normalize_phone(raw) == "13800001111"

    @pytest.mark.parametrize("raw", ["１３８００００１１１１", "＋86 138 0000 1111", "138\u30000000\u30001111",
                                     "138－0000－1111"])
    def test_full_width_spellings_are_the_same_phone(self, raw):
        assert normalize_phone(raw) == "13800001111"

    @pytest.mark.parametrize("raw", ["12800001111", "1380000111", "138000011112", "0474-1234567", "abc",
                                     "١٣٨٠٠٠٠١١١١", "138٠٠٠٠1111", "१३८००००११११"])
    def test_not_a_mainland_mobile(self, raw):
        with pytest.raises(ValueError):
            normalize_phone(raw)
