"""受理编号: the receipt number every application gets, printable and readable over the phone.

The hall's administrative code, the business date and the hall's sequence of that day (the format is
in settings, `cases.receipt_format`), then one ISO 7064 MOD 11-2 check character, the same scheme as
the resident ID number: every single wrong digit and every swap of two neighbours changes it. So a
number typed wrong is told apart ("check the number") from a number nobody issued, without a lookup.
"""
from __future__ import annotations

import re
from datetime import date

from tortoise.expressions import F

from backend.cases.models import ReceiptCounter
from backend.kit.errors import AppError, FieldError
from backend.kit.identity import fold_full_width, mod11_2_check_char
from backend.kit.uow import UnitOfWork

__all__ = ["next_receipt", "parse_receipt"]

_RECEIPT = re.compile(r"[0-9]{8,30}[0-9X]", re.ASCII)
# a check character X swapped with the digit before it: a typing mistake like any other swap
_SWAPPED_X = re.compile(r"[0-9]{8,30}X[0-9]", re.ASCII)


async def next_receipt(fmt: str, *, hall: str, day: date, uow: UnitOfWork) -> str:
    """The next receipt of `hall` on `day`. The counter row is taken under its lock (a conditional
    insert, then an increment), so two declarations at once get two numbers, and a declaration that
    rolls back gives its number back."""
    await ReceiptCounter.bulk_create([ReceiptCounter(hall_code=hall, day=day)], ignore_conflicts=True,
                                     using_db=uow.tx)
    await ReceiptCounter.filter(hall_code=hall, day=day).using_db(uow.tx).update(last_seq=F("last_seq") + 1)
    counter = await ReceiptCounter.get(hall_code=hall, day=day).using_db(uow.tx)
    body = fmt.format(hall=hall, date=day, seq=counter.last_seq)
    return body + mod11_2_check_char(body)


def parse_receipt(text: str, *, field: str = "receipt") -> str:
    """A receipt as a person types it (spaces, dashes, full-width digits, a small x) in its one form;
    422 when its shape is wrong or its check character does not match (a typing mistake)."""
    receipt = re.sub(r"[\s\-]", "", fold_full_width(text)).upper()
    if _SWAPPED_X.fullmatch(receipt):
        raise AppError("receipt_mistyped", 422, errors=[FieldError(field=field, code="field.receipt_check")])
    if not _RECEIPT.fullmatch(receipt):
        raise AppError("validation_failed", 422, errors=[FieldError(field=field, code="field.receipt")])
    if mod11_2_check_char(receipt[:-1]) != receipt[-1]:
        raise AppError("receipt_mistyped", 422, errors=[FieldError(field=field, code="field.receipt_check")])
    return receipt
