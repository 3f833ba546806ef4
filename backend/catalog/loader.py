"""Loads the Ulanqab catalogue from config/catalog/*.toml into the database (`ehall seed`).

The files are data kept by the centre's staff; loading is one transaction that upserts every row
and bumps the catalogue revision, so a reload never leaves half a catalogue and phones holding an
old ETag download the new one.
"""
from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Any

from tortoise.transactions import in_transaction

from backend.catalog.models import (
    CatalogRevision, Department, Hall, HolidayOverride, QueueCategory, ServiceItem, Window,
)

__all__ = ["load_catalogue", "catalogue_is_empty", "CatalogueError", "read_catalogue_files"]

_LEVEL_ORDER = {"city": 0, "county": 1, "township": 2, "village": 3}


class CatalogueError(ValueError):
    """The catalogue files contradict themselves (a parent that does not exist, a duplicate code...)."""


def _read(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def read_catalogue_files(directory: Path) -> dict[str, list[dict[str, Any]]]:
    return {
        "halls": _read(directory / "halls.toml").get("hall", []),
        "departments": _read(directory / "departments.toml").get("department", []),
        "items": _read(directory / "service_items.toml").get("item", []),
        "categories": _read(directory / "queues.toml").get("category", []),
        "windows": _read(directory / "queues.toml").get("window", []),
        "holidays": _read(directory / "holidays.toml").get("day", []),
    }


def _check(data: dict[str, list[dict[str, Any]]]) -> None:
    hall_codes = [h["code"] for h in data["halls"]]
    if len(set(hall_codes)) != len(hall_codes):
        raise CatalogueError("duplicate hall code")
    for hall in data["halls"]:
        if hall["level"] not in _LEVEL_ORDER:
            raise CatalogueError(f"hall {hall['code']}: unknown level {hall['level']}")
        if hall.get("parent") and hall["parent"] not in hall_codes:
            raise CatalogueError(f"hall {hall['code']}: parent {hall['parent']} does not exist")
    department_codes = {d["code"] for d in data["departments"]}
    if len(department_codes) != len(data["departments"]):
        raise CatalogueError("duplicate department code")
    for department in data["departments"]:
        if department["hall"] not in hall_codes:
            raise CatalogueError(f"department {department['code']}: hall {department['hall']} does not exist")
    item_codes = [i["code"] for i in data["items"]]
    if len(set(item_codes)) != len(item_codes):
        raise CatalogueError("duplicate service item code")
    for item in data["items"]:
        if item["department"] not in department_codes:
            raise CatalogueError(f"item {item['code']}: department {item['department']} does not exist")
    prefixes = {(c["hall"], c["prefix"]) for c in data["categories"]}
    for window in data["windows"]:
        for prefix in window["categories"]:
            if (window["hall"], prefix) not in prefixes:
                raise CatalogueError(f"window {window['hall']}/{window['number']}: no category {prefix}")


def _search_text(item: dict[str, Any], department: dict[str, Any]) -> str:
    words = [item["name"], *item.get("keywords", []), department["name"], department["short_name"], item["kind"]]
    return " ".join(words).lower()


async def catalogue_is_empty() -> bool:
    return not await Hall.exists()


async def load_catalogue(directory: Path) -> dict[str, int]:
    data = read_catalogue_files(directory)
    _check(data)
    departments = {d["code"]: d for d in data["departments"]}
    async with in_transaction() as tx:
        # parents before children, so the foreign key always points at a row that exists
        for hall in sorted(data["halls"], key=lambda h: _LEVEL_ORDER[h["level"]]):
            await Hall.update_or_create(code=hall["code"], using_db=tx, defaults={
                "name": hall["name"], "name_mn": hall.get("name_mn", ""), "name_en": hall.get("name_en", ""),
                "level": hall["level"], "parent_id": hall.get("parent") or None,
                "address": hall.get("address", ""), "phone": hall.get("phone", ""),
                "hours_workday": hall.get("hours_workday", []), "hours_note": hall.get("hours_note", ""),
            })
        for department in data["departments"]:
            await Department.update_or_create(code=department["code"], using_db=tx, defaults={
                "hall_id": department["hall"], "name": department["name"],
                "short_name": department["short_name"], "name_mn": department.get("name_mn", ""),
                "name_en": department.get("name_en", ""),
            })
        for item in data["items"]:
            await ServiceItem.update_or_create(code=item["code"], using_db=tx, defaults={
                "department_id": item["department"], "name": item["name"], "name_en": item.get("name_en", ""),
                "kind": item["kind"], "promised_days": item["promised_days"], "legal_days": item["legal_days"],
                "instant": item["instant"], "materials": item.get("materials", []),
                "fee_yuan": item.get("fee_yuan", 0), "fee_note": item.get("fee_note", ""),
                "online": item["online"], "appointment": item["appointment"],
                "keywords": item.get("keywords", []),
                "search_text": _search_text(item, departments[item["department"]]),
            })
        for category in data["categories"]:
            await QueueCategory.update_or_create(
                hall_id=category["hall"], prefix=category["prefix"], using_db=tx, defaults={
                    "name": category["name"], "name_mn": category.get("name_mn", ""),
                    "name_en": category.get("name_en", ""), "departments": category.get("departments", []),
                    "mean_service_minutes": category["mean_service_minutes"],
                })
        for window in data["windows"]:
            await Window.update_or_create(hall_id=window["hall"], number=window["number"], using_db=tx, defaults={
                "name": window["name"], "categories": window["categories"],
                "department_code": window.get("department", ""),
            })
        for day in data["holidays"]:
            await HolidayOverride.update_or_create(date=date.fromisoformat(day["date"]), using_db=tx, defaults={
                "is_workday": day["kind"] == "workday", "name": day.get("name", ""),
            })
        revision, _ = await CatalogRevision.get_or_create(id=1, using_db=tx)
        revision.revision += 1
        await revision.save(using_db=tx)
    return {key: len(rows) for key, rows in data.items()}
