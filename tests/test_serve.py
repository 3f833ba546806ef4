"""The quick start as a user runs it: `ehall serve` in its own process (migrate, load the catalogue,
serve), `ehall staff create`, and schemathesis fuzzing every operation of /docs/openapi.json
without finding a 5xx."""
from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import sqlite3
import sys

import asyncpg
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
    # no terminal, whatever pytest was started from: stdin is a pipe or /dev/null
    process = await asyncio.create_subprocess_exec(
        *args, env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL)
    output, _ = await asyncio.wait_for(process.communicate(stdin), timeout=timeout)
    return process.returncode, output.decode()


async def _run_at_terminal(*args: str, env: dict, answers: list[str], timeout: float = 120) -> tuple[int, str]:
    """Run with a pseudo-terminal as stdin, typing each answer once the next prompt has appeared (a
    password prompt flushes what was typed ahead). A new session has no controlling terminal, so
    getpass reads this one and never the developer's."""
    controller, terminal = pty.openpty()
    process = await asyncio.create_subprocess_exec(
        *args, env=env, cwd=ROOT, stdin=terminal, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    os.close(terminal)
    output = b""
    try:
        async with asyncio.timeout(timeout):
            for typed, answer in enumerate(answers, start=1):
                while output.count(b"password") < typed:
                    chunk = await process.stdout.read(4096)
                    assert chunk, output.decode()
                    output += chunk
                os.write(controller, answer.encode() + b"\n")
            output += await process.stdout.read()
            await process.wait()
    finally:
        os.close(controller)
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
        "/api/v1/auth/logout": ["post"], "/api/v1/me": ["get", "patch", "delete"],
        "/api/v1/me/export": ["get"], "/api/v1/staff/login": ["post"],
        "/mp/v1/auth/login": ["post"], "/mp/v1/auth/phone": ["post"], "/healthz": ["get"], "/readyz": ["get"],
        "/api/v1/halls/{code}/slots": ["get"], "/api/v1/appointments": ["get", "post"],
        "/api/v1/appointments/{appointment_id}": ["get"], "/api/v1/appointments/{appointment_id}/cancel": ["post"],
        "/api/v1/appointments/{appointment_id}/reschedule": ["post"], "/api/v1/appointments/{appointment_id}/qr": ["get"],
        "/api/v1/tickets": ["get", "post"], "/api/v1/tickets/{ticket_id}": ["get"],
        "/api/v1/tickets/{ticket_id}/cancel": ["post"], "/api/v1/kiosk/tickets": ["post"], "/api/v1/kiosk/check-in": ["post"],
        "/api/v1/staff/halls/{code}/windows/{number}/call-next": ["post"],
        "/api/v1/staff/halls/{code}/windows/{number}/recall": ["post"],
        "/api/v1/staff/halls/{code}/windows/{number}/skip": ["post"],
        "/api/v1/staff/halls/{code}/windows/{number}/start": ["post"],
        "/api/v1/staff/halls/{code}/windows/{number}/finish": ["post"],
        "/api/v1/staff/halls/{code}/windows/{number}/transfer": ["post"],
        "/api/v1/staff/tickets/{ticket_id}/requeue": ["post"], "/api/v1/staff/halls/{code}/queue": ["get"],
        "/api/v1/staff/tickets/{ticket_id}/priority": ["post"],
        "/mp/v1/subscriptions": ["post"], "/api/v1/me/notifications": ["get"],
        "/api/v1/me/notifications/{notification_id}/read": ["post"], "/api/v1/admin/notifications": ["get"],
        "/api/v1/admin/notifications/{delivery_id}/retry": ["post"], "/api/v1/notify/receipts/aliyun": ["post"],
        "/api/v1/notify/receipts/tencent": ["post"],
        "/api/v1/conversations": ["get", "post"], "/api/v1/conversations/{conversation_id}": ["get"],
        "/api/v1/conversations/{conversation_id}/messages": ["get", "post"],
        "/api/v1/staff/conversations": ["get"], "/api/v1/staff/conversations/{conversation_id}/messages": ["get", "post"],
        "/api/v1/staff/conversations/{conversation_id}/claim": ["post"],
        "/api/v1/staff/conversations/{conversation_id}/transfer": ["post"],
        "/api/v1/staff/conversations/{conversation_id}/resolve": ["post"], "/api/v1/faq": ["get"],
        "/api/v1/staff/canned-answers": ["get"], "/api/v1/supervision/consulting": ["get"],
    }
    for path, methods in expected.items():
        for method in methods:
            operation = paths[path][method]
            assert operation["summary"], (path, method)
            assert operation["responses"], (path, method)
            # a POST that names its whole action in the path (cancel, call-next, requeue) has no body
            if method in ("post", "patch") and not path.endswith(("/cancel", "/call-next", "/requeue", "/read", "/retry",
                                                                  "/claim", "/resolve")):
                assert "application/json" in operation["requestBody"]["content"], (path, method)
    schemas = document["components"]["schemas"]
    assert {"Problem", "TokenPair", "HallDetail", "ServiceItemPage", "ProfilePatch", "CitizenExport"} <= set(schemas)
    confirm = next(p for p in paths["/api/v1/me"]["delete"]["parameters"] if p["name"] == "confirm")
    assert confirm["required"] and confirm["schema"]["enum"] == ["true"]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


async def _staff_login(served: dict, username: str, password: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=served["base"]) as http:
        return await http.post("/api/v1/staff/login", json={"username": username, "password": password})


def _english(env: dict, **changes: str) -> dict:
    return {**{k: v for k, v in env.items() if k not in ("LANG", "EHALL_STAFF_PASSWORD")}, "LANG": "C.UTF-8",
            **changes}


async def test_staff_create_from_the_command_line(served):
    env = _english(served["env"], EHALL_STAFF_PASSWORD="a long enough password")
    code, output = await _run(*EHALL, "staff", "create", "clerk-cli", "--role", "window_clerk@150921", env=env)
    assert code == 0, output
    assert (await _staff_login(served, "clerk-cli", "a long enough password")).status_code == 200
    again, output = await _run(*EHALL, "staff", "create", "clerk-cli", "--role", "admin", env=env)
    assert again != 0 and "This username is already taken." in output
    assert "staff_username_taken" not in output and "Traceback" not in output
    bad_role, output = await _run(*EHALL, "staff", "create", "clerk-x", "--role", "janitor", env=env)
    assert bad_role != 0 and 'There is no role "janitor"' in output


async def test_staff_create_waits_for_another_writer_instead_of_failing(served):
    """The command line writes while the server does (the periodic jobs renew their leases every few
    seconds). Another writer holds the database while `staff create` starts; the command must wait
    for it and succeed. On SQLite a transaction that read before the other writer committed cannot
    write afterwards: this failed ("database is locked") until transactions began IMMEDIATE."""
    env = {**served["env"], "EHALL_STAFF_PASSWORD": "a long enough password"}
    url = env["EHALL_DATABASE_URL"]
    holding = 3.0  # longer than the command takes to start and open its transaction
    if BACKEND == "sqlite":
        writer = sqlite3.connect(url.removeprefix("sqlite://"), isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE catalog_revision SET revision = revision")
        create = asyncio.create_task(_run(*EHALL, "staff", "create", "clerk-waits", "--role",
                                          "window_clerk@150921", env=env))
        await asyncio.sleep(holding)
        writer.execute("COMMIT")
        writer.close()
    else:
        writer = await asyncpg.connect(url)
        transaction = writer.transaction()
        await transaction.start()
        await writer.execute("UPDATE catalog_revision SET revision = revision")
        create = asyncio.create_task(_run(*EHALL, "staff", "create", "clerk-waits", "--role",
                                          "window_clerk@150921", env=env))
        await asyncio.sleep(holding)
        await transaction.commit()
        await writer.close()
    code, output = await create
    assert code == 0, output
    assert (await _staff_login(served, "clerk-waits", "a long enough password")).status_code == 200


@pytest.mark.parametrize("argv,said", [
    (["clerk two", "--role", "window_clerk@150921"], 'The username "clerk two" cannot be used'),
    (["clerk-nohall", "--role", "window_clerk@159999"], 'There is no service hall with the code "159999"'),
    (["clerk-nodept", "--role", "approver@150921/zjw"], 'The hall "150921" has no department with the code "zjw"'),
])
async def test_staff_create_refuses_what_the_catalogue_does_not_have_in_words(served, argv, said):
    env = _english(served["env"], EHALL_STAFF_PASSWORD="a long enough password")
    code, output = await _run(*EHALL, "staff", "create", *argv, env=env)
    assert code != 0 and said in output, output
    assert "Traceback" not in output
    assert (await _staff_login(served, argv[0], "a long enough password")).status_code == 401


async def test_staff_create_answers_in_the_language_of_lang(served):
    env = _english(served["env"], EHALL_STAFF_PASSWORD="a long enough password", LANG="zh_CN.UTF-8")
    code, output = await _run(*EHALL, "staff", "create", "clerk-zh", "--role", "window_clerk@159999", env=env)
    assert code != 0 and "没有代码为“159999”的服务大厅" in output, output
    code, output = await _run(*EHALL, "staff", "create", "clerk-mn", "--role", "window_clerk@159999",
                              env={**env, "LANG": "mn_MN.UTF-8"})
    assert code != 0 and any("\u1800" <= ch <= "\u18af" for ch in output), output


async def test_staff_create_without_a_terminal_or_password_says_how_to_give_one(served):
    code, output = await _run(*EHALL, "staff", "create", "clerk-notty", "--role", "admin", env=_english(served["env"]))
    assert code != 0
    assert "EHALL_STAFF_PASSWORD" in output and "Traceback" not in output, output
    code, output = await _run(*EHALL, "staff", "create", "clerk-notty", "--role", "admin",
                              env=_english(served["env"]), stdin=b"a long enough password\n")
    assert code != 0 and "EHALL_STAFF_PASSWORD" in output, output


async def test_staff_create_asks_for_the_password_twice_at_a_terminal(served):
    env = _english(served["env"])
    code, output = await _run_at_terminal(*EHALL, "staff", "create", "clerk-tty", "--role", "admin", env=env,
                                          answers=["first long password", "another long password"])
    assert code != 0 and "The two passwords do not match" in output, output
    assert (await _staff_login(served, "clerk-tty", "first long password")).status_code == 401
    code, output = await _run_at_terminal(*EHALL, "staff", "create", "clerk-tty", "--role", "admin", env=env,
                                          answers=["short"])
    assert code != 0 and "The password must have 10 to 256 characters" in output, output
    code, output = await _run_at_terminal(*EHALL, "staff", "create", "clerk-tty", "--role", "admin", env=env,
                                          answers=["typed twice alike", "typed twice alike"])
    assert code == 0, output
    assert "typed twice alike" not in output
    assert (await _staff_login(served, "clerk-tty", "typed twice alike")).status_code == 200


async def test_staff_grants_and_disable_from_the_command_line(served):
    """With Redis (the postgres run) the server hears of it at once; on the embedded default the
    revocation lives in the server's memory, out of the CLI's reach: the refresh token is dead but an
    access token lives out its minutes (README, "Staff accounts")."""
    env = _english(served["env"], EHALL_STAFF_PASSWORD="a long enough password")
    assert (await _run(*EHALL, "staff", "create", "clerk-moves", "--role", "window_clerk@150921", env=env))[0] == 0
    tokens = (await _staff_login(served, "clerk-moves", "a long enough password")).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}

    code, output = await _run(*EHALL, "staff", "grants", "clerk-moves", "--role", "supervisor@150900",
                              "--role", "approver@150900/zjw", env=env)
    assert code == 0 and "supervisor@150900, approver@150900/zjw" in output, output
    async with httpx.AsyncClient(base_url=served["base"]) as http:
        old_token = await http.get("/api/v1/staff/me", headers=headers)
        refresh = await http.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refresh.status_code == 401
        if BACKEND == "postgres":
            assert old_token.status_code == 401 and old_token.json()["code"] == "session_ended"
        else:
            assert old_token.status_code == 200 and "up to 900 s" in output
        again = (await _staff_login(served, "clerk-moves", "a long enough password")).json()
        me = (await http.get("/api/v1/staff/me", headers={"Authorization": f"Bearer {again['access_token']}"}))
        assert [g["role"] for g in me.json()["grants"]] == ["supervisor", "approver"]

        code, output = await _run(*EHALL, "staff", "disable", "clerk-moves", env=env)
        assert code == 0, output
        after = await http.get("/api/v1/staff/me", headers={"Authorization": f"Bearer {again['access_token']}"})
        assert after.status_code == 401
        if BACKEND == "postgres":
            assert after.json()["code"] == "session_ended"
    login = await _staff_login(served, "clerk-moves", "a long enough password")
    assert login.status_code == 403 and login.json()["code"] == "account_disabled"
    unknown, output = await _run(*EHALL, "staff", "disable", "nobody-here", env=env)
    assert unknown != 0 and 'There is no staff member with the username "nobody-here"' in output


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
    code, output = await _run(*EHALL, "staff", "create", "fuzz-staff", "--role", "supervisor@150900", "--role",
                              "window_clerk@150900", "--role", "kiosk@150900", env=env)
    assert code == 0, output
    async with httpx.AsyncClient(base_url=served["base"]) as http:
        login = await http.post("/api/v1/staff/login", json={"username": "fuzz-staff",
                                                             "password": "fuzzing password 1"})
    assert login.status_code == 200, login.text
    await _schemathesis(served, login.json()["access_token"])
    logged = served["log"].read_text()
    assert "unhandled error" not in logged, logged[-6000:]


async def _citizen_token(served: dict, phone: str) -> str:
    async with httpx.AsyncClient(base_url=served["base"]) as http:
        assert (await http.post("/api/v1/auth/sms-code", json={"phone": phone})).status_code == 202
        await asyncio.sleep(0.2)
        masked = re.escape(phone[:3] + "****" + phone[-4:])
        code = re.findall(rf"\[SMS to {masked}\] .*?(\d{{6}})", served["log"].read_text())[-1]
        return (await http.post("/api/v1/auth/login", json={"phone": phone, "code": code})).json()["access_token"]


async def test_schemathesis_finds_no_server_error_as_a_citizen(served):
    """The citizen's own endpoints, reached with a citizen token got the way a user gets one. Closing
    the account is fuzzed last, with a citizen of its own: once closed, the token would be refused
    everywhere and the other operations would not be reached."""
    phone, closing_phone = "13912345678", "13912345679"
    await _schemathesis(served, await _citizen_token(served, phone),
                        "--include-path-regex", "^/(api/v1/me|api/v1/appointments|api/v1/tickets|api/v1/conversations|mp/v1/)",
                        "--exclude-method", "DELETE")
    await _schemathesis(served, await _citizen_token(served, closing_phone),
                        "--include-name", "DELETE /api/v1/me")
    logged = served["log"].read_text()
    assert "unhandled error" not in logged, logged[-6000:]
    assert phone not in logged and closing_phone not in logged
