"""The public catalogue as a phone sees it: the real server, the real Ulanqab catalogue, and rows a
test makes for itself (tests/rows.py) where it needs values the catalogue files do not fix."""
import jsonschema_rs
import pytest

from tests.rows import make_department, make_hall, make_hall_item, make_item, make_topic

COUNTIES = {"150902": "集宁区", "150921": "卓资县", "150922": "化德县", "150923": "商都县", "150924": "兴和县",
            "150925": "凉城县", "150926": "察哈尔右翼前旗", "150927": "察哈尔右翼中旗", "150928": "察哈尔右翼后旗",
            "150929": "四子王旗", "150981": "丰镇市"}
NAMED_DEPARTMENTS = {"住建委", "安监局", "工商局", "发改委", "公安局", "人社局", "质监局", "交通局", "地税局"}


def _assert_problem(response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code


class TestListHalls:
    async def test_the_catalogue_has_the_city_hall_and_its_11_county_halls(self, client):
        city = (await client.get("/api/v1/halls", params={"level": "city"})).json()["items"]
        counties = (await client.get("/api/v1/halls", params={"level": "county"})).json()["items"]
        assert [h["code"] for h in city] == ["150900"]
        assert len(city) + len(counties) == 12
        assert {h["code"]: h for h in counties}.keys() == COUNTIES.keys()
        for hall in counties:
            assert COUNTIES[hall["code"]] in hall["name"]
            assert hall["parent"] == "150900"
            assert any("\u1800" <= ch <= "\u18af" for ch in hall["name_mn"]), hall["code"]

    async def test_the_tree_nests_townships_and_village_agency_points_under_their_county(self, client):
        tree = (await client.get("/api/v1/halls")).json()["items"]
        assert [root["code"] for root in tree] == ["150900"]
        counties = {c["code"]: c for c in tree[0]["children"]}
        assert counties.keys() == COUNTIES.keys()
        levels = set()

        def walk(node):
            levels.add(node["level"])
            for child in node["children"]:
                assert child["parent"] == node["code"]
                walk(child)

        walk(tree[0])
        assert levels == {"city", "county", "township", "village"}

    async def test_filter_by_parent(self, client):
        townships = (await client.get("/api/v1/halls", params={"parent": "150921"})).json()["items"]
        assert townships and all(h["level"] == "township" and h["parent"] == "150921" for h in townships)

    @pytest.mark.parametrize("path,status,code", [
        ("/api/v1/halls?level=province", 422, "validation_failed"),
        ("/api/v1/halls?parent=abc", 422, "validation_failed"),
    ])
    async def test_unknown_or_malformed(self, client, path, status, code):
        _assert_problem(await client.get(path), status, code)


class TestGetHall:
    async def test_one_hall_with_departments_queues_and_windows(self, client):
        hall = (await client.get("/api/v1/halls/150900")).json()
        assert hall["name"].startswith("乌兰察布")
        assert len(hall["departments"]) == 27
        assert len(hall["children"]) == 11
        prefixes = {c["prefix"] for c in hall["queue_categories"]}
        assert prefixes and all(len(p) == 1 and p.isupper() for p in prefixes)
        assert hall["windows"] and all(set(w["categories"]) <= prefixes for w in hall["windows"])
        assert all(hall["hours_workday"])

    async def test_every_county_hall_has_queues_and_windows(self, client):
        for code in COUNTIES:
            hall = (await client.get(f"/api/v1/halls/{code}")).json()
            assert hall["queue_categories"], code
            assert hall["windows"], code

    async def test_a_township_hall_under_zhuozi_has_a_window(self, client):
        townships = (await client.get("/api/v1/halls", params={"parent": "150921"})).json()["items"]
        with_windows = [t["code"] for t in townships if t["code"].startswith("150921")  # not a test's own
                        and (await client.get(f"/api/v1/halls/{t['code']}")).json()["windows"]]
        assert with_windows, "the catalogue should give a township hall under 卓资县 a window"

    async def test_unknown_hall(self, client):
        _assert_problem(await client.get("/api/v1/halls/159999"), 404, "hall_not_found")

    async def test_coordinates_for_wx_open_location_in_the_detail_and_the_lists(self, client):
        hall = await make_hall(latitude=41.0336, longitude=113.1145)
        detail = (await client.get(f"/api/v1/halls/{hall.code}")).json()
        assert (detail["latitude"], detail["longitude"]) == (41.0336, 113.1145)
        listed = (await client.get("/api/v1/halls", params={"parent": "150921"})).json()["items"]
        assert next(h for h in listed if h["code"] == hall.code)["latitude"] == 41.0336

    async def test_a_makeup_saturday_is_a_working_day_and_the_hall_is_open(self, client, frozen_clock):
        hall = await make_hall(hours_workday=["08:30-12:00", "13:30-17:30"])
        frozen_clock("2026-10-10T10:00:00+08:00")              # Saturday, 国庆节调休上班
        detail = (await client.get(f"/api/v1/halls/{hall.code}")).json()
        assert detail["open_now"] is True
        assert detail["closes_at"] == "2026-10-10T12:00:00+08:00"
        assert detail["next_opening_at"] == "2026-10-10T13:30:00+08:00"

    async def test_a_holiday_weekday_is_closed_until_the_first_working_day_after_it(self, client, frozen_clock):
        hall = await make_hall(hours_workday=["08:30-12:00", "13:30-17:30"])
        frozen_clock("2026-10-01T10:00:00+08:00")              # Thursday, 国庆节
        detail = (await client.get(f"/api/v1/halls/{hall.code}")).json()
        assert detail["open_now"] is False and detail["closes_at"] is None
        assert detail["next_opening_at"] == "2026-10-08T08:30:00+08:00"

    async def test_in_the_lunch_break_the_hall_is_closed_and_opens_at_half_past_one(self, client, frozen_clock):
        hall = await make_hall(hours_workday=["08:30-12:00", "13:30-17:30"])
        frozen_clock("2026-11-25T12:30:00+08:00")              # an ordinary Wednesday
        detail = (await client.get(f"/api/v1/halls/{hall.code}")).json()
        assert detail["open_now"] is False
        assert detail["next_opening_at"] == "2026-11-25T13:30:00+08:00"

    async def test_open_now_is_worked_out_on_every_request_though_the_rest_is_kept(self, client, frozen_clock):
        hall = await make_hall(hours_workday=["08:30-12:00", "13:30-17:30"])
        frozen_clock("2026-11-25T11:59:00+08:00")
        first = await client.get(f"/api/v1/halls/{hall.code}")
        frozen_clock("2026-11-25T12:01:00+08:00")
        second = await client.get(f"/api/v1/halls/{hall.code}")
        assert first.json()["open_now"] is True and second.json()["open_now"] is False
        assert first.headers["etag"] != second.headers["etag"]

    async def test_the_city_halls_hours_come_from_the_catalogue(self, client, frozen_clock):
        frozen_clock("2026-11-29T10:00:00+08:00")              # a Sunday
        hall = (await client.get("/api/v1/halls/150900")).json()
        opening = hall["hours_workday"][0].split("-")[0]
        assert hall["open_now"] is False
        assert hall["next_opening_at"] == f"2026-11-30T{opening}:00+08:00"

    async def test_a_township_lists_the_items_it_accepts_and_a_village_point_those_its_agent_takes(self, client):
        county_item = await make_item(await make_department("150921"), name="测试草原使用审核")
        township = await make_hall(parent="150921", level="township")
        village = await make_hall(parent=township.code, level="village")
        await make_hall_item(township, county_item)
        await make_hall_item(village, county_item)
        accepted = (await client.get(f"/api/v1/halls/{township.code}")).json()["accepted_items"]
        assert accepted == [{"code": county_item.code, "name": "测试草原使用审核", "name_mn": "",
                             "name_en": "", "hall": "150921", "mode": "accept"}]
        taken = (await client.get(f"/api/v1/halls/{village.code}")).json()["accepted_items"]
        assert [(i["code"], i["mode"]) for i in taken] == [(county_item.code, "agent")]
        detail = (await client.get(f"/api/v1/service-items/{county_item.code}")).json()
        assert {(h["hall"], h["mode"]) for h in detail["accepted_at"]} == {(township.code, "accept"),
                                                                         (village.code, "agent")}


class TestListDepartments:
    async def test_27_departments_are_stationed_in_the_city_hall(self, client):
        items = (await client.get("/api/v1/departments", params={"hall": "150900"})).json()["items"]
        assert len(items) == 27
        assert NAMED_DEPARTMENTS <= {d["short_name"] for d in items}
        assert len({d["code"] for d in items}) == 27


class TestSearchServiceItems:
    async def test_chinese_keyword_search_finds_the_business_licence(self, client):
        page = (await client.get("/api/v1/service-items", params={"q": "营业执照"})).json()
        assert page["total"] >= 1
        assert any("营业执照" in i["name"] or "登记" in i["name"] for i in page["items"])

    async def test_every_word_must_match(self, client):
        both = (await client.get("/api/v1/service-items", params={"q": "身份证 户口"})).json()
        one = (await client.get("/api/v1/service-items", params={"q": "身份证"})).json()
        assert both["total"] <= one["total"]

    async def test_filter_by_hall_and_department(self, client):
        items = (await client.get("/api/v1/departments", params={"hall": "150921"})).json()["items"]
        department = items[0]["code"]
        page = (await client.get("/api/v1/service-items",
                                 params={"hall": "150921", "department": department})).json()
        assert page["total"] >= 1
        assert all(i["hall"] == "150921" and i["department"] == department for i in page["items"])

    async def test_city_hall_items_cover_every_department_and_half_are_quick(self, client):
        page = (await client.get("/api/v1/service-items", params={"hall": "150900", "page_size": 100})).json()
        items = page["items"]
        page_two = 2
        while len(items) < page["total"]:
            items += (await client.get("/api/v1/service-items", params={
                "hall": "150900", "page_size": 100, "page": page_two})).json()["items"]
            page_two += 1
        assert len({i["department"] for i in items}) == 27
        quick = [i for i in items if i["instant"] or i["promised_days"] <= 5]
        assert len(quick) * 2 >= len(items)

    async def test_pagination(self, client):
        first = (await client.get("/api/v1/service-items", params={"page_size": 5})).json()
        second = (await client.get("/api/v1/service-items", params={"page_size": 5, "page": 2})).json()
        assert len(first["items"]) == 5 and first["total"] > 10
        assert not {i["code"] for i in first["items"]} & {i["code"] for i in second["items"]}

    async def test_the_city_halls_item_comes_first_not_the_counties_copies(self, client):
        page = (await client.get("/api/v1/service-items", params={"q": "居民身份证申领"})).json()
        assert page["items"][0]["code"] == "gaj.QR001"
        assert page["total"] >= 12                              # the counties' copies are still found

    async def test_an_english_name_finds_the_item_in_any_case(self, client):
        page = (await client.get("/api/v1/service-items", params={"q": "Resident IDENTITY card"})).json()
        assert page["items"][0]["code"] == "gaj.QR001"

    async def test_exact_names_then_names_that_start_with_the_words_then_the_rest(self, client):
        department = await make_department((await make_hall()).code)
        word = "测试" + department.code[-6:]
        inside = await make_item(department, code=f"{department.code}.A1", name=f"其他{word}")
        starts = await make_item(department, code=f"{department.code}.A2", name=f"{word}变更")
        exact = await make_item(department, code=f"{department.code}.A3", name=word)
        page = (await client.get("/api/v1/service-items", params={"q": word})).json()
        assert [i["code"] for i in page["items"]] == [exact.code, starts.code, inside.code]

    async def test_a_halls_own_items_come_before_those_it_accepts(self, client):
        township = await make_hall(parent="150921")
        word = "测试" + township.code[-6:]
        county_item = await make_item(await make_department("150921"), code=f"A{township.code}", name=word)
        own_item = await make_item(await make_department(township.code), code=f"Z{township.code}", name=word)
        await make_hall_item(township, county_item)
        page = (await client.get("/api/v1/service-items", params={"q": word, "hall": township.code})).json()
        assert [i["code"] for i in page["items"]] == [own_item.code, county_item.code]
        # without the hall, the higher hall's item leads
        page = (await client.get("/api/v1/service-items", params={"q": word})).json()
        assert [i["code"] for i in page["items"]] == [county_item.code, own_item.code]

    async def test_a_township_hall_filter_returns_the_items_accepted_there(self, client):
        township = await make_hall()
        accepted = [await make_item(await make_department("150921")) for _ in range(2)]
        await make_item(await make_department("150921"))   # not accepted there
        for item in accepted:
            await make_hall_item(township, item)
        page = (await client.get("/api/v1/service-items", params={"hall": township.code})).json()
        assert sorted(i["code"] for i in page["items"]) == sorted(i.code for i in accepted)
        assert page["total"] == 2

    async def test_search_finds_items_by_their_mongolian_name(self, client):
        department = await make_department((await make_hall()).code)
        name_mn = "ᠲᠡᠰᠲ " + department.code[-6:]
        item = await make_item(department, name_mn=name_mn)
        page = (await client.get("/api/v1/service-items", params={"q": name_mn})).json()
        assert [i["code"] for i in page["items"]] == [item.code]
        assert page["items"][0]["name_mn"] == name_mn

    async def test_browse_by_audience_and_topic(self, client):
        topic = await make_topic()
        department = await make_department((await make_hall()).code)
        personal = await make_item(department, for_personal=True, topics=(topic.code,))
        business = await make_item(department, for_enterprise=True, topics=(topic.code,))
        both = await make_item(department, for_personal=True, for_enterprise=True)

        async def codes(**params) -> set[str]:
            page = (await client.get("/api/v1/service-items",
                                     params={"department": department.code, **params})).json()
            return {i["code"] for i in page["items"]}

        assert await codes(audience="personal") == {personal.code, both.code}
        assert await codes(audience="enterprise") == {business.code, both.code}
        assert await codes(topic=topic.code) == {personal.code, business.code}
        assert await codes(topic=topic.code, audience="enterprise") == {business.code}
        listed = (await client.get("/api/v1/service-items", params={"department": department.code,
                                                                    "audience": "personal"})).json()["items"]
        assert {tuple(i["audience"]) for i in listed} == {("personal",), ("personal", "enterprise")}

    @pytest.mark.parametrize("params", [{"page": "0"}, {"page_size": "1000"}, {"q": "x" * 51},
                                        {"instant": "maybe"}, {"hall": "15"}, {"audience": "everyone"},
                                        {"topic": "户籍"}])
    async def test_bad_parameters_are_a_422(self, client, params):
        response = await client.get("/api/v1/service-items", params=params)
        assert response.status_code == 422
        assert response.json()["errors"]

class TestGetServiceItem:
    async def test_one_item_has_materials_and_time_limits(self, client):
        code = (await client.get("/api/v1/service-items", params={"page_size": 1})).json()["items"][0]["code"]
        item = (await client.get(f"/api/v1/service-items/{code}")).json()
        assert item["code"] == code
        assert item["materials"] and all(m["name"] for m in item["materials"])
        assert item["legal_days"] >= item["promised_days"] >= 0

    async def test_conditions_steps_legal_basis_location_and_phone(self, client):
        topic = await make_topic()
        item = await make_item(
            await make_department("150921"), topics=(topic.code,), for_personal=True,
            conditions=["本县户籍居民"], steps=["窗口受理", "审核", "办结"], legal_basis=["《居民身份证法》第八条"],
            location="一楼B区 08-10号窗口", phone="0474-5223100", name_mn="ᠲᠡᠰᠲ", name_en="Test item")
        detail = (await client.get(f"/api/v1/service-items/{item.code}")).json()
        assert detail["conditions"] == ["本县户籍居民"]
        assert detail["steps"] == ["窗口受理", "审核", "办结"]
        assert detail["legal_basis"] == ["《居民身份证法》第八条"]
        assert (detail["location"], detail["phone"]) == ("一楼B区 08-10号窗口", "0474-5223100")
        assert (detail["name_mn"], detail["name_en"]) == ("ᠲᠡᠰᠲ", "Test item")
        assert detail["audience"] == ["personal"] and detail["topics"] == [topic.code]
        assert detail["accepted_at"] == []

    async def test_unknown_item(self, client):
        response = await client.get("/api/v1/service-items/NOPE")
        assert response.status_code == 404
        assert response.json()["code"] == "service_item_not_found"


class TestListTopics:
    async def test_topics_have_names_in_three_languages(self, client):
        topic = await make_topic(name="测试户籍", name_mn="ᠭᠡᠷ ᠪᠦᠯᠢ", name_en="Household registration")
        items = (await client.get("/api/v1/topics")).json()["items"]
        assert {"code": topic.code, "name": "测试户籍", "name_mn": "ᠭᠡᠷ ᠪᠦᠯᠢ",
                "name_en": "Household registration"} in items


class TestGetCalendar:
    async def test_working_days_weekends_holidays_and_makeup_days(self, client):
        days = (await client.get("/api/v1/calendar", params={"from": "2026-09-30", "to": "2026-10-10"})).json()
        by_date = {d["date"]: d for d in days["items"]}
        assert len(by_date) == 11
        assert by_date["2026-09-30"] == {"date": "2026-09-30", "workday": True, "kind": "workday", "name": ""}
        assert by_date["2026-10-01"] == {"date": "2026-10-01", "workday": False, "kind": "holiday",
                                         "name": "国庆节"}
        assert by_date["2026-10-10"]["kind"] == "makeup_workday" and by_date["2026-10-10"]["workday"] is True

    async def test_the_next_years_holidays_come_from_the_catalogues_overrides(self, client):
        days = (await client.get("/api/v1/calendar", params={"from": "2027-01-01", "to": "2027-01-01"})).json()
        assert days["items"][0]["kind"] == "holiday" and days["items"][0]["workday"] is False

    async def test_without_a_range_a_month_from_today(self, client, frozen_clock):
        frozen_clock("2026-11-25T23:30:00+08:00")
        items = (await client.get("/api/v1/calendar")).json()["items"]
        assert items[0]["date"] == "2026-11-25" and items[-1]["date"] == "2026-12-25"

    async def test_a_year_is_the_longest_range(self, client):
        year = await client.get("/api/v1/calendar", params={"from": "2028-01-01", "to": "2028-12-31"})
        assert year.status_code == 200 and len(year.json()["items"]) == 366
        longer = await client.get("/api/v1/calendar", params={"from": "2028-01-01", "to": "2029-01-01"},
                                  headers={"Accept-Language": "en"})
        _assert_problem(longer, 422, "validation_failed")
        assert longer.json()["errors"] == [{"field": "to", "code": "field.date_range", "message":
                                            "The end date must not be before the start date, and the range "
                                            "may span at most 366 days."}]

    @pytest.mark.parametrize("params,field", [
        ({"from": "2026-02-30"}, "from"), ({"from": "tomorrow"}, "from"), ({"to": "2026-13-01"}, "to"),
        ({"from": "2026-10-10", "to": "2026-10-01"}, "to"), ({"from": "9999-12-31", "to": "0001-01-01"}, "to"),
    ])
    async def test_bad_dates_and_ranges_are_a_422_naming_the_field(self, client, params, field):
        response = await client.get("/api/v1/calendar", params=params)
        _assert_problem(response, 422, "validation_failed")
        assert [e["field"] for e in response.json()["errors"]] == [field]

    async def test_the_last_day_there_is(self, client):
        response = await client.get("/api/v1/calendar", params={"from": "9999-12-20"})
        assert response.status_code == 200 and response.json()["items"][-1]["date"] == "9999-12-31"


class TestConditionalGet:
    @pytest.mark.parametrize("path", ["/api/v1/halls", "/api/v1/halls/150921", "/api/v1/departments",
                                      "/api/v1/service-items?q=社保", "/api/v1/topics",
                                      "/api/v1/calendar?from=2026-10-01&to=2026-10-31"])
    async def test_a_phone_that_has_the_catalogue_gets_304_and_no_body(self, client, path):
        first = await client.get(path)
        etag = first.headers["etag"]
        assert "max-age" in first.headers["cache-control"]
        again = await client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        changed = await client.get(path, headers={"If-None-Match": '"stale"'})
        assert changed.status_code == 200 and changed.headers["etag"] == etag


class TestCompression:
    async def test_a_phone_that_takes_gzip_downloads_the_hall_tree_compressed(self, client):
        plain = await client.get("/api/v1/halls", headers={"Accept-Encoding": "identity"})
        compressed = await client.get("/api/v1/halls", headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in plain.headers
        assert compressed.headers["content-encoding"] == "gzip"
        assert compressed.json() == plain.json()               # httpx decodes it
        assert int(compressed.headers["content-length"]) * 3 < int(plain.headers["content-length"])
        assert compressed.headers["etag"] != plain.headers["etag"]
        assert "Accept-Encoding" in compressed.headers["vary"]

    async def test_either_validator_revalidates(self, client):
        compressed = await client.get("/api/v1/halls", headers={"Accept-Encoding": "gzip"})
        again = await client.get("/api/v1/halls", headers={"Accept-Encoding": "identity",
                                                           "If-None-Match": compressed.headers["etag"]})
        assert again.status_code == 304

    async def test_small_answers_are_not_compressed(self, client):
        response = await client.get("/api/v1/halls", params={"parent": "150929"},
                                    headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in response.headers


class TestServiceItemFormAndReview:
    async def test_the_form_shows_each_fields_type_labels_limits_and_choices(self, client):
        detail = (await client.get("/api/v1/service-items/nmyj.QR006")).json()
        fields = {f["name"]: f for f in detail["form"]}
        assert list(fields)[:4] == ["species", "head_count", "destination", "planned_date"]
        species = fields["species"]
        assert species["type"] == "choice" and species["required"] is True
        assert species["label"]["zh"] == "畜种" and species["label"]["en"] == "Species"
        assert any("\u1800" <= ch <= "\u18af" for ch in species["label"]["mn"])
        assert [c["value"] for c in species["choices"]] == ["sheep", "cattle", "horse", "camel"]
        assert [c["label"]["zh"] for c in species["choices"]] == ["羊", "牛", "马", "骆驼"]
        assert (fields["head_count"]["min"], fields["head_count"]["max"]) == (1, 100000)
        assert fields["planned_date"]["not_before_today"] is True
        assert fields["destination"]["max_length"] == 100 and fields["destination"]["help"]["zh"]
        assert detail["materials"]

    async def test_a_decimal_field_shows_its_places(self, client):
        form = (await client.get("/api/v1/service-items/zjw.XK007")).json()["form"]
        area = next(f for f in form if f["name"] == "floor_area_m2")
        assert (area["type"], area["places"], area["min"]) == ("decimal", 2, 0.01)

    async def test_a_joint_item_lists_the_lead_first_then_the_reviewing_departments(self, client):
        review = (await client.get("/api/v1/service-items/zjw.QT001")).json()["review"]
        assert review["kind"] == "联合验收"
        assert [(d["code"], d["lead"]) for d in review["departments"]] == [
            ("zjw", True), ("ghj", False), ("rfb", False), ("qxj", False)]
        assert review["departments"][1]["name"] == "乌兰察布市城乡规划局"
        assert all(d["name_mn"] and d["name_en"] for d in review["departments"])

    async def test_an_item_its_department_reviews_alone_has_only_the_lead(self, client):
        detail = (await client.get("/api/v1/service-items/gaj.QR001")).json()
        assert detail["review"] == {"kind": None, "departments": [
            {"code": "gaj", "name": "乌兰察布市公安局", "name_mn": detail["review"]["departments"][0]["name_mn"],
             "name_en": "Ulanqab Public Security Bureau", "lead": True}]}
        assert [f["name"] for f in detail["form"]] == ["reason", "delivery", "postal_address"]

    async def test_an_item_made_without_a_form_has_an_empty_form(self, client):
        item = await make_item(await make_department("150921"))
        detail = (await client.get(f"/api/v1/service-items/{item.code}")).json()
        assert detail["form"] == [] and [d["lead"] for d in detail["review"]["departments"]] == [True]

    @pytest.mark.parametrize("code", ["zjw.QT001", "nmyj.QR006", "gsj.XK005", "gaj.QR002"])
    async def test_the_answer_matches_the_openapi_document(self, client, code):
        document = (await client.get("/docs/openapi.json")).json()
        schema = {"$ref": "#/components/schemas/ServiceItemDetail", "components": document["components"]}
        detail = (await client.get(f"/api/v1/service-items/{code}")).json()
        validator = jsonschema_rs.validator_for(schema)
        validator.validate(detail)
        with pytest.raises(jsonschema_rs.ValidationError):                 # the check bites
            validator.validate({**detail, "review": {"kind": "会审", "departments": []}})
        form = document["components"]["schemas"]["FormFieldOut"]
        assert {"name", "type", "label", "required", "choices", "max_length", "min", "max"} <= set(form["properties"])
