"""`ehall seed`: the catalogue files load in one transaction, reload idempotently, and contradictions
are refused before anything is written."""
import re
import shutil

import pytest

from backend.catalog.loader import CatalogueError, load_catalogue, read_catalogue_files
from backend.catalog.models import CatalogRevision, Hall, ServiceItem


async def test_reloading_changes_nothing_but_the_revision(database, settings):
    directory = settings.resolved_config_dir() / "catalog"
    halls, items = await Hall.all().count(), await ServiceItem.all().count()
    before = (await CatalogRevision.get(id=1)).revision
    counts = await load_catalogue(directory)
    assert counts["halls"] == halls and counts["items"] == items
    assert await Hall.all().count() == halls and await ServiceItem.all().count() == items
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
    answer cache serves the new catalogue as soon as the reload has committed."""
    running = await app_with(catalog={"cache_seconds": 600})
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
