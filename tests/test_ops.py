"""Liveness, readiness and metrics."""


async def test_ready_when_the_database_and_redis_answer(client, settings):
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"
    assert response.json()["redis"] == ("ok" if settings.uses_redis else "not configured (in-process)")


async def test_not_ready_when_redis_is_unreachable(app_with):
    running = await app_with(redis_url="redis://127.0.0.1:1/0")
    async with running.client() as http:
        response = await http.get("/readyz")
        alive = await http.get("/healthz")
    assert response.status_code == 503
    assert response.json()["redis"] == "unreachable" and response.json()["database"] == "ok"
    assert alive.status_code == 200


async def test_metrics_count_requests_by_route_template_not_by_raw_path(client):
    await client.get("/api/v1/halls/150921")
    await client.get("/api/v1/halls/159999")
    text = (await client.get("/metrics")).text
    assert 'route="api/v1/halls/<code:str>"' in text
    assert "159999" not in text
    assert "ehall_http_request_duration_seconds_bucket" in text


async def test_every_response_carries_our_own_request_id_whatever_the_client_sends(client):
    # a client's id is logged beside ours, never taken as ours: it names the request in audit rows
    response = await client.get("/healthz", headers={"X-Request-Id": "abc12345-from-the-app"})
    assert response.headers["x-request-id"] != "abc12345-from-the-app"
    assert len(response.headers["x-request-id"]) == 32
    junk = await client.get("/healthz", headers={"X-Request-Id": "x" * 200})
    assert len(junk.headers["x-request-id"]) == 32


async def test_the_openapi_document_has_every_route_and_every_operation_has_a_summary(app_with):
    # an app of its own: sanic-ext keeps one specification per process, rebuilt by each app that starts
    server = await app_with()
    async with server.client() as client:
        document = (await client.get("/docs/openapi.json")).json()
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    for route in server.app.router.routes:
        if route.path.startswith("docs"):
            continue
        path = "/" + route.path
        for param in route.params.values():
            path = path.replace(f"<{param.name}:{param.label}>", "{" + param.name + "}")
        for method in route.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, (path, method)
            operation = document["paths"][path][method.lower()]
            assert operation.get("summary"), (path, method)
            assert "500" in operation["responses"], (path, method)
            if "requestBody" in operation:
                assert {"400", "413", "415", "422"} <= set(operation["responses"]), (path, method)
