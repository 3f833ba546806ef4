import pytest

from backend.kit.identity import id_number_check_char, normalize_id_number, normalize_phone


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


class TestPhone:
    @pytest.mark.parametrize("raw", ["13800001111", "+86 138 0000 1111", "0086-138-0000-1111"])
    def test_common_spellings(self, raw):
        assert normalize_phone(raw) == "13800001111"

    @pytest.mark.parametrize("raw", ["12800001111", "1380000111", "138000011112", "0474-1234567", "abc"])
    def test_not_a_mainland_mobile(self, raw):
        with pytest.raises(ValueError):
            normalize_phone(raw)
