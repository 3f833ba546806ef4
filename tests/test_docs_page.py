"""/docs on a hall's intranet: the page, ReDoc and everything they load come from this server.

The rendering test drives Debian's headless Chromium (`apt-get install chromium`; .ci/run installs it)
with every host name but loopback failing to resolve, and records each URL the browser asks for.
Without Chromium the test fails: a skipped test would hide a blank /docs again.
"""
from __future__ import annotations

import asyncio
import gzip
import json
import html
import os
import re
import shutil
from importlib.resources import files
from urllib.parse import urlsplit

import pytest

CHROMIUM = os.environ.get("EHALL_TEST_CHROMIUM", "chromium")
ABSOLUTE_URL = re.compile(r"""(?:https?:)?//[^\s"'<>()]+""", re.IGNORECASE)


def chromium_executable() -> str:
    path = shutil.which(CHROMIUM)
    if path is None:
        pytest.fail(f"{CHROMIUM!r} not found: the /docs test needs headless Chromium "
                    "(apt-get install --no-install-recommends chromium; .ci/run does it)")
    return path


def requests_of_the_page(net_log: dict, origin: str) -> set[str]:
    """The URLs the page asked for, from Chromium's --log-net-log: those with the page as initiator.
    Chromium's own services (clock, autofill, updates) ask without one, and fail on the closed network."""
    event_types = {number: name for name, number in net_log["constants"]["logEventTypes"].items()}
    return {event["params"]["url"] for event in net_log["events"]
            if event_types[event["type"]] == "URL_REQUEST_START_JOB"
            and event.get("params", {}).get("initiator") == origin}


async def render_offline(url: str, tmp_path) -> tuple[str, set[str]]:
    """The DOM after the page's scripts ran, and the URLs the page requested on the way."""
    net_log = tmp_path / "net-log.json"
    process = await asyncio.create_subprocess_exec(
        chromium_executable(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        f"--user-data-dir={tmp_path / 'profile'}", f"--log-net-log={net_log}",
        "--virtual-time-budget=20000", "--dump-dom", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]
    origin = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}"
    return stdout.decode(), requests_of_the_page(json.loads(net_log.read_text()), origin)


class TestDocsPage:
    async def test_shows_the_operations_in_chromium_with_the_network_closed(self, app_with, tmp_path):
        # an app of its own: sanic-ext keeps one specification per process, rebuilt by each app that starts
        server = await app_with()
        async with server.client() as http:
            document = (await http.get("/docs/openapi.json")).json()
        summaries = [operation["summary"] for item in document["paths"].values() for operation in item.values()]
        dom, urls = await render_offline(f"{server.base_url}/docs", tmp_path)
        shown = [summary for summary in summaries if html.escape(summary, quote=False) in dom]
        assert len(shown) == len(summaries), set(summaries) - set(shown)
        assert "Something went wrong" not in dom
        assert f"{server.base_url}/docs/openapi.json" in urls
        outside = {url for url in urls if not url.startswith(server.base_url + "/")}
        assert not outside, outside

    @pytest.mark.parametrize("path", ["/docs", "/docs/redoc"])
    async def test_references_no_url_outside_the_server(self, client, path):
        response = await client.get(path)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
        assert not ABSOLUTE_URL.findall(response.text), ABSOLUTE_URL.findall(response.text)
        assert "fonts.googleapis" not in response.text and "@import" not in response.text
        scripts = re.findall(r"""<script[^>]*\bsrc=["']([^"']+)""", response.text)
        assert scripts and all(src.startswith("/docs/") for src in scripts), scripts

    @pytest.mark.parametrize("path", ["/docs/swagger", "/docs/oauth2-redirect.html"])
    async def test_the_swagger_ui_that_needs_a_cdn_is_not_served(self, client, path):
        assert (await client.get(path)).status_code == 404


class TestRedocBundle:
    async def bundle_url(self, client) -> str:
        page = (await client.get("/docs")).text
        return next(src for src in re.findall(r"""<script[^>]*\bsrc=["']([^"']+)""", page) if "redoc" in src)

    async def test_is_the_packaged_file_gzipped_and_cached_for_a_year(self, client):
        packaged = (files("backend.ops") / "static" / "redoc" / "redoc.standalone.js").read_bytes()
        url = await self.bundle_url(client)
        async with client.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as response:
            wire = b"".join([chunk async for chunk in response.aiter_raw()])
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/javascript")
        assert response.headers["content-encoding"] == "gzip"
        assert gzip.decompress(wire) == packaged and len(wire) < len(packaged) // 2
        assert "immutable" in response.headers["cache-control"]
        assert "max-age=31536000" in response.headers["cache-control"]
        assert response.headers["vary"] == "Accept-Encoding"

    async def test_is_sent_plain_to_a_client_without_gzip(self, client):
        packaged = (files("backend.ops") / "static" / "redoc" / "redoc.standalone.js").read_bytes()
        response = await client.get(await self.bundle_url(client), headers={"Accept-Encoding": "identity"})
        assert response.status_code == 200 and "content-encoding" not in response.headers
        assert response.content == packaged

    async def test_a_client_that_has_it_gets_304_without_a_body(self, client):
        url = await self.bundle_url(client)
        first = await client.get(url)
        again = await client.get(url, headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304 and again.content == b""

    async def test_its_url_changes_with_its_content(self, client):
        digest = (await client.get(await self.bundle_url(client))).headers["etag"].strip('"').removesuffix("-gz")
        assert digest in await self.bundle_url(client)

    async def test_a_url_with_another_digest_is_not_found(self, client):
        # a year-long cache under one URL must never hold two versions of the bundle
        response = await client.get("/docs/assets/0123456789abcdef0123456789abcdef/redoc.standalone.js")
        assert response.status_code == 404
