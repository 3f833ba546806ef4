"""受理编号: the receipt number's format comes from settings, its sequence counts per hall and day, and its
check character tells a mistyped number (every single wrong digit, every swap of two neighbours) from
one nobody was issued."""
import random
from datetime import date

import pytest

from backend.cases.receipts import next_receipt, parse_receipt
from backend.kit.errors import AppError
from backend.kit.identity import mod11_2_check_char
from backend.kit.uow import unit_of_work


def _made_up_hall() -> str:
    # a village-level code in 159xxx, which no hall of the catalogue uses: no other test counts on it
    return "159" + "".join(random.choice("0123456789") for _ in range(9))


async def _next(server, fmt: str, hall: str, day: date) -> str:
    async with unit_of_work(server.rt) as uow:
        return await next_receipt(fmt, hall=hall, day=day, uow=uow)


def _refusal(text: str) -> AppError:
    with pytest.raises(AppError) as refused:
        parse_receipt(text)
    return refused.value


class TestNextReceipt:
    async def test_the_default_format_is_hall_date_sequence_and_check_character(self, server):
        hall, day = _made_up_hall(), date(2026, 12, 3)
        fmt = server.settings.cases.receipt_format

        first, second = await _next(server, fmt, hall, day), await _next(server, fmt, hall, day)

        assert first == f"{hall}261203" + "00001" + mod11_2_check_char(f"{hall}26120300001")
        assert second[:-1] == f"{hall}26120300002"
        assert parse_receipt(first) == first and parse_receipt(second) == second

    async def test_another_format_from_settings_is_followed(self, server):
        hall, day = _made_up_hall(), date(2027, 1, 31)
        receipt = await _next(server, "{date:%Y%m%d}{hall}{seq:07d}", hall, day)
        assert receipt[:-1] == f"20270131{hall}0000001"
        assert receipt[-1] == mod11_2_check_char(receipt[:-1])

    async def test_each_hall_and_each_day_counts_from_one(self, server):
        hall, other_hall, day = _made_up_hall(), _made_up_hall(), date(2026, 12, 3)
        fmt = "{hall}{date:%y%m%d}{seq:05d}"
        await _next(server, fmt, hall, day)

        assert (await _next(server, fmt, other_hall, day))[-6:-1] == "00001"
        assert (await _next(server, fmt, hall, date(2026, 12, 4)))[-6:-1] == "00001"
        assert (await _next(server, fmt, hall, day))[-6:-1] == "00002"

    async def test_a_declaration_that_rolls_back_gives_its_number_back(self, server):
        hall, day, fmt = _made_up_hall(), date(2026, 12, 3), "{hall}{date:%y%m%d}{seq:05d}"
        with pytest.raises(RuntimeError):
            async with unit_of_work(server.rt) as uow:
                taken = await next_receipt(fmt, hall=hall, day=day, uow=uow)
                raise RuntimeError("the declaration failed after taking its number")
        assert (await _next(server, fmt, hall, day)) == taken


class TestParseReceipt:
    RECEIPT = "15092126120300017" + mod11_2_check_char("15092126120300017")

    @pytest.mark.parametrize("typed", [
        "150921 261203 00017 {check}", "150921-261203-00017-{check}", " 150921261203 00017{check} ",
        "１５０９２１２６１２０３０００１７{check}", "１５０９２１－２６１２０３　０００１７{check}",
    ])
    def test_a_receipt_as_people_type_it_is_read_in_its_one_form(self, typed):
        assert parse_receipt(typed.format(check=self.RECEIPT[-1])) == self.RECEIPT

    def test_a_lower_case_x_check_character_is_read_as_x(self):
        body = next(b for b in (f"1509212612030{n:04d}" for n in range(100)) if mod11_2_check_char(b) == "X")
        assert parse_receipt(body + "x") == body + "X"

    @pytest.mark.parametrize("typed", ["", "1234567", "15092A26120300017X", "150921.261203", "X15092126120300017",
                                       "1" * 40, "١٥٠٩٢١٢٦١٢٠٣٠٠٠١٧٦"])
    def test_something_that_is_not_a_receipt_is_a_validation_error(self, typed):
        refused = _refusal(typed)
        assert (refused.code, refused.status) == ("validation_failed", 422)
        assert [(e.field, e.code) for e in refused.errors] == [("receipt", "field.receipt")]


def _single_digit_changes(receipt: str):
    for position, char in enumerate(receipt):
        choices = "0123456789X" if position == len(receipt) - 1 else "0123456789"
        for other in choices:
            if other != char:
                yield receipt[:position] + other + receipt[position + 1:]


def _adjacent_swaps(receipt: str):
    for position in range(len(receipt) - 1):
        if receipt[position] != receipt[position + 1]:
            yield receipt[:position] + receipt[position + 1] + receipt[position] + receipt[position + 2:]


class TestMistypedReceipt:
    async def test_every_single_digit_change_and_every_swap_of_neighbours_is_told_mistyped(self, server):
        hall, day, fmt = _made_up_hall(), date(2026, 12, 3), server.settings.cases.receipt_format
        # receipts of one hall and day until both kinds of check character are among them: digits and X
        receipts: list[str] = []
        while sum(r[-1] == "X" for r in receipts) < 1 or sum(r[-1] != "X" for r in receipts) < 2:
            receipts.append(await _next(server, fmt, hall, day))
        chosen = [r for r in receipts if r[-1] == "X"][:1] + [r for r in receipts if r[-1] != "X"][:2]
        chosen.append("15092126120300017" + mod11_2_check_char("15092126120300017"))

        tried = 0
        for receipt in chosen:
            assert parse_receipt(receipt) == receipt
            for typo in [*_single_digit_changes(receipt), *_adjacent_swaps(receipt)]:
                refused = _refusal(typo)
                assert (refused.code, refused.status) == ("receipt_mistyped", 422), (receipt, typo, refused.code)
                assert [(e.field, e.code) for e in refused.errors] == [("receipt", "field.receipt_check")]
                tried += 1
        # at least every other digit in every place, and every other check character
        assert tried >= sum((len(r) - 1) * 9 + 10 for r in chosen)
