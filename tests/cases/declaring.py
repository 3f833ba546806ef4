"""What the materials, progress and agency tests of applications share: a citizen whose ID number the
test knows, a form filled from the item's own definition, a declaration, an upload, and the files
the store holds (so a refused upload can be shown to leave none behind)."""
from __future__ import annotations

import random
from pathlib import Path

import httpx

from backend.kit import clock
from backend.kit.identity import uscc_check_char
from tests.factories import bearer, login_citizen, new_id_number, new_phone
from tests.kit.test_filetypes import JPEG_8X8, _pdf, _png

__all__ = ["PDF_BYTES", "PNG_BYTES", "JPEG_BYTES", "citizen", "item_detail", "fill_form", "declare", "upload",
           "stored_files", "new_uscc"]

PDF_BYTES = _pdf()
PNG_BYTES = _png()
JPEG_BYTES = JPEG_8X8
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def new_uscc() -> str:
    first17 = "91150900" + "".join(random.choice(_USCC_CHARS) for _ in range(9))
    return first17 + uscc_check_char(first17)


async def citizen(client: httpx.AsyncClient, capsys, *, name: str = "巴特尔", phone: str | None = None,
                  id_number_ending: str = "") -> dict:
    """A logged-in real-name citizen: tokens, `phone`, `id_number`, `name` and `headers`; with
    `id_number_ending`, an ID number whose check character is that one (such as "X")."""
    tokens = await login_citizen(client, capsys, phone=phone or new_phone())
    for _ in range(5):   # an ID number another test's citizen took already: draw again
        id_number = new_id_number()
        while not id_number.endswith(id_number_ending):
            id_number = new_id_number()
        patched = await client.patch("/api/v1/me", headers=bearer(tokens), json={"name": name, "id_number": id_number})
        if patched.status_code != 409:
            break
    assert patched.status_code == 200, patched.text
    return {**tokens, "id_number": id_number, "name": name, "headers": bearer(tokens)}


async def item_detail(client: httpx.AsyncClient, code: str) -> dict:
    detail = await client.get(f"/api/v1/service-items/{code}")
    assert detail.status_code == 200, detail.text
    return detail.json()


def fill_form(detail: dict, *, phone: str | None = None) -> dict:
    """Every required field of the item's form, with a value its definition takes."""
    today = clock.today().isoformat()
    form: dict = {}
    for field in detail["form"]:
        if not field["required"]:
            continue
        kind = field["type"]
        if kind in ("text", "textarea"):
            value = "测试"
        elif kind == "integer":
            value = max(field.get("min") or 0, 1) if (field.get("max") is None or field["max"] >= 1) else field["min"]
        elif kind == "decimal":
            value = str(max(field.get("min") or 0, 1))
        elif kind == "date":
            value = today
        elif kind == "choice":
            value = field["choices"][0]["value"]
        elif kind == "multi_choice":
            value = [field["choices"][0]["value"]]
        elif kind == "boolean":
            value = True
        elif kind == "phone":
            value = phone or new_phone()
        else:
            raise AssertionError(f"a form field type these tests do not fill: {kind}")
        form[field["name"]] = value
    return form


async def declare(client: httpx.AsyncClient, person: dict, item: str, *, enterprise: bool = False) -> dict:
    detail = await item_detail(client, item)
    body: dict = {"service_item": item, "form": fill_form(detail)}
    if enterprise:
        body["applicant"] = {"kind": "enterprise", "name": "乌兰察布市测试建设有限公司", "uscc": new_uscc()}
    declared = await client.post("/api/v1/cases", headers=person["headers"], json=body)
    assert declared.status_code == 201, declared.text
    return declared.json()


async def upload(client: httpx.AsyncClient, headers: dict, path: str, *, material: str | None, data: bytes,
                 filename: str = "scan.pdf", content_type: str = "application/pdf") -> httpx.Response:
    form = {"material": material} if material is not None else {}
    return await client.post(path, headers=headers, data=form, files={"file": (filename, data, content_type)})


def stored_files(root: Path) -> set[Path]:
    """Every file under the store's root (temporary ones too)."""
    return {path for path in Path(root).rglob("*") if path.is_file()} if Path(root).exists() else set()
