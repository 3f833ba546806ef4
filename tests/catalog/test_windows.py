"""A window clerk opens, pauses and closes windows of the hall (and department) they are posted to.

Every test makes its own window (tests/rows.py), so none depends on the status another test left."""
import asyncio

from backend.catalog.models import Window
from backend.kit.auth import Grant
from tests.factories import bearer, staff_tokens
from tests.rows import make_hall, make_window


def _path(window: Window) -> str:
    return f"/api/v1/staff/halls/{window.hall_id}/windows/{window.number}"


async def _shown(client, window: Window) -> dict:
    """The window as the hall detail shows it to the public."""
    windows = (await client.get(f"/api/v1/halls/{window.hall_id}")).json()["windows"]
    return next(w for w in windows if w["number"] == window.number)


class TestSetWindowStatus:
    async def test_a_clerk_of_zhuozi_county_is_refused_on_jining_district(self, client):
        window = await make_window("150902")
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150921"))
        refused = await client.patch(_path(window), headers=bearer(clerk), json={"status": "open"})
        assert refused.status_code == 403
        assert refused.json()["code"] == "out_of_scope"
        after = await _shown(client, window)
        assert after["status"] == "closed"

    async def test_the_same_clerk_opens_a_window_of_their_own_hall(self, client):
        window = await make_window("150921")
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150921"))
        response = await client.patch(_path(window), headers=bearer(clerk), json={"status": "open"})
        assert response.status_code == 200 and response.json()["status"] == "open"
        # the hall detail is partly kept in a cache; its windows are live
        assert (await _shown(client, window))["status"] == "open"
        closed = await client.patch(_path(window), headers=bearer(clerk), json={"status": "closed"})
        assert closed.json()["status"] == "closed"

    async def test_a_county_clerk_does_not_reach_down_to_township_halls_but_a_supervisor_does(self, client):
        township = await make_hall(parent="150921", level="township")
        window = await make_window(township.code)
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150921"))
        supervisor = await staff_tokens(client, Grant("supervisor", hall="150921"))
        assert (await client.patch(_path(window), headers=bearer(clerk), json={"status": "paused"})).status_code == 403
        assert (await client.patch(_path(window), headers=bearer(supervisor),
                                   json={"status": "paused"})).status_code == 200

    # issue 6, security #4: a department in a grant narrows it to that department's windows
    async def test_a_department_clerk_cannot_pause_another_departments_window(self, client):
        window = await make_window("150921", department="150921-bdc", status="open")
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150921", department="150921-ga"))
        refused = await client.patch(_path(window), headers=bearer(clerk), json={"status": "paused"})
        assert refused.status_code == 403
        assert refused.json()["code"] == "out_of_scope"
        assert (await Window.get(id=window.id)).status == "open"

    async def test_a_department_clerk_pauses_their_own_departments_window(self, client):
        window = await make_window("150921", department="150921-ga", status="open")
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150921", department="150921-ga"))
        response = await client.patch(_path(window), headers=bearer(clerk), json={"status": "paused"})
        assert response.status_code == 200 and response.json()["status"] == "paused"
        assert (await Window.get(id=window.id)).status == "paused"

    async def test_the_centres_comprehensive_windows_need_a_grant_without_a_department(self, client):
        window = await make_window("150921", department="")
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150921", department="150921-ga"))
        refused = await client.patch(_path(window), headers=bearer(clerk), json={"status": "open"})
        assert refused.status_code == 403 and refused.json()["code"] == "out_of_scope"
        assert (await Window.get(id=window.id)).status == "closed"
        whole_hall = await staff_tokens(client, Grant("window_clerk", hall="150921"))
        assert (await client.patch(_path(window), headers=bearer(whole_hall),
                                   json={"status": "open"})).status_code == 200

    async def test_hall_and_department_must_be_reached_by_the_same_grant(self, client):
        # the clerk grant reaches the hall but not the department, the supervisor grant the department
        # (any) but not the hall: together they are not a grant that reaches both
        window = await make_window("150921", department="150921-bdc")
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150921", department="150921-ga"),
                                   Grant("supervisor", hall="150902"))
        refused = await client.patch(_path(window), headers=bearer(clerk), json={"status": "open"})
        assert refused.status_code == 403 and refused.json()["code"] == "out_of_scope"
        assert (await Window.get(id=window.id)).status == "closed"

    async def test_a_county_supervisor_without_a_department_reaches_every_department(self, client):
        window = await make_window("150921", department="150921-bdc")
        supervisor = await staff_tokens(client, Grant("supervisor", hall="150921"))
        response = await client.patch(_path(window), headers=bearer(supervisor), json={"status": "open"})
        assert response.status_code == 200
        assert (await Window.get(id=window.id)).status == "open"

    async def test_an_approver_has_no_window_role(self, client):
        approver = await staff_tokens(client, Grant("approver", hall="150921"))
        response = await client.patch("/api/v1/staff/halls/150921/windows/01", headers=bearer(approver),
                                      json={"status": "open"})
        assert response.status_code == 403 and response.json()["code"] == "forbidden_role"

    async def test_unknown_window_and_bad_status(self, client):
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150921"))
        missing = await client.patch("/api/v1/staff/halls/150921/windows/99", headers=bearer(clerk),
                                     json={"status": "open"})
        assert missing.status_code == 404 and missing.json()["code"] == "window_not_found"
        bad = await client.patch("/api/v1/staff/halls/150921/windows/01", headers=bearer(clerk),
                                 json={"status": "broken"})
        assert bad.status_code == 422

    async def test_a_window_change_is_published_to_the_halls_channel(self, client, server):
        window = await make_window("150929")
        clerk = await staff_tokens(client, Grant("window_clerk", hall="150929"))
        async with server.app.ctx.rt.broker.subscribe("hall:150929") as messages:
            await client.patch(_path(window), headers=bearer(clerk), json={"status": "open"})
            message = await asyncio.wait_for(anext(messages), timeout=5)
        assert message == {"channel": "hall:150929", "event": "window.status_changed", "window": window.number,
                           "status": "open"}

    async def test_a_window_created_after_the_hall_was_read_shows_at_once(self, client):
        await client.get("/api/v1/halls/150923")             # the static part is now kept
        window = await make_window("150923", status="open")
        assert (await _shown(client, window))["status"] == "open"
