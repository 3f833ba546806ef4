"""`ehall seed`: the catalogue files load in one transaction, reload idempotently, and contradictions
are refused before anything is written."""
import asyncio
import re
import shutil

import pytest

from backend.catalog.loader import (
    REVIEW_KINDS, CatalogueError, check_catalogue, item_forms, load_catalogue, load_catalogue_data,
    read_catalogue_files,
)
from backend.catalog.models import CatalogRevision, Hall, HallItem, ServiceItem, Topic
from tests.rows import bump_catalogue_revision, make_hall


async def test_reloading_changes_nothing_but_the_revision(database, settings):
    directory = settings.resolved_config_dir() / "catalog"
    data = read_catalogue_files(directory)
    # the catalogue's own rows: other tests add halls and items of their own (tests/rows.py)
    hall_codes, item_codes = [h["code"] for h in data["halls"]], [i["code"] for i in data["items"]]
    halls = await Hall.filter(code__in=hall_codes).count()
    items = await ServiceItem.filter(code__in=item_codes).count()
    all_halls, all_items = await Hall.all().count(), await ServiceItem.all().count()
    before = (await CatalogRevision.get(id=1)).revision
    counts = await load_catalogue(directory)
    assert counts["halls"] == halls and counts["items"] == items
    assert await Hall.all().count() == all_halls and await ServiceItem.all().count() == all_items
    assert (await CatalogRevision.get(id=1)).revision == before + 1


async def test_a_parent_that_does_not_exist_is_refused_and_nothing_is_written(database, settings, tmp_path):
    source = settings.resolved_config_dir() / "catalog"
    broken = tmp_path / "catalog"
    shutil.copytree(source, broken)
    halls = (broken / "halls.toml").read_text()
    (broken / "halls.toml").write_text(halls + '\n[[hall]]\ncode = "150999"\nname = "不存在的大厅"\n'
                                       'level = "county"\nparent = "159900"\n')
    before = (await CatalogRevision.get(id=1)).revision
    with pytest.raises(CatalogueError, match="parent 159900"):
        await load_catalogue(broken)
    assert not await Hall.filter(code="150999").exists()
    assert (await CatalogRevision.get(id=1)).revision == before


def test_the_files_hold_what_the_centre_reported(settings):
    data = read_catalogue_files(settings.resolved_config_dir() / "catalog")
    levels = [h["level"] for h in data["halls"]]
    assert levels.count("city") == 1 and levels.count("county") == 11
    assert "township" in levels and "village" in levels
    assert sum(d["hall"] == "150900" for d in data["departments"]) == 27


async def test_after_a_reload_no_kept_answer_of_the_old_catalogue_is_served(app_with, settings, tmp_path):
    """Answers are kept under the catalogue revision: `ehall seed` bumps it, so a process with a long
    answer cache serves the new catalogue as soon as it has read the new revision (here at every request)."""
    running = await app_with(catalog={"cache_seconds": 600, "revision_check_seconds": 0})
    village = "150929100201"
    source = settings.resolved_config_dir() / "catalog"
    changed = tmp_path / "catalog"
    shutil.copytree(source, changed)
    text = (changed / "halls.toml").read_text()
    start = text.index(f'code = "{village}"')
    end = text.find("\n[[", start)
    end = len(text) if end == -1 else end
    block = re.sub(r'(?m)^hours_note = .*\n?', "", text[start:end])
    block = block.replace(f'code = "{village}"', f'code = "{village}"\nhours_note = "每周三代办员坐班（测试）"', 1)
    (changed / "halls.toml").write_text(text[:start] + block + text[end:])
    try:
        async with running.client() as http:
            before = (await http.get(f"/api/v1/halls/{village}")).json()["hours_note"]
            tree_before = (await http.get("/api/v1/halls")).headers["etag"]
            await load_catalogue(changed)
            assert (await http.get(f"/api/v1/halls/{village}")).json()["hours_note"] == "每周三代办员坐班（测试）"
            assert before != "每周三代办员坐班（测试）"
            # an answer whose content did not change keeps its ETag: phones need not download it again
            assert (await http.get("/api/v1/halls")).headers["etag"] == tree_before
    finally:
        await load_catalogue(source)


async def test_a_process_reads_the_revision_once_per_check_interval(app_with):
    """Between two reads of the revision a process serves its kept answers without a query; a reload
    shows once the interval has passed."""
    running = await app_with(catalog={"cache_seconds": 600, "revision_check_seconds": 3})
    hall = await make_hall()
    async with running.client() as http:
        first = (await http.get(f"/api/v1/halls/{hall.code}")).json()["name"]
        read_at = asyncio.get_running_loop().time()
        await Hall.filter(code=hall.code).update(name=first + "（新）")
        await bump_catalogue_revision()
        assert (await http.get(f"/api/v1/halls/{hall.code}")).json()["name"] == first
        await asyncio.sleep(max(0.0, read_at + 3.2 - asyncio.get_running_loop().time()))
        assert (await http.get(f"/api/v1/halls/{hall.code}")).json()["name"] == first + "（新）"


def _real(settings) -> dict:
    return read_catalogue_files(settings.resolved_config_dir() / "catalog")


def _hall(data: dict, code: str) -> dict:
    return next(h for h in data["halls"] if h["code"] == code)


def _item(data: dict, code: str) -> dict:
    return next(i for i in data["items"] if i["code"] == code)


class TestCheckCatalogue:
    """References in the keys added for app developers are checked before anything is written."""

    def test_the_catalogue_as_it_is_passes(self, settings):
        check_catalogue(_real(settings))

    def test_without_topics_toml_there_are_no_topics(self, settings, tmp_path):
        directory = tmp_path / "catalog"
        shutil.copytree(settings.resolved_config_dir() / "catalog", directory)
        (directory / "topics.toml").unlink(missing_ok=True)
        data = read_catalogue_files(directory)
        assert data["topics"] == []
        for item in data["items"]:                             # items name topics once the data lands
            item.pop("topics", None)
        check_catalogue(data)

    @pytest.mark.parametrize("change,message", [
        (lambda d: _hall(d, "150921106").setdefault("accepts", []).append("nope.XK999"), "accepts item nope.XK999"),
        (lambda d: _item(d, "gaj.QR001").setdefault("topics", []).append("no-such-topic"), "topic no-such-topic"),
        (lambda d: _item(d, "gaj.QR001").update(audience=["personal", "herders"]), "audience"),
        (lambda d: _hall(d, "150900").update(hours_workday=["8:30-12:00"]), "HH:MM-HH:MM"),
        (lambda d: _hall(d, "150900").update(latitude=41.0, longitude=None), "both latitude and longitude"),
        (lambda d: _hall(d, "150900").update(latitude=410.0, longitude=113.1), "out of range"),
        (lambda d: d["topics"].extend([{"code": "x y", "name": "坏"}]), "topic 'x y'"),
        (lambda d: _hall(d, "150921106").update(agency=_hall(d, "150921106202")["agency"]),
         "only village agency points"),
        (lambda d: _hall(d, "150921106202")["agency"].update(visit_weekdays=[2, 8]), "ISO weekdays"),
        (lambda d: _hall(d, "150921106202")["agency"].update(visit_weekdays=[]), "ISO weekdays"),
        (lambda d: _hall(d, "150921106202")["agency"].update(visit_hours=["9:00-12:00"]), "HH:MM-HH:MM"),
        (lambda d: _hall(d, "150921106202")["agency"].update(phone="call the village head"), "not a phone"),
        (lambda d: _hall(d, "150921106202")["agency"].pop("agent_name"), "give agent_name"),
    ])
    def test_a_contradiction_is_refused(self, settings, change, message):
        data = _real(settings)
        change(data)
        with pytest.raises(CatalogueError, match=re.escape(message)):
            check_catalogue(data)


async def test_the_keys_for_app_developers_are_loaded_and_shown(client, settings):
    """Coordinates, accepts, conditions, steps, legal basis, location, phone, audience, topics and the
    Mongolian name, as the enriched catalogue files give them (added here to today's files)."""
    data = _real(settings)
    data["topics"].append({"code": "test-hukou", "name": "测试户籍", "name_mn": "ᠭᠡᠷ ᠪᠦᠯᠢ", "name_en": "Hukou"})
    item = _item(data, "gaj.QR001")
    item.update(name_mn="ᠪᠡᠶ᠎ᠡ ᠶᠢᠨ ᠦᠨᠡᠮᠯᠡᠯ ᠲᠡᠰᠲ", conditions=["本市户籍居民"], steps=["受理", "采集", "制证"],
                legal_basis=["《中华人民共和国居民身份证法》"], location="一楼A区 01-03号窗口", phone="0474-8126000",
                audience=["personal"], topics=[*item.get("topics", []), "test-hukou"])
    _hall(data, "150900").update(latitude=41.0336, longitude=113.1145)
    _hall(data, "150921106").setdefault("accepts", []).append("150921-ga.QR001")
    _hall(data, "150921106202").setdefault("accepts", []).append("150921-ga.QR001")
    try:
        await load_catalogue_data(data)
        await load_catalogue_data(data)                        # a reload replaces the links, never doubles them
        detail = (await client.get("/api/v1/service-items/gaj.QR001")).json()
        assert detail["name_mn"] == "ᠪᠡᠶ᠎ᠡ ᠶᠢᠨ ᠦᠨᠡᠮᠯᠡᠯ ᠲᠡᠰᠲ"
        assert detail["conditions"] == ["本市户籍居民"] and detail["steps"] == ["受理", "采集", "制证"]
        assert detail["legal_basis"] == ["《中华人民共和国居民身份证法》"]
        assert (detail["location"], detail["phone"]) == ("一楼A区 01-03号窗口", "0474-8126000")
        assert detail["audience"] == ["personal"] and "test-hukou" in detail["topics"]
        topics = (await client.get("/api/v1/topics")).json()["items"]
        assert {"code": "test-hukou", "name": "测试户籍", "name_mn": "ᠭᠡᠷ ᠪᠦᠯᠢ", "name_en": "Hukou"} in topics
        by_topic = (await client.get("/api/v1/service-items", params={"topic": "test-hukou"})).json()
        assert [i["code"] for i in by_topic["items"]] == ["gaj.QR001"]
        by_name = (await client.get("/api/v1/service-items", params={"q": "ᠦᠨᠡᠮᠯᠡᠯ ᠲᠡᠰᠲ"})).json()
        assert by_name["items"][0]["code"] == "gaj.QR001"
        city = (await client.get("/api/v1/halls/150900")).json()
        assert (city["latitude"], city["longitude"]) == (41.0336, 113.1145)
        township = (await client.get("/api/v1/halls/150921106")).json()["accepted_items"]
        assert ("150921-ga.QR001", "accept") in {(i["code"], i["mode"]) for i in township}
        village = (await client.get("/api/v1/halls/150921106202")).json()["accepted_items"]
        assert ("150921-ga.QR001", "agent") in {(i["code"], i["mode"]) for i in village}
        accepted = (await client.get("/api/v1/service-items", params={"hall": "150921106"})).json()
        assert "150921-ga.QR001" in {i["code"] for i in accepted["items"]}
        assert await HallItem.filter(hall_id="150921106", item_id="150921-ga.QR001").count() == 1
    finally:
        await load_catalogue(settings.resolved_config_dir() / "catalog")
    assert not await Topic.filter(code="test-hukou").exists()   # the files are the topics' only source


def _form(data: dict, name: str) -> dict:
    return next(f for f in data["forms"] if f["name"] == name)


def _own_field(data: dict, form: str, name: str) -> dict:
    return next(f for f in _form(data, form)["field"] if f.get("name") == name)


def _refused(data: dict, message: str) -> None:
    with pytest.raises(CatalogueError, match=re.escape(message)):
        check_catalogue(data)


class TestForms:
    """forms.toml: every form is one check_form can apply and an app can render in three languages, and
    names only items that exist."""

    def test_an_item_named_by_a_form_gets_it_and_the_others_the_default_of_their_audience(self, settings):
        forms = item_forms(_real(settings))
        assert [f["name"] for f in forms["nmyj.QR006"]][:4] == ["species", "head_count", "destination",
                                                                "planned_date"]
        assert forms["150929-ga.QR001"][0]["name"] == "reason"             # a county's copy of the matter
        assert forms["gsj.XK002"][0]["name"] == "registered_address"       # enterprise only
        assert forms["ajj.XK012"][0]["name"] == "purpose"                  # personal and enterprise
        assert all(forms.values())

    def test_a_form_naming_an_unknown_item_is_refused(self, settings):
        data = _real(settings)
        _form(data, "forest_logging")["items"].append("lyj.XK999")
        _refused(data, "form forest_logging: item lyj.XK999 does not exist")

    def test_a_form_naming_an_unknown_matter_is_refused(self, settings):
        data = _real(settings)
        _form(data, "identity_card")["matters"].append("QR999")
        _refused(data, "form identity_card: matter QR999 names no item")

    def test_an_item_given_two_forms_is_refused(self, settings):
        data = _real(settings)
        _form(data, "forest_logging")["items"].append("nmyj.QR006")
        _refused(data, "item nmyj.QR006: given two forms")

    def test_a_field_of_an_unknown_type_is_refused(self, settings):
        data = _real(settings)
        _own_field(data, "livestock_quarantine", "destination")["type"] = "address"
        _refused(data, "form livestock_quarantine: field destination: type 'address'")

    def test_duplicate_field_names_in_a_form_are_refused(self, settings):
        data = _real(settings)
        _own_field(data, "construction_permit", "builder_name")["name"] = "project_name"
        _refused(data, "form construction_permit: field project_name: duplicate field name")

    def test_a_label_missing_a_language_is_refused(self, settings):
        data = _real(settings)
        del _own_field(data, "livestock_quarantine", "head_count")["label"]["mn"]
        _refused(data, "form livestock_quarantine: field head_count: label: give zh, mn and en")

    def test_a_choice_label_missing_a_language_is_refused(self, settings):
        data = _real(settings)
        del _own_field(data, "livestock_quarantine", "species")["choices"][3]["label"]["en"]
        _refused(data, "field species: choice camel: label: give zh, mn and en")

    def test_choice_values_that_are_not_unique_are_refused(self, settings):
        data = _real(settings)
        _own_field(data, "livestock_quarantine", "species")["choices"][1]["value"] = "sheep"
        _refused(data, "field species: choice values are not unique")

    def test_a_choice_value_that_is_not_ascii_is_refused(self, settings):
        data = _real(settings)
        _own_field(data, "identity_card", "reason")["choices"][0]["value"] = "首次申领"
        _refused(data, "choice value '首次申领' is not 1-32 ascii")

    def test_a_shared_field_that_does_not_exist_is_refused(self, settings):
        data = _real(settings)
        _form(data, "personal")["field"].append({"shared": "no_such_field"})
        _refused(data, "form personal: shared field no_such_field does not exist")

    def test_a_second_default_for_an_audience_is_refused(self, settings):
        data = _real(settings)
        _form(data, "forest_logging")["default_for"] = "personal"
        _refused(data, "form forest_logging: a second default for personal")

    def test_duplicate_form_names_are_refused(self, settings):
        data = _real(settings)
        _form(data, "forest_logging")["name"] = "grassland_use"
        _refused(data, "form grassland_use: duplicate form name")

    def test_without_forms_toml_every_item_has_an_empty_form(self, settings, tmp_path):
        directory = tmp_path / "catalog"
        shutil.copytree(settings.resolved_config_dir() / "catalog", directory)
        (directory / "forms.toml").unlink()
        data = read_catalogue_files(directory)
        check_catalogue(data)
        assert not any(item_forms(data).values())


class TestReviewDepartments:
    """并联审批: the item's own department leads; the reviewers are other departments of its hall."""

    def test_the_catalogue_has_city_project_items_reviewed_by_three_departments_or_more(self, settings):
        data = _real(settings)
        city = {d["code"] for d in data["departments"] if d["hall"] == "150900"}
        joint = [i for i in data["items"] if i.get("review_departments")]
        assert {i["review_kind"] for i in joint} == set(REVIEW_KINDS)
        assert len([i for i in joint if i["department"] in city and len(i["review_departments"]) >= 2]) >= 3

    def test_an_unknown_review_department_is_refused(self, settings):
        data = _real(settings)
        _item(data, "zjw.XK007")["review_departments"].append("nope")
        _refused(data, "item zjw.XK007: review department nope does not exist")

    def test_a_review_department_in_another_hall_is_refused(self, settings):
        data = _real(settings)
        _item(data, "zjw.XK007")["review_departments"].append("150921-scjg")
        _refused(data, "item zjw.XK007: review department 150921-scjg is in hall 150921")

    def test_the_lead_department_as_a_reviewer_is_refused(self, settings):
        data = _real(settings)
        _item(data, "zjw.XK007")["review_departments"].append("zjw")
        _refused(data, "review department zjw is the item's own department")

    def test_a_department_named_twice_is_refused(self, settings):
        data = _real(settings)
        _item(data, "zjw.XK007")["review_departments"].append("rfb")
        _refused(data, "item zjw.XK007: a review department is named twice")

    def test_an_unknown_review_kind_is_refused(self, settings):
        data = _real(settings)
        _item(data, "zjw.XK007")["review_kind"] = "会审"
        _refused(data, "item zjw.XK007: review_kind '会审'")

    def test_a_review_kind_without_departments_is_refused(self, settings):
        data = _real(settings)
        _item(data, "zjw.XK007")["review_departments"] = []
        _refused(data, "item zjw.XK007: 并联审批 needs 1-3 review_departments")

    def test_more_than_three_reviewers_are_refused(self, settings):
        data = _real(settings)
        _item(data, "zjw.QT001")["review_departments"].append("ajj")
        _refused(data, "item zjw.QT001: 联合验收 needs 1-3 review_departments")


async def test_forms_and_review_departments_are_stored_with_each_item(database):
    item = await ServiceItem.get(code="zjw.QT001")
    assert (item.review_kind, item.review_departments) == ("联合验收", ["ghj", "rfb", "qxj"])
    assert item.form[0]["name"] == "registered_address"
    assert (await ServiceItem.get(code="gaj.QR002")).review_kind == ""
