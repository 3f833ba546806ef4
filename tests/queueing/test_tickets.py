"""Issuing queue tickets: numbering, the kiosk, the app, appointment check-in, the holder's view."""
import asyncio
from datetime import datetime

import pytest

from backend.kit import clock
from backend.kit.auth import Grant
from backend.kit.models import OutboxEvent
from backend.kit.uow import unit_of_work
from backend.queueing import service
from backend.queueing.models import Ticket, TicketCounter
from tests.factories import bearer, login_citizen, staff_tokens
from tests.queueing.conftest import kiosk_ticket, later
from tests.rows import make_category, make_hall


class TestNumbering:
    async def test_numbers_are_the_prefix_and_the_days_sequence(self, client, queue_hall, kiosk):
        first = await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        second = await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        other = await kiosk_ticket(client, kiosk, queue_hall.code, "B")
        assert (first["number"], second["number"], other["number"]) == ("A001", "A002", "B001")
        assert first["status"] == "waiting" and first["hall"] == queue_hall.code and first["category"] == "A"
        assert first["source"] == "kiosk" and first["business_date"] == "2026-11-25"

    async def test_sixty_concurrent_takers_across_two_queues_get_unique_gapless_numbers(
            self, client, queue_hall, kiosk):
        responses = await asyncio.gather(*(
            client.post("/api/v1/kiosk/tickets", headers=kiosk,
                        json={"hall": queue_hall.code, "category": "AB"[n % 2]}) for n in range(60)))
        assert [r.status_code for r in responses] == [201] * 60, [r.text for r in responses if r.status_code != 201]
        numbers = [r.json()["number"] for r in responses]
        assert sorted(n for n in numbers if n[0] == "A") == [f"A{n:03d}" for n in range(1, 31)]
        assert sorted(n for n in numbers if n[0] == "B") == [f"B{n:03d}" for n in range(1, 31)]
        counters = await TicketCounter.filter(hall_code=queue_hall.code).order_by("prefix") \
            .values_list("prefix", "last_seq")
        assert counters == [("A", 30), ("B", 30)]

    async def test_numbering_restarts_on_the_next_business_day_in_the_halls_zone(self, client, queue_hall):
        # 23:59 in Ulanqab is 15:59 UTC; a minute later it is the next business day there
        clock.freeze(datetime.fromisoformat("2026-11-25T23:59:00+08:00"))
        kiosk = bearer(await staff_tokens(client, Grant("kiosk", hall=queue_hall.code)))
        evening = await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        later(1)
        morning = await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        assert evening["number"] == "A001" and evening["business_date"] == "2026-11-25"
        assert morning["number"] == "A001" and morning["business_date"] == "2026-11-26"

    async def test_the_same_letter_in_another_hall_has_its_own_numbers(self, client, queue_hall, kiosk):
        elsewhere = await make_hall(parent="150921")
        await make_category(elsewhere.code, prefix="A")
        other_kiosk = bearer(await staff_tokens(client, Grant("kiosk", hall=elsewhere.code)))
        await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        assert (await kiosk_ticket(client, other_kiosk, elsewhere.code, "A"))["number"] == "A001"


class TestKioskTicket:
    async def test_a_kiosk_of_another_hall_is_refused(self, client, queue_hall):
        other = bearer(await staff_tokens(client, Grant("kiosk", hall="150921")))   # the county above it
        refused = await client.post("/api/v1/kiosk/tickets", headers=other,
                                    json={"hall": queue_hall.code, "category": "A"})
        assert refused.status_code == 403 and refused.json()["code"] == "out_of_scope"
        assert not await Ticket.exists(hall_code=queue_hall.code)

    async def test_a_clerk_is_not_a_kiosk(self, client, queue_hall, clerk):
        refused = await client.post("/api/v1/kiosk/tickets", headers=clerk,
                                    json={"hall": queue_hall.code, "category": "A"})
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden_role"

    async def test_an_unknown_queue_letter_is_404_and_takes_no_number(self, client, queue_hall, kiosk):
        missing = await client.post("/api/v1/kiosk/tickets", headers=kiosk,
                                    json={"hall": queue_hall.code, "category": "Z"})
        assert missing.status_code == 404 and missing.json()["code"] == "queue_category_not_found"
        bad = await client.post("/api/v1/kiosk/tickets", headers=kiosk,
                                json={"hall": queue_hall.code, "category": "a1"})
        assert bad.status_code == 422
        assert (await kiosk_ticket(client, kiosk, queue_hall.code, "A"))["number"] == "A001"

    async def test_priority_comes_from_the_kiosk_but_appointment_only_from_check_in(
            self, client, queue_hall, kiosk):
        elderly = await kiosk_ticket(client, kiosk, queue_hall.code, "A", priority="elderly")
        assert elderly["priority"] == "elderly"
        refused = await client.post("/api/v1/kiosk/tickets", headers=kiosk,
                                    json={"hall": queue_hall.code, "category": "A", "priority": "appointment"})
        assert refused.status_code == 422


class TestRemoteTicket:
    async def test_a_citizen_takes_a_ticket_while_the_hall_is_open(self, client, capsys, queue_hall):
        citizen = bearer(await login_citizen(client, capsys))
        response = await client.post("/api/v1/tickets", headers=citizen,
                                     json={"hall": queue_hall.code, "category": "B"})
        assert response.status_code == 201, response.text
        assert response.json()["number"] == "B001" and response.json()["source"] == "remote"
        event = await OutboxEvent.filter(kind="ticket.issued", aggregate=f"ticket:{response.json()['id']}").get()
        assert event.payload["number"] == "B001" and "phone" not in str(event.payload)

    async def test_outside_opening_hours_is_refused(self, client, capsys, queue_hall):
        clock.freeze(datetime.fromisoformat("2026-11-25T12:30:00+08:00"))   # the lunch break
        citizen = bearer(await login_citizen(client, capsys))
        lunch = await client.post("/api/v1/tickets", headers=citizen, json={"hall": queue_hall.code, "category": "A"})
        assert lunch.status_code == 409 and lunch.json()["code"] == "hall_closed_now"
        clock.freeze(datetime.fromisoformat("2026-11-28T10:00:00+08:00"))   # a Saturday
        citizen = bearer(await login_citizen(client, capsys))
        saturday = await client.post("/api/v1/tickets", headers=citizen,
                                     json={"hall": queue_hall.code, "category": "A"})
        assert saturday.status_code == 409 and saturday.json()["code"] == "hall_closed_now"
        assert not await Ticket.exists(hall_code=queue_hall.code)

    async def test_a_second_waiting_ticket_in_the_same_queue_is_refused(self, client, capsys, queue_hall):
        citizen = bearer(await login_citizen(client, capsys))
        body = {"hall": queue_hall.code, "category": "A"}
        assert (await client.post("/api/v1/tickets", headers=citizen, json=body)).status_code == 201
        again = await client.post("/api/v1/tickets", headers=citizen, json=body)
        assert again.status_code == 409 and again.json()["code"] == "ticket_already_waiting"
        other_queue = await client.post("/api/v1/tickets", headers=citizen,
                                        json={"hall": queue_hall.code, "category": "B"})
        assert other_queue.status_code == 201

    async def test_concurrent_takes_by_one_citizen_give_one_ticket_and_no_gap(self, client, capsys, queue_hall,
                                                                               kiosk):
        citizen = bearer(await login_citizen(client, capsys))
        body = {"hall": queue_hall.code, "category": "A"}
        responses = await asyncio.gather(*(client.post("/api/v1/tickets", headers=citizen, json=body)
                                           for _ in range(8)))
        assert sorted(r.status_code for r in responses) == [201] + [409] * 7
        assert all(r.json()["code"] == "ticket_already_waiting" for r in responses if r.status_code == 409)
        # the refused takes gave their numbers back
        assert (await kiosk_ticket(client, kiosk, queue_hall.code, "A"))["number"] == "A002"

    async def test_after_cancelling_the_citizen_may_take_another(self, client, capsys, queue_hall):
        citizen = bearer(await login_citizen(client, capsys))
        body = {"hall": queue_hall.code, "category": "A"}
        first = (await client.post("/api/v1/tickets", headers=citizen, json=body)).json()
        cancelled = await client.post(f"/api/v1/tickets/{first['id']}/cancel", headers=citizen)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        again = await client.post(f"/api/v1/tickets/{first['id']}/cancel", headers=citizen)
        assert again.status_code == 409 and again.json()["ticket_status"] == "cancelled"
        assert (await client.post("/api/v1/tickets", headers=citizen, json=body)).json()["number"] == "A002"

    async def test_staff_cannot_take_a_citizens_ticket(self, client, queue_hall, clerk):
        refused = await client.post("/api/v1/tickets", headers=clerk, json={"hall": queue_hall.code, "category": "A"})
        assert refused.status_code == 403


class TestIssueTicketForCheckIn:
    async def test_one_ticket_per_appointment_and_a_second_check_in_gets_the_same(self, server, queue_hall):
        rt = server.rt
        first = await service.issue_ticket(rt, hall=queue_hall.code, category="A", source="appointment",
                                           priority="appointment", citizen_id=987001, appointment_id=555001)
        second = await service.issue_ticket(rt, hall=queue_hall.code, category="A", source="appointment",
                                            priority="appointment", citizen_id=987001, appointment_id=555001)
        assert first == second and first.number == "A001" and first.priority == "appointment"
        assert await Ticket.filter(appointment_id=555001).count() == 1

    async def test_it_joins_the_callers_unit_of_work_and_rolls_back_with_it(self, server, queue_hall):
        rt = server.rt
        with pytest.raises(RuntimeError):
            async with unit_of_work(rt) as uow:
                await service.issue_ticket(rt, hall=queue_hall.code, category="A", source="appointment",
                                           priority="appointment", appointment_id=555002, tx=uow)
                raise RuntimeError("the booking failed after the ticket was issued")
        assert not await Ticket.exists(appointment_id=555002)
        ticket = await service.issue_ticket(rt, hall=queue_hall.code, category="A", source="appointment",
                                            priority="appointment", appointment_id=555003)
        assert ticket.number == "A001"   # the rolled-back number was given back


class TestMyTickets:
    async def test_the_holder_sees_people_ahead_and_an_estimated_wait(self, client, capsys, queue_hall, kiosk):
        for _ in range(4):
            await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        await queue_hall.window("A")
        await queue_hall.window("A", "B")
        citizen = bearer(await login_citizen(client, capsys))
        mine = (await client.post("/api/v1/tickets", headers=citizen,
                                  json={"hall": queue_hall.code, "category": "A"})).json()
        # 4 ahead x 10 minutes (the catalogue's figure: nothing finished yet) / 2 open windows
        assert mine["people_ahead"] == 4 and mine["estimated_wait_minutes"] == 20
        shown = (await client.get(f"/api/v1/tickets/{mine['id']}", headers=citizen)).json()
        assert shown == mine
        listed = (await client.get("/api/v1/tickets", headers=citizen)).json()["items"]
        assert [t["id"] for t in listed] == [mine["id"]]

    async def test_priority_tickets_are_ahead_of_earlier_ordinary_ones(self, client, capsys, queue_hall, kiosk):
        citizen = bearer(await login_citizen(client, capsys))
        mine = (await client.post("/api/v1/tickets", headers=citizen,
                                  json={"hall": queue_hall.code, "category": "A"})).json()
        assert mine["people_ahead"] == 0
        later(1)
        await kiosk_ticket(client, kiosk, queue_hall.code, "A", priority="green_channel")
        await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        shown = (await client.get(f"/api/v1/tickets/{mine['id']}", headers=citizen)).json()
        assert shown["people_ahead"] == 1

    async def test_another_citizens_ticket_is_404(self, client, capsys, queue_hall):
        holder = bearer(await login_citizen(client, capsys))
        other = bearer(await login_citizen(client, capsys))
        ticket = (await client.post("/api/v1/tickets", headers=holder,
                                    json={"hall": queue_hall.code, "category": "A"})).json()
        for response in (await client.get(f"/api/v1/tickets/{ticket['id']}", headers=other),
                         await client.post(f"/api/v1/tickets/{ticket['id']}/cancel", headers=other)):
            assert response.status_code == 404 and response.json()["code"] == "ticket_not_found"
        assert (await Ticket.get(id=ticket["id"])).status == "waiting"
        assert (await client.get("/api/v1/tickets", headers=other)).json()["items"] == []

    async def test_a_kiosk_ticket_belongs_to_no_citizen(self, client, capsys, queue_hall, kiosk):
        ticket = await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        citizen = bearer(await login_citizen(client, capsys))
        assert (await client.get(f"/api/v1/tickets/{ticket['id']}", headers=citizen)).status_code == 404


async def _serve(client, queue_hall, window, clerk, minutes: float) -> None:
    """The window calls its next ticket and serves it for `minutes`."""
    called = await client.post(queue_hall.window_path(window, "call-next"), headers=clerk)
    assert called.status_code == 200, called.text
    ticket = {"ticket": called.json()["id"]}
    assert (await client.post(queue_hall.window_path(window, "start"), headers=clerk, json=ticket)).status_code == 200
    later(minutes)
    assert (await client.post(queue_hall.window_path(window, "finish"), headers=clerk, json=ticket)).status_code == 200


class TestEstimatedWait:
    async def test_recent_service_times_replace_the_catalogues_figure_once_there_are_some(
            self, client, capsys, queue_hall, kiosk, clerk):
        window = await queue_hall.window("A")
        for minutes in (4, 6):
            await kiosk_ticket(client, kiosk, queue_hall.code, "A")
            await _serve(client, queue_hall, window, clerk, minutes)
        for _ in range(3):
            await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        citizen = bearer(await login_citizen(client, capsys))
        mine = (await client.post("/api/v1/tickets", headers=citizen,
                                  json={"hall": queue_hall.code, "category": "A"})).json()
        # 3 ahead x 5 minutes (the mean of 4 and 6; the catalogue says 10) / 1 open window
        assert mine["people_ahead"] == 3 and mine["estimated_wait_minutes"] == 15
        await queue_hall.window("A", "B")
        shown = (await client.get(f"/api/v1/tickets/{mine['id']}", headers=citizen)).json()
        assert shown["estimated_wait_minutes"] == 8          # 15 / 2 windows, rounded up
        # another queue of the hall keeps the catalogue's figure until its own tickets finish
        b_ticket = (await client.post("/api/v1/tickets", headers=citizen,
                                      json={"hall": queue_hall.code, "category": "B"})).json()
        await kiosk_ticket(client, kiosk, queue_hall.code, "B")
        b_shown = (await client.get(f"/api/v1/tickets/{b_ticket['id']}", headers=citizen)).json()
        assert b_shown["people_ahead"] == 0 and b_shown["estimated_wait_minutes"] == 0

    async def test_only_the_last_recent_service_sample_finished_tickets_count(
            self, app_with, capsys, queue_hall):
        running = await app_with(queueing={"recent_service_sample": 1})
        async with running.client() as http:
            kiosk = bearer(await staff_tokens(http, Grant("kiosk", hall=queue_hall.code)))
            clerk = bearer(await staff_tokens(http, Grant("window_clerk", hall=queue_hall.code)))
            window = await queue_hall.window("A")
            for minutes in (2, 7):
                await kiosk_ticket(http, kiosk, queue_hall.code, "A")
                await _serve(http, queue_hall, window, clerk, minutes)
            await kiosk_ticket(http, kiosk, queue_hall.code, "A")
            await kiosk_ticket(http, kiosk, queue_hall.code, "A")
            citizen = bearer(await login_citizen(http, capsys))
            mine = (await http.post("/api/v1/tickets", headers=citizen,
                                    json={"hall": queue_hall.code, "category": "A"})).json()
        # 2 ahead x 7 minutes: the last finished ticket only, not the mean 4.5 of both
        assert mine["people_ahead"] == 2 and mine["estimated_wait_minutes"] == 14


class TestEstimateCache:
    """The estimate's inputs kept per process (settings.queueing.estimate_cache_seconds, off in the other
    tests): what this process changes shows at once."""

    async def test_a_window_opened_and_a_ticket_finished_in_this_process_change_the_estimate_at_once(
            self, app_with, capsys, queue_hall):
        running = await app_with(queueing={"estimate_cache_seconds": 300})
        async with running.client() as http:
            kiosk = bearer(await staff_tokens(http, Grant("kiosk", hall=queue_hall.code)))
            clerk = bearer(await staff_tokens(http, Grant("window_clerk", hall=queue_hall.code)))
            window = await queue_hall.window("A")
            await kiosk_ticket(http, kiosk, queue_hall.code, "A")
            await kiosk_ticket(http, kiosk, queue_hall.code, "A")
            citizen = bearer(await login_citizen(http, capsys))
            mine = (await http.post("/api/v1/tickets", headers=citizen,
                                    json={"hall": queue_hall.code, "category": "A"})).json()
            # 2 ahead x 10 minutes (the catalogue's figure) / 1 open window; both inputs now kept
            assert mine["people_ahead"] == 2 and mine["estimated_wait_minutes"] == 20
            second = await queue_hall.window("A", status="closed")
            opened = await http.patch(f"/api/v1/staff/halls/{queue_hall.code}/windows/{second.number}",
                                      headers=clerk, json={"status": "open"})
            assert opened.status_code == 200, opened.text
            shown = (await http.get(f"/api/v1/tickets/{mine['id']}", headers=citizen)).json()
            assert shown["estimated_wait_minutes"] == 10         # 20 / 2 windows
            await _serve(http, queue_hall, window, clerk, 4)     # the first ahead, served in 4 minutes
            shown = (await http.get(f"/api/v1/tickets/{mine['id']}", headers=citizen)).json()
            assert shown["people_ahead"] == 1 and shown["estimated_wait_minutes"] == 2   # 1 x 4 / 2
