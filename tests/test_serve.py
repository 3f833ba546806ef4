"""The quick start as a user runs it: `ehall serve` in its own process (migrate, load the catalogue,
serve), `ehall staff create`, and schemathesis fuzzing every operation of /docs/openapi.json
without finding a 5xx."""
from __future__ import annotations

import asyncio
import json
import os
import re
import sys

import httpx
import pytest

from tests.conftest import BACKEND
from tests.serving import EHALL, ROOT, ehall_serve, serve_environment


@pytest.fixture(scope="module")
async def served(tmp_path_factory, fake_wechat):
    var = tmp_path_factory.mktemp("serve-var")
    log_path = var / "server.log"
    async with serve_environment(var, fake_wechat, "serve") as env, \
            ehall_serve(env, log_path, workers=2 if BACKEND == "postgres" else 1) as base:
        yield {"base": base, "env": env, "log": log_path}


async def _run(*args: str, env: dict, stdin: bytes | None = None, timeout: float = 600) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(*args, env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(stdin), timeout=timeout)
    return process.returncode, output.decode()


async def test_serve_prints_where_everything_is_and_loads_the_catalogue(served):
    printed = served["log"].read_text()
    for line in ("/api/v1/halls", "/docs", "/healthz", "catalogue loaded into the empty database"):
        assert line in printed
    async with httpx.AsyncClient(base_url=served["base"]) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = (await http.get("/readyz")).json()
        assert ready["database"] == "ok"
        assert ready["redis"] == ("ok" if BACKEND == "postgres" else "not configured (in-process)")
        halls = (await http.get("/api/v1/halls", params={"view": "flat"})).json()["items"]
        assert len([h for h in halls if h["level"] in ("city", "county")]) == 12
        docs = await http.get("/docs")
        assert docs.status_code == 200 and "html" in docs.headers["content-type"]
        metrics = await http.get("/metrics")
        assert 'ehall_http_requests_total{method="GET",route="api/v1/halls",status="200"}' in metrics.text \
            or 'route="/api/v1/halls"' in metrics.text


async def test_the_openapi_document_describes_every_route_with_schemas(served):
    async with httpx.AsyncClient(base_url=served["base"]) as http:
        document = (await http.get("/docs/openapi.json")).json()
    paths = document["paths"]
    expected = {
        "/api/v1/halls": ["get"], "/api/v1/halls/{code}": ["get"], "/api/v1/departments": ["get"],
        "/api/v1/service-items": ["get"], "/api/v1/service-items/{code}": ["get"],
        "/api/v1/auth/sms-code": ["post"], "/api/v1/auth/login": ["post"], "/api/v1/auth/refresh": ["post"],
        "/api/v1/auth/logout": ["post"], "/api/v1/me": ["get", "patch"], "/api/v1/staff/login": ["post"],
        "/mp/v1/auth/login": ["post"], "/mp/v1/auth/phone": ["post"], "/healthz": ["get"], "/readyz": ["get"],
        "/api/v1/tickets": ["get", "post"], "/api/v1/tickets/{ticket_id}": ["get"],
        "/api/v1/tickets/{ticket_id}/cancel": ["post"], "/api/v1/kiosk/tickets": ["post"],
        "/api/v1/staff/halls/{code}/windows/{number}/call-next": ["post"],
        "/api/v1/staff/halls/{code}/windows/{number}/recall": ["post"],
        "/api/v1/staff/halls/{code}/windows/{number}/skip": ["post"],
        "/api/v1/staff/halls/{code}/windows/{number}/start": ["post"],
        "/api/v1/staff/halls/{code}/windows/{number}/finish": ["post"],
        "/api/v1/staff/halls/{code}/windows/{number}/transfer": ["post"],
        "/api/v1/staff/tickets/{ticket_id}/requeue": ["post"], "/api/v1/staff/halls/{code}/queue": ["get"],
    }
    for path, methods in expected.items():
        for method in methods:
            operation = paths[path][method]
            assert operation["summary"], (path, method)
            assert operation["responses"], (path, method)
            # a POST that names its whole action in the path (cancel, call-next, requeue) has no body
            if method in ("post", "patch") and not path.endswith(("/cancel", "/call-next", "/requeue")):
                assert "application/json" in operation["requestBody"]["content"], (path, method)
    schemas = document["components"]["schemas"]
    assert {"Problem", "TokenPair", "HallDetail", "ServiceItemPage", "ProfilePatch"} <= set(schemas)
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


async def test_staff_create_from_the_command_line(served):
    env = {**served["env"], "EHALL_STAFF_PASSWORD": "a long enough password"}
    code, output = await _run(*EHALL, "staff", "create", "clerk-cli", "--role", "window_clerk@150921", env=env)
    assert code == 0, output
    async with httpx.AsyncClient(base_url=served["base"]) as http:
        login = await http.post("/api/v1/staff/login",
                                json={"username": "clerk-cli", "password": "a long enough password"})
    assert login.status_code == 200
    again, output = await _run(*EHALL, "staff", "create", "clerk-cli", "--role", "admin", env=env)
    assert again != 0 and "staff_username_taken" in output
    bad_role, output = await _run(*EHALL, "staff", "create", "x", "--role", "janitor", env=env)
    assert bad_role != 0 and "unknown role" in output


async def test_config_prints_the_settings_with_secrets_masked(served):
    env = {**served["env"], "EHALL_JWT_SECRET": "this-secret-must-not-be-printed",
           "EHALL_DATABASE_URL": "postgres://ehall:db-password-not-printed@db.internal:5432/ehall"}
    code, output = await _run(*EHALL, "config", env=env)
    assert code == 0, output
    printed = json.loads(output)
    assert printed["jwt_secret"] == "********"
    assert printed["database_url"] == "postgres://ehall:********@db.internal:5432/ehall"
    assert "db-password-not-printed" not in output
    assert printed["wechat"]["secret"] == "********"
    assert "this-secret-must-not-be-printed" not in output
    # the drivers also take a password as a query parameter
    env |= {"EHALL_DATABASE_URL": "postgres://ehall@db.internal:5432/ehall?password=db-query-password-not-printed",
            "EHALL_REDIS_URL": "redis://cache.internal:6379/0?password=redis-query-password-not-printed",
            "EHALL_METRICS__TOKEN": "metrics-token-not-printed"}
    code, output = await _run(*EHALL, "config", env=env)
    assert code == 0, output
    printed = json.loads(output)
    assert printed["database_url"] == "postgres://ehall@db.internal:5432/ehall?password=********"
    assert printed["redis_url"] == "redis://cache.internal:6379/0?password=********"
    assert printed["metrics"]["token"] == "********"
    for secret in ("db-query-password-not-printed", "redis-query-password-not-printed", "metrics-token-not-printed"):
        assert secret not in output


async def _schemathesis(served: dict, token: str, *extra: str) -> str:
    code, output = await _run(
        sys.executable, "-m", "schemathesis.cli", "run", f"{served['base']}/docs/openapi.json",
        # every answer must match the OpenAPI document: status, content type, headers and body schema
        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                    "response_headers_conformance,response_schema_conformance", "--max-examples", os.environ.get("EHALL_FUZZ_EXAMPLES", "40"),
        "--seed", "20261126", "--phases", "examples,coverage,fuzzing",
        "-H", f"Authorization: Bearer {token}", *extra, env=served["env"], timeout=1200)
    assert code == 0, output[-6000:]
    assert re.search(r"\d+ passed", output), output[-3000:]
    return output


async def test_schemathesis_finds_no_server_error_as_staff(served):
    env = {**served["env"], "EHALL_STAFF_PASSWORD": "fuzzing password 1"}
    await _run(*EHALL, "staff", "create", "fuzz-staff", "--role", "supervisor@150900", "--role",
               "window_clerk@150900", "--role", "kiosk@150900", env=env)
    async with httpx.AsyncClient(base_url=served["base"]) as http:
        token = (await http.post("/api/v1/staff/login", json={"username": "fuzz-staff",
                                                              "password": "fuzzing password 1"})).json()
    await _schemathesis(served, token["access_token"])
    logged = served["log"].read_text()
    assert "unhandled error" not in logged, logged[-6000:]


async def test_schemathesis_finds_no_server_error_as_a_citizen(served):
    """The citizen's own endpoints, reached with a citizen token got the way a user gets one."""
    phone = "13912345678"
    async with httpx.AsyncClient(base_url=served["base"]) as http:
        assert (await http.post("/api/v1/auth/sms-code", json={"phone": phone})).status_code == 202
        await asyncio.sleep(0.2)
        code = re.findall(r"\[SMS to 139\*\*\*\*5678\] .*?(\d{6})", served["log"].read_text())[-1]
        token = (await http.post("/api/v1/auth/login", json={"phone": phone, "code": code})).json()
    await _schemathesis(served, token["access_token"], "--include-path-regex", "^/(api/v1/me|api/v1/tickets|mp/v1/)")
    logged = served["log"].read_text()
    assert "unhandled error" not in logged, logged[-6000:]
    assert phone not in logged
