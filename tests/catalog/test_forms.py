"""Application forms (申报表单): a declaration is checked against its item's form, every problem is
named at once as form.<name>, and the answer stays small whatever was sent."""
import tomllib
from datetime import datetime

import pytest

from backend.catalog.forms import (
    FORM_ERROR_CODES, FormDefinitionError, check_form, check_form_definition,
)
from backend.catalog.service import check_application_form
from backend.kit import clock
from backend.kit.errors import AppError
from backend.kit.http import MAX_FIELD_ERRORS
from backend.settings import PROJECT_ROOT


def _label(zh: str) -> dict[str, str]:
    return {"zh": zh, "mn": "ᠲᠡᠰᠲ", "en": zh}


FORM = [
    {"name": "purpose", "type": "textarea", "label": _label("用途"), "required": False, "max_length": 20},
    {"name": "business_name", "type": "text", "label": _label("名称"), "required": True, "max_length": 10},
    {"name": "head_count", "type": "integer", "label": _label("数量"), "required": True, "min": 1, "max": 100000},
    {"name": "capital", "type": "decimal", "label": _label("资金"), "required": False, "min": 0,
     "max": 100000000, "places": 2},
    {"name": "planned_date", "type": "date", "label": _label("日期"), "required": False, "not_before_today": True},
    {"name": "born_on", "type": "date", "label": _label("出生"), "required": False, "not_after_today": True},
    {"name": "species", "type": "choice", "label": _label("畜种"), "required": True,
     "choices": [{"value": "sheep", "label": _label("羊")}, {"value": "cattle", "label": _label("牛")}]},
    {"name": "uses", "type": "multi_choice", "label": _label("用途"), "required": False,
     "choices": [{"value": "a", "label": _label("甲")}, {"value": "b", "label": _label("乙")}]},
    {"name": "insured", "type": "boolean", "label": _label("保险"), "required": False},
    {"name": "contact_phone", "type": "phone", "label": _label("电话"), "required": False},
]
VALID = {"business_name": "牧场", "head_count": 120, "species": "sheep"}


def _problems(data: object, fields: list | None = None) -> AppError:
    with pytest.raises(AppError) as refused:
        check_form(FORM if fields is None else fields, data)
    assert (refused.value.code, refused.value.status) == ("invalid_form", 422)
    return refused.value


def _codes(data: object) -> dict[str, tuple[str, dict]]:
    return {e.field: (e.code, e.params) for e in _problems(data).errors}


@pytest.fixture
def today_is_2026_05_20():
    clock.freeze(datetime.fromisoformat("2026-05-20T10:00:00+08:00"))
    yield
    clock.unfreeze()


class TestCheckForm:
    def test_a_complete_declaration_comes_back_cleaned_and_blank_optional_fields_left_out(self, today_is_2026_05_20):
        cleaned = check_form(FORM, {**VALID, "purpose": "  ", "capital": "1200.5", "planned_date": "2026-05-20",
                                    "uses": ["b", "b"], "insured": False,
                                    "contact_phone": "+86 138-0000-1234"})
        assert cleaned == {"business_name": "牧场", "head_count": 120, "species": "sheep", "capital": "1200.50",
                           "planned_date": "2026-05-20", "uses": ["b"], "insured": False,
                           "contact_phone": "13800001234"}

    def test_a_missing_required_field_is_named(self):
        assert _codes({"head_count": 1, "species": "sheep"}) == {"form.business_name": ("form_field_required", {})}

    def test_a_blank_string_does_not_fill_a_required_field(self):
        assert _codes({**VALID, "business_name": "   "})["form.business_name"][0] == "form_field_required"

    def test_an_unknown_field_is_refused(self):
        assert _codes({**VALID, "owner_id_number": "x"}) == {"form.owner_id_number": ("form_field_unknown", {})}

    def test_text_longer_than_its_limit_names_the_limit(self):
        assert _codes({**VALID, "business_name": "牧" * 11}) == {
            "form.business_name": ("field.too_long", {"max_length": 10})}

    def test_text_with_control_characters_is_refused(self):
        assert _codes({**VALID, "business_name": "牧\x00场"})["form.business_name"][0] == "field.format"

    @pytest.mark.parametrize("value", ["120", True, 1.5, [1]])
    def test_an_integer_must_be_a_json_integer(self, value):
        assert _codes({**VALID, "head_count": value})["form.head_count"][0] == "field.type"

    def test_an_integer_written_as_a_whole_float_is_taken(self):
        assert check_form(FORM, {**VALID, "head_count": 12.0})["head_count"] == 12

    @pytest.mark.parametrize("value,bound", [(0, "≥ 1"), (100001, "≤ 100000")])
    def test_an_integer_out_of_range_names_the_bound(self, value, bound):
        assert _codes({**VALID, "head_count": value})["form.head_count"] == ("field.range", {"bound": bound})

    @pytest.mark.parametrize("value,cleaned", [("1200", "1200.00"), (99.9, "99.90"), ("１２.５", "12.50"),
                                               ("12.50", "12.50"), ("-0", "0.00"), (7, "7.00")])
    def test_a_decimal_is_kept_as_a_string_with_the_fields_places(self, value, cleaned):
        assert check_form(FORM, {**VALID, "capital": value})["capital"] == cleaned

    @pytest.mark.parametrize("value", ["0.01", "0.30", 0.3, "0.2"])
    def test_a_decimal_at_or_between_fractional_bounds_is_in_range(self, value):
        # 0.01 and 0.3 as floats are a little above and below those numbers: the bounds are the written ones
        field = {"name": "area", "type": "decimal", "label": _label("面积"), "required": True, "min": 0.01,
                 "max": 0.3, "places": 2}
        assert check_form([field], {"area": value})["area"] in ("0.01", "0.30", "0.20")

    def test_a_decimal_with_more_places_than_the_field_is_refused_not_rounded(self):
        assert _codes({**VALID, "capital": "12.345"})["form.capital"] == ("field.decimal_places", {"places": 2})

    @pytest.mark.parametrize("value,code", [
        ("1e3", "field.format"), ("NaN", "field.format"), ("1" * 41, "field.format"), ("12,5", "field.format"),
        (False, "field.type"), ({}, "field.type"), ("-1", "field.range"), (10 ** 60, "field.format")])
    def test_a_decimal_that_is_not_a_plain_number_in_range_is_refused(self, value, code):
        assert _codes({**VALID, "capital": value})["form.capital"][0] == code

    @pytest.mark.parametrize("value,code", [("2026-02-30", "field.date"), ("2026/06/01", "field.date"),
                                            ("20260601", "field.date"), (20260601, "field.type")])
    def test_a_date_is_a_real_iso_date(self, value, code, today_is_2026_05_20):
        assert _codes({**VALID, "planned_date": value})["form.planned_date"][0] == code

    def test_a_planned_date_may_not_be_in_the_past(self, today_is_2026_05_20):
        assert _codes({**VALID, "planned_date": "2026-05-19"})["form.planned_date"] == (
            "field.range", {"bound": "≥ 2026-05-20"})

    def test_a_birth_date_may_not_be_in_the_future(self, today_is_2026_05_20):
        assert _codes({**VALID, "born_on": "2026-05-21"})["form.born_on"] == ("field.range", {"bound": "≤ 2026-05-20"})
        assert check_form(FORM, {**VALID, "born_on": "2026-05-20"})["born_on"] == "2026-05-20"

    @pytest.mark.parametrize("value", ["goat", 1, ["sheep"]])
    def test_a_choice_must_be_one_of_the_values(self, value):
        assert _codes({**VALID, "species": value})["form.species"] == ("field.choice", {"allowed": "sheep, cattle"})

    @pytest.mark.parametrize("value,code", [("a", "field.type"), (["a", "c"], "field.choice"),
                                            (["a", "b", "a"], "field.too_many"), ([1], "field.choice")])
    def test_a_multi_choice_is_a_list_of_the_values(self, value, code):
        assert _codes({**VALID, "uses": value})["form.uses"][0] == code

    @pytest.mark.parametrize("value", ["true", 1])
    def test_a_boolean_is_true_or_false(self, value):
        assert _codes({**VALID, "insured": value})["form.insured"][0] == "field.type"

    @pytest.mark.parametrize("value,code", [("1380000123", "field.phone"), ("0474-8126000", "field.phone"),
                                            ("1" * 1000, "field.phone"), (13800001234, "field.type")])
    def test_a_phone_is_a_mainland_mobile_number(self, value, code):
        assert _codes({**VALID, "contact_phone": value})["form.contact_phone"][0] == code

    def test_all_problems_are_reported_at_once(self, today_is_2026_05_20):
        problems = _codes({"business_name": "牧" * 11, "head_count": 0, "species": "goat", "capital": "x",
                           "planned_date": "2026-13-01", "contact_phone": "12", "uses": "a", "insured": "no",
                           "extra": 1})
        assert {field: code for field, (code, _) in problems.items()} == {
            "form.business_name": "field.too_long", "form.head_count": "field.range", "form.species": "field.choice",
            "form.capital": "field.format", "form.planned_date": "field.date", "form.contact_phone": "field.phone",
            "form.uses": "field.type", "form.insured": "field.type", "form.extra": "form_field_unknown"}

    @pytest.mark.parametrize("data", [None, [VALID], "business_name=牧场", 3])
    def test_data_that_is_not_a_json_object_is_one_error(self, data):
        error = _problems(data)
        assert [(e.field, e.code) for e in error.errors] == [("form", "field.type")]

    def test_a_10000_key_object_answers_a_small_error(self):
        error = _problems({**{f"k{i}": "x" * 100 for i in range(10_000)}, "x" * 5000: 1})
        assert len(error.errors) == MAX_FIELD_ERRORS
        assert error.params["more_errors"] == 10_001 + 3 - MAX_FIELD_ERRORS   # and the three required ones
        assert all(len(e.field) <= 125 for e in error.errors)

    def test_an_empty_form_takes_only_an_empty_object(self):
        assert check_form([], {}) == {}
        assert [e.code for e in _problems({"a": 1}, fields=[]).errors] == ["form_field_unknown"]

    def test_every_code_a_form_can_give_has_a_message_in_three_languages(self):
        messages = tomllib.loads((PROJECT_ROOT / "config" / "messages" / "errors.toml").read_text())
        for code in (*FORM_ERROR_CODES, "invalid_form"):
            assert {"zh", "mn", "en"} <= set(messages[code]), code


class TestCheckFormDefinition:
    def test_the_test_form_is_a_valid_definition(self):
        check_form_definition(FORM)

    @pytest.mark.parametrize("change,message", [
        ({"type": "email"}, "type 'email'"),
        ({"name": "Business Name"}, "a name is lowercase ascii"),
        ({"label": {"zh": "名称", "en": "Name"}}, "label: give zh, mn and en"),
        ({"label": {"zh": "名称", "mn": "", "en": "Name"}}, "none of them empty"),
        ({"help": {"zh": "说明"}}, "help: give zh, mn and en"),
        ({"max_length": None}, "max_length is a whole number"),
        ({"min": 3}, "text takes no min"),
        ({"required": "yes"}, "required is true or false"),
    ])
    def test_a_bad_text_field_is_refused(self, change, message):
        field = {**FORM[1], **change}
        with pytest.raises(FormDefinitionError, match=message):
            check_form_definition([field])

    def test_a_text_field_without_a_limit_is_refused(self):
        field = {k: v for k, v in FORM[1].items() if k != "max_length"}
        with pytest.raises(FormDefinitionError, match="give max_length"):
            check_form_definition([field])

    def test_duplicate_field_names_are_refused(self):
        with pytest.raises(FormDefinitionError, match="duplicate field name"):
            check_form_definition([FORM[1], FORM[1]])

    @pytest.mark.parametrize("choices,message", [
        ([{"value": "sheep", "label": _label("羊")}, {"value": "sheep", "label": _label("绵羊")}], "not unique"),
        ([{"value": "羊", "label": _label("羊")}], "ascii"),
        ([{"value": "sheep", "label": {"zh": "羊", "en": "Sheep"}}], "label: give zh, mn and en"),
        ([], "at least one"),
    ])
    def test_bad_choices_are_refused(self, choices, message):
        with pytest.raises(FormDefinitionError, match=message):
            check_form_definition([{**FORM[6], "choices": choices}])

    def test_a_range_upside_down_is_refused(self):
        with pytest.raises(FormDefinitionError, match="min is above max"):
            check_form_definition([{**FORM[2], "min": 10, "max": 1}])


class TestCheckApplicationForm:
    """The cases domain checks a declaration against the item's form as the catalogue stores it."""

    async def test_a_herders_declaration_is_checked_against_the_quarantine_form(self, server, today_is_2026_05_20):
        cleaned = await check_application_form(server.rt, item_code="nmyj.QR006", data={
            "species": "camel", "head_count": 12, "destination": "四子王旗屠宰场", "planned_date": "2026-05-21"})
        assert cleaned == {"species": "camel", "head_count": 12, "destination": "四子王旗屠宰场",
                           "planned_date": "2026-05-21"}
        with pytest.raises(AppError) as refused:
            await check_application_form(server.rt, item_code="nmyj.QR006", data={"species": "goat"})
        assert {(e.field, e.code) for e in refused.value.errors} == {
            ("form.species", "field.choice"), ("form.head_count", "form_field_required"),
            ("form.destination", "form_field_required"), ("form.planned_date", "form_field_required")}

    async def test_an_unknown_item_is_a_404(self, server):
        with pytest.raises(AppError) as refused:
            await check_application_form(server.rt, item_code="nope.XK999", data={})
        assert (refused.value.code, refused.value.status) == ("service_item_not_found", 404)
