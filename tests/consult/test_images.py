"""Photos of documents in a conversation: checked on their bytes and size (kit.filetypes), kept in the
Runtime's FileStore, read back only by the conversation's citizen and the staff whose grants reach it."""
from __future__ import annotations

import io

import qrcode
import qrcode.image.pure

from backend.consult.models import ConversationMessage
from backend.kit.auth import Grant
from tests.consult.conftest import ask, msg_id
from tests.factories import bearer, login_citizen, staff_tokens
from tests.kit.test_filetypes import JPEG_8X8
from tests.rows import make_department


def photo() -> bytes:
    out = io.BytesIO()
    qrcode.make(msg_id(), image_factory=qrcode.image.pure.PyPNGImage).save(out)
    return out.getvalue()


async def send(http, who: dict, path: str, data: bytes, *, name: str = "证件.png", content_type: str = "image/png",
               client_msg_id: str | None = None):
    return await http.post(path, headers=bearer(who), files={"file": (name, data, content_type)},
                           data={"client_msg_id": client_msg_id or msg_id()})


class TestSendImage:
    async def test_a_citizens_photo_is_kept_and_read_back_by_the_clerk(self, client, desk, citizen):
        clerk = await desk.staff(client)
        conversation = (await ask(client, citizen, department=desk.code))["conversation"]["id"]
        data = photo()
        sent = await send(client, citizen, f"/api/v1/conversations/{conversation}/images", data)
        assert sent.status_code == 201, sent.text
        image = sent.json()["image"]
        assert image["content_type"] == "image/png" and image["size"] == len(data) and sent.json()["text"] == ""
        read = await client.get(image["path"], headers=bearer(clerk))
        assert read.status_code == 200 and read.content == data and read.headers["content-type"] == "image/png"
        assert read.headers["cache-control"] == "private, no-store"
        assert (await client.get(image["path"], headers=bearer(citizen))).content == data

    async def test_a_clerk_sends_a_jpeg_and_a_retry_keeps_one_message(self, client, desk, citizen):
        clerk = await desk.staff(client)
        conversation = (await ask(client, citizen, department=desk.code))["conversation"]["id"]
        same = msg_id()
        path = f"/api/v1/staff/conversations/{conversation}/images"
        first = await send(client, clerk, path, JPEG_8X8, name="表格.jpg", content_type="image/jpeg", client_msg_id=same)
        again = await send(client, clerk, path, JPEG_8X8, name="表格.jpg", content_type="image/jpeg", client_msg_id=same)
        assert first.status_code == again.status_code == 201, first.text
        assert first.json()["id"] == again.json()["id"] and first.json()["image"]["content_type"] == "image/jpeg"
        assert await ConversationMessage.filter(conversation_id=conversation, sender_kind="staff").count() == 1

    async def test_what_is_not_an_allowed_image_is_refused_and_nothing_is_written(self, client, desk, citizen):
        conversation = (await ask(client, citizen, department=desk.code))["conversation"]["id"]
        path = f"/api/v1/conversations/{conversation}/images"
        renamed = await send(client, citizen, path, b"#!/bin/sh\nrm -rf /\n", name="photo.png")
        assert renamed.status_code == 422 and renamed.json()["code"] == "upload_type_mismatch"
        pdf = await send(client, citizen, path, b"%PDF-1.7\n1 0 obj\n%%EOF\n", name="a.pdf", content_type="application/pdf")
        assert pdf.status_code == 415 and pdf.json()["code"] == "upload_type_not_allowed"
        empty = await send(client, citizen, path, b"", name="empty.png")
        assert empty.status_code == 422
        no_file = await client.post(path, headers=bearer(citizen), data={"client_msg_id": msg_id()},
                                    files={"other": ("x.png", photo(), "image/png")})
        assert no_file.status_code == 422 and no_file.json()["errors"][0]["field"] == "file"
        no_id = await client.post(path, headers=bearer(citizen), files={"file": ("x.png", photo(), "image/png")})
        assert no_id.status_code == 422
        assert await ConversationMessage.filter(conversation_id=conversation).count() == 1

    async def test_a_photo_over_the_size_limit_is_a_413(self, client, capsys, app_with, desk):
        small = await app_with(files={"max_upload_bytes": 1024})
        async with small.client() as http:
            citizen = await login_citizen(http, capsys)
            conversation = (await ask(http, citizen, department=desk.code))["conversation"]["id"]
            big = qrcode_big()
            assert len(big) > 1024
            refused = await send(http, citizen, f"/api/v1/conversations/{conversation}/images", big)
        assert refused.status_code == 413 and refused.json()["code"] == "upload_too_large"
        assert await ConversationMessage.filter(conversation_id=conversation).count() == 1


def qrcode_big() -> bytes:
    out = io.BytesIO()
    qrcode.make("x" * 1500, image_factory=qrcode.image.pure.PyPNGImage).save(out)
    return out.getvalue()


class TestReadImage:
    async def test_another_citizen_and_staff_of_another_department_cannot_read_it(self, client, capsys, desk, citizen):
        conversation = (await ask(client, citizen, department=desk.code))["conversation"]["id"]
        image = (await send(client, citizen, f"/api/v1/conversations/{conversation}/images", photo())).json()["image"]
        other = await login_citizen(client, capsys)
        assert (await client.get(image["path"], headers=bearer(other))).status_code == 404
        elsewhere = await make_department(desk.hall.code)
        stranger = await staff_tokens(client, Grant("window_clerk", hall=desk.hall.code, department=elsewhere.code))
        assert (await client.get(image["path"], headers=bearer(stranger))).status_code == 403
        text_message = (await client.get(f"/api/v1/conversations/{conversation}/messages",
                                         headers=bearer(citizen))).json()["items"][0]["id"]
        missing = await client.get(f"/api/v1/conversations/{conversation}/messages/{text_message}/image",
                                   headers=bearer(citizen))
        assert missing.status_code == 404 and missing.json()["code"] == "conversation_image_not_found"
