from datetime import datetime, timezone

import pytest

from backend.kit import clock
from backend.kit.identity import (
    id_number_check_char,
    mod11_2_check_char,
    normalize_id_number,
    normalize_phone,
    normalize_uscc,
    uscc_check_char,
)


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


def _uscc_code_of(value: str) -> str:
    with pytest.raises(ValueError) as raised:
        normalize_uscc(value)
    return str(raised.value)


# Codes printed in public records, each with the source its check character was compared with:
# Huawei Technologies Co., Ltd. (zh.wikipedia.org, 華為: 機構代碼) and Shenzhen Tencent Computer Systems
# Co., Ltd. (its business-licence record, check-china.com). Their last characters were not put into
# the function: it reproduces them.
PUBLISHED_USCC = ["914403001922038216", "91440300708461136T"]


class TestUnifiedSocialCreditCode:
    @pytest.mark.parametrize("code", PUBLISHED_USCC)
    def test_the_check_character_of_published_codes_is_reproduced(self, code):
        assert uscc_check_char(code[:17]) == code[17]
        assert normalize_uscc(code) == code

    def test_weights_are_the_powers_of_3_modulo_31_of_the_standard(self):
        # a single 1 in one position leaves that position's weight as the sum: check = 31 - weight
        charset = "0123456789ABCDEFGHJKLMNPQRTUWXY"
        weights = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
        for position, weight in enumerate(weights):
            first17 = "0" * position + "1" + "0" * (16 - position)
            assert uscc_check_char(first17) == charset[31 - weight]

    def test_a_sum_divisible_by_31_has_check_character_0_not_31(self):
        assert uscc_check_char("0" * 17) == "0"

    def test_lowercase_spaces_and_full_width_forms_are_the_same_code(self):
        wide = "９１４４０３００７０８４６１１３６ｔ"
        assert normalize_uscc(f"  {wide}\u3000") == "91440300708461136T"
        assert normalize_uscc("91440300708461136t") == "91440300708461136T"

    def test_every_wrong_check_character_is_its_own_code(self):
        code = PUBLISHED_USCC[0]
        for wrong in "0123456789ABCDEFGHJKLMNPQRTUWXY":
            if wrong != code[17]:
                assert _uscc_code_of(code[:17] + wrong) == "field.uscc_check"

    @pytest.mark.parametrize("value", ["91440300192203821", "9144030019220382166", "",
                                       "91440300I92203821O", "9144030019220382ZS", "91440300-19220382-6",
                                       "٩١٤٤٠٣٠٠١٩٢٢٠٣٨٢١٦"])
    def test_a_wrong_length_or_a_character_codes_never_use_is_the_shape_code(self, value):
        assert _uscc_code_of(value) == "field.uscc"


class TestMod11_2:
    def test_it_is_the_check_character_of_resident_id_numbers(self):
        for first17 in ("11010519491231002", "15092119900101123", "15092120300102123"):
            assert mod11_2_check_char(first17) == id_number_check_char(first17)

    @pytest.mark.parametrize("digits,check", [("000000021825009", "7"), ("000000021694233", "X")])
    def test_published_iso_7064_examples(self, digits, check):
        # ORCID iDs carry ISO 7064 MOD 11-2: 0000-0002-1825-0097, 0000-0002-1694-233X (orcid.org)
        assert mod11_2_check_char(digits) == check

    def test_any_length_is_checked(self):
        assert mod11_2_check_char("0") == "1"
        assert mod11_2_check_char("1" * 40) in "0123456789X"

    @pytest.mark.parametrize("value", ["", "12a4", "１２３", "١٢٣"])
    def test_only_ascii_digits_are_taken(self, value):
        with pytest.raises(ValueError):
            mod11_2_check_char(value)

    def test_every_single_digit_change_of_a_receipt_number_is_caught(self):
        number = "15092120260417035"   # 受理编号 shape: hall, date, serial
        number += mod11_2_check_char(number)
        for position in range(len(number) - 1):
            for digit in "0123456789":
                if digit != number[position]:
                    typed = number[:position] + digit + number[position + 1:]
                    assert mod11_2_check_char(typed[:-1]) != typed[-1], typed

    def test_every_adjacent_transposition_of_a_receipt_number_is_caught(self):
        number = "15092120260417035"
        number += mod11_2_check_char(number)
        swaps = 0
        for position in range(len(number) - 1):
            a, b = number[position], number[position + 1]
            if a == b or "X" in (a, b):
                continue   # equal characters swap to the same number; an X among the digits is no number
            typed = number[:position] + b + a + number[position + 2:]
            assert mod11_2_check_char(typed[:-1]) != typed[-1], typed
            swaps += 1
        assert swaps >= 14
