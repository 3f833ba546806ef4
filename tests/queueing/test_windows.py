"""Window clerks call, recall, skip, start, finish, transfer and requeue tickets: each a compare-and-swap
on the ticket's status, scoped to the window's hall and department like the window switch."""
import asyncio

from backend.kit.auth import Grant
from backend.kit.models import OutboxEvent
from backend.queueing.models import Ticket
from tests.factories import bearer, login_citizen, staff_tokens
from tests.rows import make_category, make_department
from tests.queueing.conftest import kiosk_ticket, later


async def _call(client, queue_hall, window, headers) -> dict:
    response = await client.post(queue_hall.window_path(window, "call-next"), headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def _act(client, queue_hall, at, action, headers, ticket: dict, **body):
    return await client.post(queue_hall.window_path(at, action), headers=headers,
                             json={"ticket": ticket["id"], **body})


class TestCallNext:
    async def test_calls_by_priority_then_arrival(self, client, queue_hall, kiosk, clerk):
        first = await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        later(1)
        second = await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        later(1)
        elderly = await kiosk_ticket(client, kiosk, queue_hall.code, "A", priority="elderly")
        later(1)
        green = await kiosk_ticket(client, kiosk, queue_hall.code, "A", priority="green_channel")
        window = await queue_hall.window("A")
        called = []
        for ticket in range(4):
            current = await _call(client, queue_hall, window, clerk)
            called.append(current["id"])
            assert current["status"] == "called" and current["window"] == window.number
            await _act(client, queue_hall, window, "start", clerk, current)
            assert (await _act(client, queue_hall, window, "finish", clerk, current)).status_code == 200
        assert called == [green["id"], elderly["id"], first["id"], second["id"]]

    async def test_a_window_calls_only_the_queues_it_serves(self, client, queue_hall, kiosk, clerk):
        await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        b_ticket = await kiosk_ticket(client, kiosk, queue_hall.code, "B")
        window = await queue_hall.window("B")
        assert (await _call(client, queue_hall, window, clerk))["id"] == b_ticket["id"]

    async def test_two_windows_calling_at_once_get_different_tickets(self, client, queue_hall, kiosk, clerk):
        tickets = [await kiosk_ticket(client, kiosk, queue_hall.code, "A") for _ in range(6)]
        windows = [await queue_hall.window("A") for _ in range(6)]
        responses = await asyncio.gather(*(client.post(queue_hall.window_path(w, "call-next"), headers=clerk)
                                           for w in windows))
        assert [r.status_code for r in responses] == [200] * 6, [r.text for r in responses]
        called = [r.json()["id"] for r in responses]
        assert sorted(called) == sorted(t["id"] for t in tickets)
        rows = await Ticket.filter(hall_code=queue_hall.code).values_list("status", "window_number")
        assert sorted(w for _, w in rows) == sorted(w.number for w in windows)

    async def test_more_windows_than_tickets_give_each_ticket_once_and_queue_empty_to_the_rest(
            self, client, queue_hall, kiosk, clerk):
        tickets = [await kiosk_ticket(client, kiosk, queue_hall.code, "A") for _ in range(3)]
        windows = [await queue_hall.window("A") for _ in range(7)]
        responses = await asyncio.gather(*(client.post(queue_hall.window_path(w, "call-next"), headers=clerk)
                                           for w in windows))
        won = [r.json()["id"] for r in responses if r.status_code == 200]
        assert sorted(won) == sorted(t["id"] for t in tickets)
        assert sorted(r.json()["code"] for r in responses if r.status_code != 200) == ["queue_empty"] * 4

    async def test_an_empty_queue_is_404_queue_empty(self, client, queue_hall, clerk):
        window = await queue_hall.window("A", "B")
        response = await client.post(queue_hall.window_path(window, "call-next"), headers=clerk)
        assert response.status_code == 404 and response.json()["code"] == "queue_empty"

    async def test_a_window_must_be_open_to_call(self, client, queue_hall, kiosk, clerk):
        await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        window = await queue_hall.window("A", status="paused")
        refused = await client.post(queue_hall.window_path(window, "call-next"), headers=clerk)
        assert refused.status_code == 409 and refused.json()["code"] == "window_not_open"
        assert refused.json()["window_status"] == "paused"
        assert await Ticket.filter(hall_code=queue_hall.code, status="waiting").count() == 1

    async def test_a_window_with_a_ticket_still_at_it_cannot_call_another(self, client, queue_hall, kiosk, clerk):
        await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        window = await queue_hall.window("A")
        current = await _call(client, queue_hall, window, clerk)
        busy = await client.post(queue_hall.window_path(window, "call-next"), headers=clerk)
        assert busy.status_code == 409 and busy.json()["code"] == "window_busy"
        assert busy.json()["number"] == current["number"]

    async def test_a_clerk_of_another_hall_is_refused(self, client, queue_hall, kiosk):
        await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        window = await queue_hall.window("A")
        county_clerk = bearer(await staff_tokens(client, Grant("window_clerk", hall="150921")))
        refused = await client.post(queue_hall.window_path(window, "call-next"), headers=county_clerk)
        assert refused.status_code == 403 and refused.json()["code"] == "out_of_scope"
        assert await Ticket.filter(hall_code=queue_hall.code, status="waiting").count() == 1

    async def test_a_clerk_of_another_department_is_refused(self, client, queue_hall, kiosk):
        await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        # two departments of the test's own hall (a grant's department must sit in its hall)
        bdc, ga = (await make_department(queue_hall.code)).code, (await make_department(queue_hall.code)).code
        window = await queue_hall.window("A", department=bdc)
        ga_clerk = bearer(await staff_tokens(client, Grant("window_clerk", hall=queue_hall.code,
                                                           department=ga)))
        refused = await client.post(queue_hall.window_path(window, "call-next"), headers=ga_clerk)
        assert refused.status_code == 403 and refused.json()["code"] == "out_of_scope"
        bdc_clerk = bearer(await staff_tokens(client, Grant("window_clerk", hall=queue_hall.code,
                                                            department=bdc)))
        assert (await client.post(queue_hall.window_path(window, "call-next"), headers=bdc_clerk)).status_code == 200

    async def test_an_unknown_window_is_404(self, client, queue_hall, clerk):
        response = await client.post(f"/api/v1/staff/halls/{queue_hall.code}/windows/NOPE99/call-next",
                                     headers=clerk)
        assert response.status_code == 404 and response.json()["code"] == "window_not_found"

    async def test_the_called_holder_sees_the_window(self, client, capsys, queue_hall, clerk):
        citizen = bearer(await login_citizen(client, capsys))
        mine = (await client.post("/api/v1/tickets", headers=citizen,
                                  json={"hall": queue_hall.code, "category": "A"})).json()
        window = await queue_hall.window("A")
        await _call(client, queue_hall, window, clerk)
        shown = (await client.get(f"/api/v1/tickets/{mine['id']}", headers=citizen)).json()
        assert shown["status"] == "called" and shown["window"] == window.number and shown["people_ahead"] is None


class TestWindowActions:
    async def test_start_then_finish_and_a_stale_finish_is_409_with_the_current_state(
            self, client, queue_hall, kiosk, clerk):
        await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        window = await queue_hall.window("A")
        ticket = await _call(client, queue_hall, window, clerk)
        too_early = await _act(client, queue_hall, window, "finish", clerk, ticket)
        assert too_early.status_code == 409 and too_early.json()["code"] == "ticket_state_conflict"
        assert too_early.json()["ticket_status"] == "called"
        assert (await _act(client, queue_hall, window, "start", clerk, ticket)).json()["status"] == "serving"
        assert (await _act(client, queue_hall, window, "finish", clerk, ticket)).json()["status"] == "done"
        stale = await _act(client, queue_hall, window, "finish", clerk, ticket)
        assert stale.status_code == 409 and stale.json()["ticket_status"] == "done"
        assert await OutboxEvent.filter(aggregate=f"ticket:{ticket['id']}", kind="ticket.finished").count() == 1

    async def test_two_concurrent_finishes_change_the_ticket_once(self, client, queue_hall, kiosk, clerk):
        await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        window = await queue_hall.window("A")
        ticket = await _call(client, queue_hall, window, clerk)
        await _act(client, queue_hall, window, "start", clerk, ticket)
        responses = await asyncio.gather(*(_act(client, queue_hall, window, "finish", clerk, ticket)
                                           for _ in range(4)))
        assert sorted(r.status_code for r in responses) == [200, 409, 409, 409]
        assert await OutboxEvent.filter(aggregate=f"ticket:{ticket['id']}", kind="ticket.finished").count() == 1

    async def test_another_windows_ticket_cannot_be_acted_on(self, client, queue_hall, kiosk, clerk):
        await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        mine, other = await queue_hall.window("A"), await queue_hall.window("A")
        ticket = await _call(client, queue_hall, mine, clerk)
        refused = await _act(client, queue_hall, other, "start", clerk, ticket)
        assert refused.status_code == 409 and refused.json()["ticket_window"] == mine.number
        missing = await client.post(queue_hall.window_path(mine, "start"), headers=clerk, json={"ticket": 2**62})
        assert missing.status_code == 404 and missing.json()["code"] == "ticket_not_found"

    async def test_recall_keeps_the_ticket_called(self, client, queue_hall, kiosk, clerk):
        await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        window = await queue_hall.window("A")
        ticket = await _call(client, queue_hall, window, clerk)
        recalled = await _act(client, queue_hall, window, "recall", clerk, ticket)
        assert recalled.status_code == 200 and recalled.json()["status"] == "called"
        assert (await Ticket.get(id=ticket["id"])).recalls == 1

    async def test_skip_makes_it_missed_and_frees_the_window(self, client, queue_hall, kiosk, clerk):
        await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        following = await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        window = await queue_hall.window("A")
        ticket = await _call(client, queue_hall, window, clerk)
        assert (await _act(client, queue_hall, window, "skip", clerk, ticket)).json()["status"] == "missed"
        assert (await _call(client, queue_hall, window, clerk))["id"] == following["id"]

    async def test_a_body_without_a_ticket_is_422(self, client, queue_hall, clerk):
        window = await queue_hall.window("A")
        response = await client.post(queue_hall.window_path(window, "start"), headers=clerk, json={})
        assert response.status_code == 422


class TestTransfer:
    async def test_to_another_queue_it_keeps_its_place_by_arrival(self, client, queue_hall, kiosk, clerk):
        transferred = await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        later(1)
        b_waiting = await kiosk_ticket(client, kiosk, queue_hall.code, "B")
        a_window, b_window = await queue_hall.window("A"), await queue_hall.window("B")
        ticket = await _call(client, queue_hall, a_window, clerk)
        moved = await _act(client, queue_hall, a_window, "transfer", clerk, ticket, category="B")
        assert moved.status_code == 200, moved.text
        assert moved.json()["status"] == "waiting" and moved.json()["category"] == "B"
        assert moved.json()["number"] == transferred["number"] and moved.json()["people_ahead"] == 0
        assert (await _call(client, queue_hall, b_window, clerk))["id"] == transferred["id"]
        await _act(client, queue_hall, b_window, "start", clerk, ticket)
        await _act(client, queue_hall, b_window, "finish", clerk, ticket)
        assert (await _call(client, queue_hall, b_window, clerk))["id"] == b_waiting["id"]

    async def test_to_a_window_only_that_window_calls_it(self, client, queue_hall, kiosk, clerk):
        await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        first, second, third = (await queue_hall.window("A"), await queue_hall.window("B"),
                                await queue_hall.window("A"))
        ticket = await _call(client, queue_hall, first, clerk)
        moved = await _act(client, queue_hall, first, "transfer", clerk, ticket, window=second.number)
        assert moved.status_code == 200 and moved.json()["status"] == "waiting"
        third_call = await client.post(queue_hall.window_path(third, "call-next"), headers=clerk)
        assert third_call.status_code == 404
        assert (await _call(client, queue_hall, second, clerk))["id"] == ticket["id"]

    async def test_both_or_neither_target_is_422_and_a_waiting_ticket_is_409(self, client, queue_hall, kiosk,
                                                                             clerk):
        waiting = await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        window = await queue_hall.window("A")
        for body in ({}, {"category": "B", "window": window.number}):
            assert (await _act(client, queue_hall, window, "transfer", clerk, waiting, **body)).status_code == 422
        stale = await _act(client, queue_hall, window, "transfer", clerk, waiting, category="B")
        assert stale.status_code == 409 and stale.json()["ticket_status"] == "waiting"
        unknown = await _act(client, queue_hall, window, "transfer", clerk, waiting, category="Q")
        assert unknown.status_code == 404 and unknown.json()["code"] == "queue_category_not_found"


class TestRequeue:
    async def _missed(self, client, queue_hall, kiosk, clerk) -> dict:
        await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        window = await queue_hall.window("A")
        ticket = await _call(client, queue_hall, window, clerk)
        await _act(client, queue_hall, window, "skip", clerk, ticket)
        return ticket

    async def test_a_missed_ticket_goes_back_once(self, client, queue_hall, kiosk, clerk):
        ticket = await self._missed(client, queue_hall, kiosk, clerk)
        later(5)
        back = await client.post(f"/api/v1/staff/tickets/{ticket['id']}/requeue", headers=clerk)
        assert back.status_code == 200 and back.json()["status"] == "waiting"
        window = queue_hall.windows[0]
        again = await _call(client, queue_hall, window, clerk)
        await _act(client, queue_hall, window, "skip", clerk, again)
        twice = await client.post(f"/api/v1/staff/tickets/{ticket['id']}/requeue", headers=clerk)
        assert twice.status_code == 409 and twice.json()["code"] == "ticket_requeued_already"

    async def test_not_after_the_configured_time(self, client, queue_hall, kiosk, clerk):
        ticket = await self._missed(client, queue_hall, kiosk, clerk)
        later(31)
        clerk = bearer(await staff_tokens(client, Grant("window_clerk", hall=queue_hall.code)))  # a fresh login
        late = await client.post(f"/api/v1/staff/tickets/{ticket['id']}/requeue", headers=clerk)
        assert late.status_code == 409 and late.json()["code"] == "requeue_too_late"
        assert (await Ticket.get(id=ticket["id"])).status == "missed"

    async def test_only_a_missed_ticket_and_only_in_scope(self, client, queue_hall, kiosk, clerk):
        waiting = await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        stale = await client.post(f"/api/v1/staff/tickets/{waiting['id']}/requeue", headers=clerk)
        assert stale.status_code == 409 and stale.json()["ticket_status"] == "waiting"
        missed = await self._missed(client, queue_hall, kiosk, clerk)
        outsider = bearer(await staff_tokens(client, Grant("window_clerk", hall="150902")))
        refused = await client.post(f"/api/v1/staff/tickets/{missed['id']}/requeue", headers=outsider)
        assert refused.status_code == 403


class TestSetPriority:
    """优先 elderly/disabled set by a clerk, not only by the kiosk: a compare-and-swap on a waiting ticket."""

    async def _set(self, client, headers, ticket: dict, priority: str):
        return await client.post(f"/api/v1/staff/tickets/{ticket['id']}/priority", headers=headers,
                                 json={"priority": priority})

    async def test_a_clerk_marks_a_waiting_ticket_elderly_and_it_is_called_first(
            self, client, queue_hall, kiosk, clerk):
        first = await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        later(1)
        herder = await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        marked = await self._set(client, clerk, herder, "elderly")
        assert marked.status_code == 200, marked.text
        assert marked.json()["priority"] == "elderly" and marked.json()["people_ahead"] == 0
        event = await OutboxEvent.filter(kind="ticket.priority_changed", aggregate=f"ticket:{herder['id']}").get()
        assert event.payload["priority"] == "elderly" and event.payload["previous"] == "normal"
        window = await queue_hall.window("A")
        assert (await _call(client, queue_hall, window, clerk))["id"] == herder["id"]
        assert (await Ticket.get(id=first["id"])).status == "waiting"

    async def test_a_ticket_that_has_left_the_queue_is_409_with_its_state(self, client, queue_hall, kiosk, clerk):
        await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        window = await queue_hall.window("A")
        called = await _call(client, queue_hall, window, clerk)
        stale = await self._set(client, clerk, called, "disabled")
        assert stale.status_code == 409 and stale.json()["code"] == "ticket_state_conflict"
        assert stale.json()["ticket_status"] == "called" and stale.json()["ticket_window"] == window.number
        assert (await Ticket.get(id=called["id"])).priority == "normal"

    async def test_appointment_comes_only_from_check_in(self, client, queue_hall, kiosk, clerk):
        ticket = await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        assert (await self._set(client, clerk, ticket, "appointment")).status_code == 422
        missing = await client.post("/api/v1/staff/tickets/987654321/priority", headers=clerk,
                                    json={"priority": "elderly"})
        assert missing.status_code == 404 and missing.json()["code"] == "ticket_not_found"

    async def test_only_a_clerk_whose_grant_reaches_the_hall_and_the_queues_department(
            self, client, queue_hall, kiosk):
        served = await make_department(queue_hall.code)
        other = await make_department(queue_hall.code)
        await make_category(queue_hall.code, prefix="C", departments=[served.code])
        ticket = await kiosk_ticket(client, kiosk, queue_hall.code, "C")
        outsiders = [Grant("window_clerk", hall="150902"), Grant("window_clerk", hall=queue_hall.code,
                                                                 department=other.code)]
        for grant in outsiders:
            refused = await self._set(client, bearer(await staff_tokens(client, grant)), ticket, "elderly")
            assert refused.status_code == 403 and refused.json()["code"] == "out_of_scope"
        refused = await self._set(client, kiosk, ticket, "elderly")
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden_role"
        assert (await Ticket.get(id=ticket["id"])).priority == "normal"
        department_clerk = bearer(await staff_tokens(
            client, Grant("window_clerk", hall=queue_hall.code, department=served.code)))
        assert (await self._set(client, department_clerk, ticket, "disabled")).json()["priority"] == "disabled"

    async def test_a_mark_racing_a_call_either_lands_before_it_or_is_409(self, client, queue_hall, kiosk, clerk):
        tickets = [await kiosk_ticket(client, kiosk, queue_hall.code, "A") for _ in range(4)]
        windows = [await queue_hall.window("A") for _ in range(4)]
        responses = await asyncio.gather(
            *(self._set(client, clerk, ticket, "elderly") for ticket in tickets),
            *(client.post(queue_hall.window_path(w, "call-next"), headers=clerk) for w in windows))
        marks, calls = responses[:4], responses[4:]
        assert [r.status_code for r in calls] == [200] * 4, [r.text for r in calls]
        for ticket, mark in zip(tickets, marks):
            row = await Ticket.get(id=ticket["id"])
            events = await OutboxEvent.filter(kind="ticket.priority_changed", aggregate=f"ticket:{row.id}").count()
            assert row.status == "called"
            if mark.status_code == 200:
                assert row.priority == "elderly" and events == 1
            else:
                assert mark.status_code == 409 and mark.json()["ticket_status"] == "called", mark.text
                assert row.priority == "normal" and events == 0


class TestHallQueue:
    async def test_waiting_tickets_per_queue_in_calling_order(self, client, queue_hall, kiosk, clerk):
        first = await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        green = await kiosk_ticket(client, kiosk, queue_hall.code, "A", priority="green_channel")
        queue = (await client.get(f"/api/v1/staff/halls/{queue_hall.code}/queue", headers=clerk)).json()
        by_category = {c["category"]: c for c in queue["categories"]}
        assert [t["id"] for t in by_category["A"]["tickets"]] == [green["id"], first["id"]]
        assert by_category["A"]["waiting"] == 2 and by_category["B"]["waiting"] == 0

    async def test_a_clerk_of_another_hall_is_refused(self, client, queue_hall):
        outsider = bearer(await staff_tokens(client, Grant("window_clerk", hall="150902")))
        refused = await client.get(f"/api/v1/staff/halls/{queue_hall.code}/queue", headers=outsider)
        assert refused.status_code == 403


class TestTurnNear:
    async def _behind(self, client, capsys, queue_hall, kiosk, slips: int):
        """A citizen's ticket behind `slips` kiosk slips in queue A, an open window for A, and the turn-near
        events of the citizen's ticket."""
        for _ in range(slips):
            await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        citizen = bearer(await login_citizen(client, capsys))
        mine = (await client.post("/api/v1/tickets", headers=citizen,
                                  json={"hall": queue_hall.code, "category": "A"})).json()
        window = await queue_hall.window("A")
        return mine, window, OutboxEvent.filter(kind="ticket.turn_near", aggregate=f"ticket:{mine['id']}")

    async def test_recorded_once_per_ticket_when_three_or_fewer_are_ahead_after_a_call(
            self, client, capsys, queue_hall, kiosk, clerk):
        mine, window, events = await self._behind(client, capsys, queue_hall, kiosk, 4)
        ticket = await _call(client, queue_hall, window, clerk)        # 3 ahead of mine now
        event = await events.get()
        assert event.payload["people_ahead"] == 3 and event.payload["number"] == mine["number"]
        for _ in range(3):
            await _act(client, queue_hall, window, "skip", clerk, ticket)
            ticket = await _call(client, queue_hall, window, clerk)
        assert await events.count() == 1
        # kiosk slips have nobody to tell
        assert not await OutboxEvent.filter(kind="ticket.turn_near",
                                            aggregate=f"ticket:{ticket['id']}").exists()

    async def test_a_halls_own_n_decides_when_it_is_recorded(self, app_with, capsys, queue_hall):
        running = await app_with(queueing={"turn_near_by_hall": {queue_hall.code: 1}})
        async with running.client() as http:
            kiosk = bearer(await staff_tokens(http, Grant("kiosk", hall=queue_hall.code)))
            clerk = bearer(await staff_tokens(http, Grant("window_clerk", hall=queue_hall.code)))
            _, window, events = await self._behind(http, capsys, queue_hall, kiosk, 3)
            ticket = await _call(http, queue_hall, window, clerk)      # 2 ahead: the default 3 would tell now
            assert not await events.exists()
            await _act(http, queue_hall, window, "skip", clerk, ticket)
            await _call(http, queue_hall, window, clerk)               # 1 ahead: this hall's N
            event = await events.get()
            assert event.payload["people_ahead"] == 1 and event.payload["hall"] == queue_hall.code
