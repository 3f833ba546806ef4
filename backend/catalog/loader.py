"""Loads the Ulanqab catalogue from config/catalog/*.toml into the database (`ehall seed`).

The files are data kept by the centre's staff; loading is one transaction that upserts every row
and bumps the catalogue revision, so a reload never leaves half a catalogue and no process keeps
serving answers built from the old one. The hall-item and item-topic links and the topics are
replaced as a whole: the files are their only source.

Keys added after the first catalogue (coordinates, accepts, conditions, steps, legal basis, location,
phone, audience, topics, Mongolian item names, topics.toml, forms.toml, review departments) are optional
and default to empty, so the loader reads catalogues from before and after they were filled in.
"""
from __future__ import annotations

import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Any

from backend.kit.db import transaction

from backend.catalog.calendar import OpeningHours
from backend.catalog.forms import FormDefinitionError, check_form_definition
from backend.catalog.models import (
    CatalogRevision, Department, Hall, HallItem, HolidayOverride, QueueCategory, ServiceItem,
    ServiceItemTopic, Topic, Window,
)
from backend.catalog.schemas import TOPIC_CODE_PATTERN

__all__ = ["load_catalogue", "load_catalogue_data", "catalogue_is_empty", "CatalogueError",
           "read_catalogue_files", "check_catalogue", "search_text", "item_forms", "REVIEW_KINDS"]

_LEVEL_ORDER = {"city": 0, "county": 1, "township": 2, "village": 3}
AUDIENCES = ("personal", "enterprise")
# the joint procedures an item's review departments take part in (service_items.toml review_kind)
REVIEW_KINDS = ("并联审批", "联合审图", "联合验收")
# beside the lead: the centre's joint procedures bring two to four departments to one table
_MAX_REVIEW_DEPARTMENTS = 3
_FORM_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


class CatalogueError(ValueError):
    """The catalogue files contradict themselves (a parent that does not exist, a duplicate code...)."""


def _read(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def read_catalogue_files(directory: Path) -> dict[str, list[dict[str, Any]]]:
    topics = directory / "topics.toml"
    forms = _read(directory / "forms.toml") if (directory / "forms.toml").exists() else {}
    return {
        "halls": _read(directory / "halls.toml").get("hall", []),
        "departments": _read(directory / "departments.toml").get("department", []),
        "items": _read(directory / "service_items.toml").get("item", []),
        "categories": _read(directory / "queues.toml").get("category", []),
        "windows": _read(directory / "queues.toml").get("window", []),
        "holidays": _read(directory / "holidays.toml").get("day", []),
        "topics": _read(topics).get("topic", []) if topics.exists() else [],
        "forms": forms.get("form", []),
        "form_fields": forms.get("field", []),
    }


def check_catalogue(data: dict[str, list[dict[str, Any]]]) -> None:
    """Refuse a catalogue that contradicts itself, before anything is written."""
    hall_codes = [h["code"] for h in data["halls"]]
    if len(set(hall_codes)) != len(hall_codes):
        raise CatalogueError("duplicate hall code")
    for hall in data["halls"]:
        if hall["level"] not in _LEVEL_ORDER:
            raise CatalogueError(f"hall {hall['code']}: unknown level {hall['level']}")
        if hall.get("parent") and hall["parent"] not in hall_codes:
            raise CatalogueError(f"hall {hall['code']}: parent {hall['parent']} does not exist")
        _check_hall_extras(hall)
    department_codes = {d["code"] for d in data["departments"]}
    if len(department_codes) != len(data["departments"]):
        raise CatalogueError("duplicate department code")
    for department in data["departments"]:
        if department["hall"] not in hall_codes:
            raise CatalogueError(f"department {department['code']}: hall {department['hall']} does not exist")
    item_codes = [i["code"] for i in data["items"]]
    if len(set(item_codes)) != len(item_codes):
        raise CatalogueError("duplicate service item code")
    topic_codes = [t["code"] for t in data.get("topics", [])]
    if len(set(topic_codes)) != len(topic_codes):
        raise CatalogueError("duplicate topic code")
    for code in topic_codes:
        if not isinstance(code, str) or not re.fullmatch(TOPIC_CODE_PATTERN, code):
            raise CatalogueError(f"topic {code!r}: a code is 1-32 letters, digits, '_' or '-'")
    for item in data["items"]:
        if item["department"] not in department_codes:
            raise CatalogueError(f"item {item['code']}: department {item['department']} does not exist")
        unknown_audience = set(item.get("audience", [])) - set(AUDIENCES)
        if unknown_audience:
            raise CatalogueError(f"item {item['code']}: audience {sorted(unknown_audience)} is not one of {AUDIENCES}")
        for topic in item.get("topics", []):
            if topic not in topic_codes:
                raise CatalogueError(f"item {item['code']}: topic {topic} does not exist")
    known_items = set(item_codes)
    for hall in data["halls"]:
        for code in hall.get("accepts", []):
            if code not in known_items:
                raise CatalogueError(f"hall {hall['code']}: accepts item {code}, which does not exist")
    _check_reviews(data)
    item_forms(data)
    prefixes = {(c["hall"], c["prefix"]) for c in data["categories"]}
    for window in data["windows"]:
        for prefix in window["categories"]:
            if (window["hall"], prefix) not in prefixes:
                raise CatalogueError(f"window {window['hall']}/{window['number']}: no category {prefix}")


def _check_hall_extras(hall: dict[str, Any]) -> None:
    for period in hall.get("hours_workday", []):
        try:
            OpeningHours.parse(period)
        except ValueError as exc:
            raise CatalogueError(f"hall {hall['code']}: {exc}") from None
    if "agency" in hall:
        _check_agency(hall)
    latitude, longitude = hall.get("latitude"), hall.get("longitude")
    if (latitude is None) != (longitude is None):
        raise CatalogueError(f"hall {hall['code']}: give both latitude and longitude, or neither")
    if latitude is not None and not (isinstance(latitude, (int, float)) and isinstance(longitude, (int, float))
                                     and -90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise CatalogueError(f"hall {hall['code']}: latitude/longitude out of range")


_AGENCY_KEYS = {"agent_name", "phone", "visit_weekdays", "visit_hours", "on_request"}


def _check_agency(hall: dict[str, Any]) -> None:
    """An agency point's schedule as the point posts it (卓资县's practice: fixed days in each village)."""
    agency, where = hall["agency"], f"hall {hall['code']}: agency"
    if hall["level"] != "village":
        raise CatalogueError(f"{where}: only village agency points (level village) have an agent's schedule")
    if set(agency) - _AGENCY_KEYS or not {"agent_name", "phone", "visit_weekdays", "visit_hours"} <= set(agency):
        raise CatalogueError(f"{where}: give agent_name, phone, visit_weekdays, visit_hours (and on_request)")
    weekdays = agency["visit_weekdays"]
    if not weekdays or not all(isinstance(d, int) and 1 <= d <= 7 for d in weekdays) \
            or len(set(weekdays)) != len(weekdays):
        raise CatalogueError(f"{where}: visit_weekdays are distinct ISO weekdays, 1 (Monday) to 7")
    if not re.fullmatch(r"[0-9-]{7,20}", str(agency["phone"])):
        raise CatalogueError(f"{where}: phone {agency['phone']!r} is not a phone number")
    for period in agency["visit_hours"]:
        try:
            OpeningHours.parse(period)
        except ValueError as exc:
            raise CatalogueError(f"{where}: {exc}") from None


def _check_reviews(data: dict[str, list[dict[str, Any]]]) -> None:
    """并联审批: the lead is the item's department; the others sit in the same hall and review alongside."""
    halls = {d["code"]: d["hall"] for d in data["departments"]}
    for item in data["items"]:
        kind, departments = item.get("review_kind", ""), item.get("review_departments", [])
        where = f"item {item['code']}"
        if not kind and not departments:
            continue
        if kind not in REVIEW_KINDS:
            raise CatalogueError(f"{where}: review_kind {kind!r} is not one of {', '.join(REVIEW_KINDS)}")
        if not isinstance(departments, list) or not 1 <= len(departments) <= _MAX_REVIEW_DEPARTMENTS:
            raise CatalogueError(f"{where}: {kind} needs 1-{_MAX_REVIEW_DEPARTMENTS} review_departments "
                                 "beside the item's own department")
        if len(set(departments)) != len(departments):
            raise CatalogueError(f"{where}: a review department is named twice")
        lead = item["department"]
        for code in departments:
            if code not in halls:
                raise CatalogueError(f"{where}: review department {code} does not exist")
            if code == lead:
                raise CatalogueError(f"{where}: review department {code} is the item's own department, "
                                     "which leads")
            if halls[code] != halls[lead]:
                raise CatalogueError(f"{where}: review department {code} is in hall {halls[code]}, not in "
                                     f"the lead's hall {halls[lead]}")


def _form_fields(form: dict[str, Any], shared: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """A form's fields with the shared ones ([[field]], taken by `shared = "<name>"`) written out."""
    fields = []
    for field in form.get("field", []):
        if "shared" not in field:
            fields.append(field)
        elif set(field) != {"shared"}:
            raise CatalogueError(f"form {form['name']}: a shared field is taken as it is: give only "
                                 f"shared = {field['shared']!r}")
        elif field["shared"] not in shared:
            raise CatalogueError(f"form {form['name']}: shared field {field['shared']} does not exist")
        else:
            fields.append(shared[field["shared"]])
    try:
        check_form_definition(fields)
    except FormDefinitionError as exc:
        raise CatalogueError(f"form {form['name']}: {exc}") from None
    return fields


def item_forms(data: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Each item's form (forms.toml): the form naming it by code or by matter, else the default of its
    audience (enterprise if only enterprises apply, else personal), else none. Refuses a form that
    check_form could not apply, and a name, item, matter or default that contradicts the catalogue."""
    shared: dict[str, dict[str, Any]] = {}
    for field in data.get("form_fields", []):
        try:
            check_form_definition([field])
        except FormDefinitionError as exc:
            raise CatalogueError(f"shared {exc}") from None
        if field["name"] in shared:
            raise CatalogueError(f"shared field {field['name']}: defined twice")
        shared[field["name"]] = field
    items = {item["code"]: item for item in data["items"]}
    by_matter: dict[str, list[str]] = {}
    for code in items:
        by_matter.setdefault(code.rpartition(".")[2], []).append(code)
    names: set[str] = set()
    defaults: dict[str, list[dict[str, Any]]] = {}
    assigned: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    for form in data.get("forms", []):
        name = form.get("name")
        if not isinstance(name, str) or not _FORM_NAME.fullmatch(name):
            raise CatalogueError(f"form {name!r}: a name is lowercase ascii letters, digits and '_'")
        if name in names:
            raise CatalogueError(f"form {name}: duplicate form name")
        names.add(name)
        fields = _form_fields(form, shared)
        if "default_for" in form:
            if form["default_for"] not in AUDIENCES:
                raise CatalogueError(f"form {name}: default_for {form['default_for']!r} is not one of {AUDIENCES}")
            if form["default_for"] in defaults:
                raise CatalogueError(f"form {name}: a second default for {form['default_for']}")
            defaults[form["default_for"]] = fields
        codes = []
        for code in form.get("items", []):
            if code not in items:
                raise CatalogueError(f"form {name}: item {code} does not exist")
            codes.append(code)
        for matter in form.get("matters", []):
            if matter not in by_matter:
                raise CatalogueError(f"form {name}: matter {matter} names no item")
            codes.extend(by_matter[matter])
        for code in codes:
            if code in assigned and assigned[code][0] != name:
                raise CatalogueError(f"item {code}: given two forms, {assigned[code][0]} and {name}")
            assigned[code] = (name, fields)
    forms = {}
    for code, item in items.items():
        if code in assigned:
            forms[code] = assigned[code][1]
        else:
            audience = "enterprise" if item.get("audience") == ["enterprise"] else "personal"
            forms[code] = defaults.get(audience, [])
    return forms


def search_text(item: dict[str, Any], department: dict[str, Any]) -> str:
    """What 关键词 search looks in: the item's names in the three languages, its keywords, its department."""
    words = [item["name"], item.get("name_mn", ""), item.get("name_en", ""), *item.get("keywords", []),
             department["name"], department["short_name"], item["kind"]]
    return " ".join(word for word in words if word).lower()


async def catalogue_is_empty() -> bool:
    return not await Hall.exists()


async def load_catalogue(directory: Path) -> dict[str, int]:
    return await load_catalogue_data(read_catalogue_files(directory))


async def load_catalogue_data(data: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Load catalogue data as read_catalogue_files gives it; counts of what was loaded."""
    check_catalogue(data)
    departments = {d["code"]: d for d in data["departments"]}
    forms = item_forms(data)
    async with transaction() as tx:
        # parents before children, so the foreign key always points at a row that exists
        for hall in sorted(data["halls"], key=lambda h: _LEVEL_ORDER[h["level"]]):
            await Hall.update_or_create(code=hall["code"], using_db=tx, defaults={
                "name": hall["name"], "name_mn": hall.get("name_mn", ""), "name_en": hall.get("name_en", ""),
                "level": hall["level"], "parent_id": hall.get("parent") or None,
                "address": hall.get("address", ""), "phone": hall.get("phone", ""),
                "hours_workday": hall.get("hours_workday", []), "hours_note": hall.get("hours_note", ""),
                "agency": hall.get("agency"),
                "latitude": hall.get("latitude"), "longitude": hall.get("longitude"),
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
                "search_text": search_text(item, departments[item["department"]]),
                "name_mn": item.get("name_mn", ""), "conditions": item.get("conditions", []),
                "steps": item.get("steps", []), "legal_basis": item.get("legal_basis", []),
                "location": item.get("location", ""), "phone": item.get("phone", ""),
                "for_personal": "personal" in item.get("audience", []),
                "for_enterprise": "enterprise" in item.get("audience", []),
                "form": forms[item["code"]],
                "review_departments": item.get("review_departments", []),
                "review_kind": item.get("review_kind", ""),
            })
        await _replace_links(data, tx)
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
        links = await HallItem.all().using_db(tx).count()
        revision, _ = await CatalogRevision.get_or_create(id=1, using_db=tx)
        revision.revision += 1
        await revision.save(using_db=tx)
    return {**{key: len(rows) for key, rows in data.items()}, "hall_items": links}


async def _replace_links(data: dict[str, list[dict[str, Any]]], tx) -> None:
    """Topics, item topics and the items each township/village accepts, exactly as the files give them."""
    await ServiceItemTopic.all().using_db(tx).delete()
    await HallItem.all().using_db(tx).delete()
    topic_codes = [t["code"] for t in data.get("topics", [])]
    await Topic.exclude(code__in=topic_codes).using_db(tx).delete()
    for position, topic in enumerate(data.get("topics", [])):
        await Topic.update_or_create(code=topic["code"], using_db=tx, defaults={
            "name": topic["name"], "name_mn": topic.get("name_mn", ""), "name_en": topic.get("name_en", ""),
            "position": position,
        })
    await ServiceItemTopic.bulk_create(
        [ServiceItemTopic(item_id=item["code"], topic_id=topic)
         for item in data["items"] for topic in dict.fromkeys(item.get("topics", []))], using_db=tx)
    await HallItem.bulk_create(
        [HallItem(hall_id=hall["code"], item_id=code, mode="agent" if hall["level"] == "village" else "accept")
         for hall in data["halls"] for code in dict.fromkeys(hall.get("accepts", []))], using_db=tx)
