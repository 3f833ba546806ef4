"""Close of day: the open tickets of business days that are over are closed, their rows and counts kept.
A periodic job calls close_day; the function is tested directly."""
from datetime import date, datetime

from backend.kit import clock
from backend.kit.models import OutboxEvent
from backend.queueing import service
from backend.queueing.models import Ticket
from tests.queueing.conftest import kiosk_ticket


class TestCloseDay:
    async def test_closes_yesterdays_open_tickets_and_keeps_what_they_were(self, client, server, queue_hall,
                                                                           kiosk, clerk):
        first = await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        second = await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        window = await queue_hall.window("A")
        await client.post(queue_hall.window_path(window, "call-next"), headers=clerk)   # calls the first
        clock.freeze(datetime.fromisoformat("2026-11-26T08:00:00+08:00"))
        closed = await service.close_day(server.rt, hall=queue_hall.code)
        assert closed.closed == 2 and closed.by_status == {"waiting": 1, "called": 1}
        rows = dict(await Ticket.filter(hall_code=queue_hall.code).values_list("id", "closed_from"))
        assert rows == {first["id"]: "called", second["id"]: "waiting"}
        assert await Ticket.filter(hall_code=queue_hall.code, status="closed").count() == 2
        assert await OutboxEvent.filter(kind="queue.day_closed", aggregate=f"hall:{queue_hall.code}").count() == 1

    async def test_is_idempotent(self, client, server, queue_hall, kiosk):
        await kiosk_ticket(client, kiosk, queue_hall.code, "B")
        clock.freeze(datetime.fromisoformat("2026-11-26T08:00:00+08:00"))
        assert (await service.close_day(server.rt, hall=queue_hall.code)).closed == 1
        again = await service.close_day(server.rt, hall=queue_hall.code)
        assert again.closed == 0 and again.by_status == {}

    async def test_leaves_todays_tickets_and_finished_ones_alone(self, client, server, queue_hall, kiosk, clerk):
        await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        window = await queue_hall.window("A")
        ticket = (await client.post(queue_hall.window_path(window, "call-next"), headers=clerk)).json()
        await client.post(queue_hall.window_path(window, "start"), headers=clerk, json={"ticket": ticket["id"]})
        await client.post(queue_hall.window_path(window, "finish"), headers=clerk, json={"ticket": ticket["id"]})
        today = await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        assert (await service.close_day(server.rt, hall=queue_hall.code)).closed == 0
        clock.freeze(datetime.fromisoformat("2026-11-26T08:00:00+08:00"))
        closed = await service.close_day(server.rt, hall=queue_hall.code, business_date=date(2026, 11, 25))
        assert closed.by_status == {"waiting": 1}
        assert (await Ticket.get(id=ticket["id"])).status == "done"
        assert (await Ticket.get(id=today["id"])).closed_from == "waiting"

    async def test_a_citizen_may_take_a_new_ticket_once_yesterdays_is_closed(self, client, capsys, server,
                                                                               queue_hall):
        from tests.factories import bearer, login_citizen

        citizen_tokens = await login_citizen(client, capsys)
        body = {"hall": queue_hall.code, "category": "A"}
        assert (await client.post("/api/v1/tickets", headers=bearer(citizen_tokens), json=body)).status_code == 201
        clock.freeze(datetime.fromisoformat("2026-11-26T09:00:00+08:00"))
        await service.close_day(server.rt, hall=queue_hall.code)
        refreshed = await client.post("/api/v1/auth/refresh",
                                      json={"refresh_token": citizen_tokens["refresh_token"]})
        citizen = bearer(refreshed.json())
        fresh = await client.post("/api/v1/tickets", headers=citizen, json=body)
        assert fresh.status_code == 201 and fresh.json()["number"] == "A001"
