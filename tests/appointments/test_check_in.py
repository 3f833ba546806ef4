"""Check-in at the kiosk (签到): a booking's QR code becomes a priority ticket, once, atomically."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from backend.accounts.models import CitizenContact
from backend.appointments import service
from backend.appointments.models import Appointment
from backend.kit import clock
from backend.kit.auth import Grant
from backend.kit.models import OutboxEvent
from backend.queueing.models import Ticket
from tests.appointments.conftest import Desk, book, my_id, refreshed, slot_ids, slots
from tests.factories import bearer, real_name_citizen, staff_tokens


async def _code_at_check_in_time(client, capsys, desk: Desk) -> tuple[str, int, int]:
    """A booking of Tuesday's first slot (08:30), its check-in code, the booking's and citizen's ids; the
    clock then stands at Tuesday 08:10, inside the check-in window."""
    tokens = await real_name_citizen(client, capsys)
    booked = await book(client, tokens, (await slot_ids(client, desk))[0], desk.item)
    assert booked.status_code == 201, booked.text
    citizen = await my_id(client, tokens)
    code = await service.check_in_code(client.rt, citizen_id=citizen, appointment_id=booked.json()["id"])
    clock.advance(timedelta(hours=22, minutes=10))
    return code, booked.json()["id"], citizen


class TestCheckIn:
    async def test_the_code_becomes_a_priority_ticket_and_a_second_scan_answers_the_same(self, client, capsys, desk):
        code, appointment_id, citizen = await _code_at_check_in_time(client, capsys, desk)
        kiosk = bearer(await staff_tokens(client, Grant("kiosk", hall=desk.hall)))
        first = await client.post("/api/v1/kiosk/check-in", headers=kiosk, json={"code": code})
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["appointment"]["status"] == "checked_in"
        assert body["ticket"]["number"] == "A001" and body["ticket"]["priority"] == "appointment"
        again = await client.post("/api/v1/kiosk/check-in", headers=kiosk, json={"code": code, "hall": desk.hall})
        assert again.status_code == 200 and again.json()["ticket"]["id"] == body["ticket"]["id"]
        assert await Ticket.filter(appointment_id=appointment_id).count() == 1
        # the check-in is business with the hall: its staff may read the citizen's data for a while
        assert await CitizenContact.filter(citizen_id=citizen, hall_code=desk.hall, source="appointment").exists()

    async def test_concurrent_scans_of_one_code_give_one_ticket(self, client, capsys, desk):
        code, appointment_id, _ = await _code_at_check_in_time(client, capsys, desk)
        kiosk = bearer(await staff_tokens(client, Grant("kiosk", hall=desk.hall)))
        responses = await asyncio.gather(*(
            client.post("/api/v1/kiosk/check-in", headers=kiosk, json={"code": code}) for _ in range(6)))
        assert all(r.status_code in (200, 409) for r in responses), [r.text for r in responses]
        tickets = {r.json()["ticket"]["id"] for r in responses if r.status_code == 200}
        assert len(tickets) == 1
        assert await Ticket.filter(appointment_id=appointment_id).count() == 1

    async def test_a_kiosk_of_another_hall_is_refused_and_nothing_changes(self, client, capsys, desk):
        code, appointment_id, _ = await _code_at_check_in_time(client, capsys, desk)
        elsewhere = bearer(await staff_tokens(client, Grant("kiosk", hall="150921")))
        refused = await client.post("/api/v1/kiosk/check-in", headers=elsewhere,
                                    json={"code": code, "hall": desk.hall})
        assert refused.status_code == 403 and refused.json()["code"] == "out_of_scope"
        own_hall = await client.post("/api/v1/kiosk/check-in", headers=elsewhere, json={"code": code})
        assert own_hall.status_code == 403          # the code names another hall
        assert (await Appointment.get(id=appointment_id)).status == "booked"
        assert not await Ticket.filter(appointment_id=appointment_id).exists()

    async def test_a_forged_code_and_a_citizen_token_are_refused(self, client, capsys, desk):
        code, appointment_id, _ = await _code_at_check_in_time(client, capsys, desk)
        kiosk = bearer(await staff_tokens(client, Grant("kiosk", hall=desk.hall)))
        forged = await client.post("/api/v1/kiosk/check-in", headers=kiosk, json={"code": code[:-2] + "AA"})
        assert forged.status_code == 400 and forged.json()["code"] == "check_in_code_invalid"
        citizen = await real_name_citizen(client, capsys)
        assert (await client.post("/api/v1/kiosk/check-in", headers=bearer(citizen),
                                  json={"code": code})).status_code == 403
        assert (await Appointment.get(id=appointment_id)).status == "booked"

    async def test_a_clerk_of_another_department_cannot_check_the_booking_in(self, client, capsys, desk):
        from tests.rows import make_department

        code, appointment_id, _ = await _code_at_check_in_time(client, capsys, desk)
        other = await make_department(desk.hall)
        clerk = bearer(await staff_tokens(client, Grant("window_clerk", hall=desk.hall, department=other.code)))
        refused = await client.post("/api/v1/kiosk/check-in", headers=clerk, json={"code": code})
        assert refused.status_code == 403 and refused.json()["code"] == "out_of_scope"
        assert (await Appointment.get(id=appointment_id)).status == "booked"


class TestCheckInWithARemoteTicket:
    """A herder took a number from the phone on the way, then scans the booking at the kiosk."""

    async def _booked_and_waiting(self, client, capsys, desk: Desk):
        """Booked Tuesday's 09:00 slot; at 08:40 (the hall open) a walk-in took a number, then the citizen
        took one from the phone: the code, the booking, the citizen, their tokens, the walk-in's and their
        ticket."""
        tokens = await real_name_citizen(client, capsys)
        second_slot = (await slots(client, desk))["items"][1]
        booked = await book(client, tokens, second_slot["id"], desk.item)
        assert booked.status_code == 201, booked.text
        citizen = await my_id(client, tokens)
        code = await service.check_in_code(client.rt, citizen_id=citizen, appointment_id=booked.json()["id"])
        clock.freeze(datetime.fromisoformat(second_slot["starts_at"]) - timedelta(minutes=20))
        tokens = await refreshed(client, tokens)
        kiosk = bearer(await staff_tokens(client, Grant("kiosk", hall=desk.hall)))
        walk_in = await client.post("/api/v1/kiosk/tickets", headers=kiosk,
                                    json={"hall": desk.hall, "category": desk.category})
        remote = await client.post("/api/v1/tickets", headers=bearer(tokens),
                                   json={"hall": desk.hall, "category": desk.category})
        assert remote.status_code == 201, remote.text
        assert remote.json()["people_ahead"] == 1
        return code, booked, citizen, tokens, kiosk, walk_in, remote

    async def test_the_waiting_remote_ticket_becomes_the_appointments_ticket(self, client, capsys, desk):
        code, booked, citizen, tokens, kiosk, walk_in, remote = await self._booked_and_waiting(client, capsys, desk)

        checked_in = await client.post("/api/v1/kiosk/check-in", headers=kiosk, json={"code": code})
        assert checked_in.status_code == 200, checked_in.text
        ticket = checked_in.json()["ticket"]
        assert checked_in.json()["appointment"]["status"] == "checked_in"
        assert ticket["id"] == remote.json()["id"] and ticket["number"] == remote.json()["number"]
        assert ticket["priority"] == "appointment" and ticket["people_ahead"] == 0   # ahead of the walk-in now
        assert (await Ticket.get(id=ticket["id"])).appointment_id == booked.json()["id"]
        assert await Ticket.filter(citizen_id=citizen).count() == 1
        assert (await Ticket.get(id=walk_in.json()["id"])).status == "waiting"
        linked = await OutboxEvent.filter(kind="ticket.appointment_linked", aggregate=f"ticket:{ticket['id']}").get()
        assert linked.payload["appointment"] == booked.json()["id"] and linked.payload["previous"] == "normal"

        again = await client.post("/api/v1/kiosk/check-in", headers=kiosk, json={"code": code})
        assert again.status_code == 200 and again.json()["ticket"]["id"] == ticket["id"]
        assert await Ticket.filter(citizen_id=citizen).count() == 1
        mine = (await client.get(f"/api/v1/tickets/{ticket['id']}", headers=bearer(tokens))).json()
        assert mine["priority"] == "appointment" and mine["status"] == "waiting"

    async def test_concurrent_scans_adopt_the_one_waiting_ticket(self, client, capsys, desk):
        code, booked, citizen, _, kiosk, _, remote = await self._booked_and_waiting(client, capsys, desk)
        responses = await asyncio.gather(*(
            client.post("/api/v1/kiosk/check-in", headers=kiosk, json={"code": code}) for _ in range(6)))
        assert all(r.status_code in (200, 409) for r in responses), [r.text for r in responses]
        assert {r.json()["ticket"]["id"] for r in responses if r.status_code == 200} == {remote.json()["id"]}
        assert await Ticket.filter(citizen_id=citizen).count() == 1
        assert await OutboxEvent.filter(kind="ticket.appointment_linked",
                                        aggregate=f"ticket:{remote.json()['id']}").count() == 1
