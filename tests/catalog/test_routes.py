"""The public catalogue as a phone sees it: the real server, the real Ulanqab catalogue."""
import pytest

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

    @pytest.mark.parametrize("params", [{"page": "0"}, {"page_size": "1000"}, {"q": "x" * 51},
                                        {"instant": "maybe"}, {"hall": "15"}])
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

    async def test_unknown_item(self, client):
        response = await client.get("/api/v1/service-items/NOPE")
        assert response.status_code == 404
        assert response.json()["code"] == "service_item_not_found"


class TestConditionalGet:
    @pytest.mark.parametrize("path", ["/api/v1/halls", "/api/v1/halls/150921", "/api/v1/departments",
                                      "/api/v1/service-items?q=社保"])
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
