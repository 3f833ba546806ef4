"""Appointments through the HTTP API, against the running server: slots, booking, the citizen's own
bookings, cancel, reschedule and the check-in QR. The races are truly concurrent requests."""
from __future__ import annotations

import asyncio
from datetime import date, timedelta

from backend.appointments import service
from backend.appointments.models import Appointment, AppointmentSlot
from backend.kit import clock
from backend.kit.models import OutboxEvent
from backend.settings import SlotShape
from tests.appointments.conftest import (
    TUESDAY, another_item, book, make_desk, my_id, refreshed, remaining, slot_ids, slots,
)
from tests.factories import bearer, login_citizen, real_name_citizen, real_name_citizens
from tests.rows import make_holiday_override


def _problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code
    return body


class TestListSlots:
    async def test_a_working_day_is_cut_into_slots_of_the_configured_length_in_the_halls_hours(self, client, desk):
        listed = await slots(client, desk)
        # the made hall opens 08:30-12:00 and 14:30-17:30: 7 + 6 slots of 30 minutes
        assert [s["starts_at"][11:16] for s in listed["items"]] == [
            "08:30", "09:00", "09:30", "10:00", "10:30", "11:00", "11:30",
            "14:30", "15:00", "15:30", "16:00", "16:30", "17:00"]
        assert listed["items"][0] == {**listed["items"][0], "starts_at": "2026-06-02T08:30:00+08:00",
                                      "ends_at": "2026-06-02T09:00:00+08:00", "capacity": 4, "remaining": 4}
        assert listed["bookable"] is True and listed["closes_at"] == "2026-06-01T16:00:00+08:00"

    async def test_asking_again_and_concurrently_makes_each_slot_once(self, client, desk):
        answers = await asyncio.gather(*(client.get(f"/api/v1/halls/{desk.hall}/slots",
                                                    params={"category": "A", "date": TUESDAY}) for _ in range(12)))
        assert {r.status_code for r in answers} == {200}
        assert len({tuple(s["id"] for s in r.json()["items"]) for r in answers}) == 1
        assert await AppointmentSlot.filter(hall_id=desk.hall, category="A").count() == 13

    async def test_a_holiday_has_no_slots_and_a_makeup_saturday_has(self, client, frozen_clock):
        # 2026: 国庆 10-01..10-07, Saturday 10-10 is a make-up working day (调休上班), Sunday 10-11 a rest day.
        # On Tuesday 09-29 the horizon is 09-30, 10-08, 10-09, 10-10, 10-12.
        frozen_clock("2026-09-29T10:00:00+08:00")
        desk = await make_desk()
        holiday = await slots(client, desk, "2026-10-01")
        assert holiday["items"] == [] and holiday["bookable"] is False and holiday["closes_at"] is None
        makeup = await slots(client, desk, "2026-10-10")
        assert len(makeup["items"]) == 13 and makeup["bookable"] is True
        assert (await slots(client, desk, "2026-10-11"))["items"] == []
        assert len((await slots(client, desk, "2026-10-12"))["items"]) == 13
        beyond = await slots(client, desk, "2026-10-13")      # the sixth working day
        assert beyond["items"] == [] and beyond["bookable"] is False
        assert await AppointmentSlot.filter(hall_id=desk.hall, day=date(2026, 10, 1)).count() == 0

    async def test_today_is_not_bookable(self, client, desk):
        today = await slots(client, desk, "2026-06-01")
        assert today["items"] == [] and today["bookable"] is False

    async def test_a_category_can_have_its_own_slot_length_and_capacity(self, app_with, frozen_clock):
        desk = await make_desk()
        running = await app_with(appointments={"categories": {f"{desk.hall}/A": SlotShape(slot_minutes=60,
                                                                                          capacity=10)}})
        async with running.client() as client:
            listed = await slots(client, desk)
        assert [s["starts_at"][11:16] for s in listed["items"]] == ["08:30", "09:30", "10:30", "14:30", "15:30",
                                                                    "16:30"]
        assert {s["capacity"] for s in listed["items"]} == {10}

    async def test_unknown_hall_category_and_bad_dates(self, client, desk):
        _problem(await client.get("/api/v1/halls/159999999/slots", params={"category": "A", "date": TUESDAY}),
                 404, "hall_not_found")
        _problem(await client.get(f"/api/v1/halls/{desk.hall}/slots", params={"category": "Z", "date": TUESDAY}),
                 404, "queue_category_not_found")
        _problem(await client.get(f"/api/v1/halls/{desk.hall}/slots", params={"category": "A", "date": "06/02"}),
                 422, "validation_failed")
        _problem(await client.get(f"/api/v1/halls/{desk.hall}/slots", params={"category": "a", "date": TUESDAY}),
                 422, "validation_failed")
        _problem(await client.get("/api/v1/halls/１５９９９９/slots", params={"category": "A", "date": TUESDAY}),
                 404, "hall_not_found")
        for far in ("0001-01-01", "9999-12-31"):
            listed = await slots(client, desk, far)
            assert listed["items"] == [] and listed["bookable"] is False


class TestBookSlot:
    async def test_a_real_name_citizen_books_a_seat(self, client, capsys, desk):
        slot_id = (await slot_ids(client, desk))[2]
        tokens = await real_name_citizen(client, capsys)
        booked = await book(client, tokens, slot_id, desk.item)
        assert booked.status_code == 201, booked.text
        body = booked.json()
        assert body["status"] == "booked" and body["date"] == TUESDAY and body["category"] == "A"
        assert body["slot"] == {"id": slot_id, "starts_at": "2026-06-02T09:30:00+08:00",
                                "ends_at": "2026-06-02T10:00:00+08:00"}
        assert body["hall"]["code"] == desk.hall and body["item"]["code"] == desk.item
        assert body["cancellable_until"] == "2026-06-02T07:30:00+08:00"
        assert await remaining(client, desk, slot_id) == 3
        event = await OutboxEvent.get(kind="appointment.booked", aggregate=f"appointment:{body['id']}")
        assert event.payload == {"appointment": body["id"], "citizen": await my_id(client, tokens), "slot": slot_id,
                                 "hall": desk.hall, "category": "A", "item": desk.item,
                                 "starts_at": "2026-06-02T01:30:00+00:00"}   # for the notification's words

    async def test_a_citizen_without_name_and_id_number_is_asked_for_them(self, client, capsys, desk):
        slot_id = (await slot_ids(client, desk))[0]
        tokens = await login_citizen(client, capsys)
        _problem(await book(client, tokens, slot_id, desk.item), 403, "real_name_required")
        await client.patch("/api/v1/me", headers=bearer(tokens), json={"name": "乌日娜"})   # a name alone is not enough
        _problem(await book(client, tokens, slot_id, desk.item), 403, "real_name_required")
        assert await remaining(client, desk, slot_id) == 4

    async def test_the_last_seat_goes_to_exactly_one_of_thirty_concurrent_bookers(self, client, capsys, desk):
        slot_id = (await slot_ids(client, desk))[0]
        await AppointmentSlot.filter(id=slot_id).update(capacity=1)
        citizens = await real_name_citizens(client, capsys, 30)
        answers = await asyncio.gather(*(book(client, c, slot_id, desk.item) for c in citizens))
        assert sorted(r.status_code for r in answers) == [201] + [409] * 29
        assert {r.json()["code"] for r in answers if r.status_code == 409} == {"slot_full"}
        assert (await AppointmentSlot.get(id=slot_id)).booked == 1
        assert await Appointment.filter(slot_id=slot_id).count() == 1

    async def test_a_slot_of_capacity_four_takes_exactly_four_of_twelve_concurrent_bookers(self, client, capsys, desk):
        slot_id = (await slot_ids(client, desk))[5]
        citizens = await real_name_citizens(client, capsys, 12)
        answers = await asyncio.gather(*(book(client, c, slot_id, desk.item) for c in citizens))
        assert sorted(r.status_code for r in answers) == [201] * 4 + [409] * 8
        assert (await AppointmentSlot.get(id=slot_id)).booked == 4
        assert await Appointment.filter(slot_id=slot_id, status="booked").count() == 4
        assert await remaining(client, desk, slot_id) == 0

    async def test_one_citizen_booking_one_item_on_one_day_five_times_at_once_gets_one(self, client, capsys, desk):
        ids = await slot_ids(client, desk)
        tokens = await real_name_citizen(client, capsys)
        answers = await asyncio.gather(*(book(client, tokens, slot_id, desk.item) for slot_id in ids[:5]))
        assert sorted(r.status_code for r in answers) == [201] + [409] * 4
        assert {r.json()["code"] for r in answers if r.status_code == 409} == {"already_booked"}
        # the losers' seats went back with their transactions
        assert sum([s.booked for s in await AppointmentSlot.filter(id__in=ids[:5])]) == 1

    async def test_the_same_item_twice_on_one_day_is_refused_but_another_day_or_item_is_not(self, client, capsys, desk):
        other_item = await another_item(desk)
        ids = await slot_ids(client, desk)
        tokens = await real_name_citizen(client, capsys)
        assert (await book(client, tokens, ids[0], desk.item)).status_code == 201
        _problem(await book(client, tokens, ids[8], desk.item), 409, "already_booked")
        assert await remaining(client, desk, ids[8]) == 4
        assert (await book(client, tokens, ids[8], other_item.code)).status_code == 201
        wednesday = (await slot_ids(client, desk, "2026-06-03"))[0]
        assert (await book(client, tokens, wednesday, desk.item)).status_code == 201

    async def test_a_full_slot_is_409_slot_full(self, client, capsys, desk):
        slot_id = (await slot_ids(client, desk))[1]
        await AppointmentSlot.filter(id=slot_id).update(booked=4)
        tokens = await real_name_citizen(client, capsys)
        _problem(await book(client, tokens, slot_id, desk.item), 409, "slot_full")
        assert await Appointment.filter(slot_id=slot_id).count() == 0

    async def test_an_item_not_served_by_the_slots_queue_or_without_appointments_is_refused(self, client, capsys, desk):
        slot_id = (await slot_ids(client, desk))[0]
        tokens = await real_name_citizen(client, capsys)
        # an item of another hall's department: that hall's queue serves it, this slot's does not
        elsewhere = await make_desk()
        _problem(await book(client, tokens, slot_id, elsewhere.item), 422, "item_not_served_here")
        # and the other hall's slot does not serve this hall's item
        other_slot = (await slot_ids(client, elsewhere))[0]
        _problem(await book(client, tokens, other_slot, desk.item), 422, "item_not_served_here")
        walk_in_only = await another_item(desk, appointment=False)
        _problem(await book(client, tokens, slot_id, walk_in_only.code), 422, "appointment_not_offered")
        _problem(await book(client, tokens, slot_id, "no-such-item"), 404, "service_item_not_found")
        _problem(await book(client, tokens, 9_000_000_000, desk.item), 404, "slot_not_found")
        assert await remaining(client, desk, slot_id) == 4
        assert await Appointment.filter(hall_code=desk.hall).count() == 0

    async def test_bookings_for_a_day_close_at_the_cutoff_the_day_before(self, client, capsys, frozen_clock):
        frozen_clock("2026-06-01T15:59:00+08:00")
        desk = await make_desk()
        slot_id = (await slot_ids(client, desk))[0]
        early = await real_name_citizen(client, capsys)
        assert (await book(client, early, slot_id, desk.item)).status_code == 201
        clock.advance(timedelta(minutes=1))
        late = await real_name_citizen(client, capsys)
        problem = _problem(await book(client, late, slot_id, desk.item), 409, "booking_closed")
        assert problem["closed_at"] == "2026-06-01T16:00+08:00"
        assert (await slots(client, desk))["bookable"] is False
        assert await remaining(client, desk, slot_id) == 3

    async def test_a_slot_beyond_the_horizon_is_closed(self, client, capsys, desk):
        # a job may make slots ahead; the sixth working day (Tuesday 06-09) is still not bookable
        assert await service.generate_slots(client.rt, hall=desk.hall, category="A", day=date(2026, 6, 9)) == 13
        slot = await AppointmentSlot.filter(hall_id=desk.hall, day=date(2026, 6, 9)).first()
        tokens = await real_name_citizen(client, capsys)
        problem = _problem(await book(client, tokens, slot.id, desk.item), 409, "outside_booking_horizon")
        assert (problem["first"], problem["last"]) == ("2026-06-02", "2026-06-08")
        assert (await AppointmentSlot.get(id=slot.id)).booked == 0

    async def test_a_past_slot_is_refused(self, client, capsys, desk):
        slot_id = (await slot_ids(client, desk))[0]
        clock.advance(timedelta(days=1, hours=1))          # Tuesday 11:00: the 08:30 slot is over
        tokens = await real_name_citizen(client, capsys)
        _problem(await book(client, tokens, slot_id, desk.item), 409, "slot_past")
        assert (await AppointmentSlot.get(id=slot_id)).booked == 0

    async def test_a_slot_on_a_day_that_became_a_holiday_is_refused(self, client, capsys, frozen_clock):
        # this test alone uses July 2026: the override holds for every hall
        frozen_clock("2026-07-13T10:00:00+08:00")
        desk = await make_desk()
        slot_id = (await slot_ids(client, desk, "2026-07-14"))[0]
        await make_holiday_override(date(2026, 7, 14), is_workday=False, name="测试停办")
        tokens = await real_name_citizen(client, capsys)
        problem = _problem(await book(client, tokens, slot_id, desk.item), 409, "hall_closed_that_day")
        assert problem["date"] == "2026-07-14"
        assert (await AppointmentSlot.get(id=slot_id)).booked == 0

    async def test_a_suspended_citizen_is_told_until_when(self, client, capsys, desk):
        tokens = await real_name_citizen(client, capsys)
        other = await another_item(desk)
        ids = await slot_ids(client, desk)
        assert (await book(client, tokens, ids[0], desk.item)).status_code == 201    # 08:30-09:00
        assert (await book(client, tokens, ids[1], other.code)).status_code == 201   # 09:00-09:30
        clock.advance(timedelta(days=1))                    # Tuesday 10:00: both missed
        assert await service.mark_no_shows(client.rt) >= 2
        tokens = await refreshed(client, tokens)
        wednesday = (await slot_ids(client, desk, "2026-06-03"))[0]
        refused = await client.post("/api/v1/appointments", headers={**bearer(tokens), "Accept-Language": "en"},
                                    json={"slot_id": wednesday, "service_item": desk.item})
        problem = _problem(refused, 403, "booking_suspended")
        # 30 days after the end of the second missed slot, in the halls' time
        assert problem["until"] == "2026-07-02T09:30+08:00"
        assert "2026-07-02T09:30+08:00" in problem["detail"]
        assert await remaining(client, desk, wednesday, "2026-06-03") == 4


class TestListAppointments:
    async def test_a_citizen_sees_only_their_own_bookings_page_by_page(self, client, capsys, desk):
        ids = await slot_ids(client, desk)
        mine, theirs = await real_name_citizens(client, capsys, 2)
        other_items = [await another_item(desk) for _ in range(2)]
        for slot_id, item in zip(ids[:3], [desk.item, *[i.code for i in other_items]]):
            assert (await book(client, mine, slot_id, item)).status_code == 201
        assert (await book(client, theirs, ids[0], desk.item)).status_code == 201
        first = (await client.get("/api/v1/appointments", headers=bearer(mine), params={"page_size": 2})).json()
        second = (await client.get("/api/v1/appointments", headers=bearer(mine),
                                   params={"page_size": 2, "page": 2})).json()
        assert first["total"] == 3 and len(first["items"]) == 2 and len(second["items"]) == 1
        # latest slot first
        assert [a["slot"]["id"] for a in first["items"] + second["items"]] == [ids[2], ids[1], ids[0]]
        assert (await client.get("/api/v1/appointments", headers=bearer(theirs))).json()["total"] == 1

    async def test_a_status_filter(self, client, capsys, desk):
        ids = await slot_ids(client, desk)
        tokens = await real_name_citizen(client, capsys)
        booked = (await book(client, tokens, ids[0], desk.item)).json()
        await client.post(f"/api/v1/appointments/{booked['id']}/cancel", headers=bearer(tokens))
        cancelled = await client.get("/api/v1/appointments", headers=bearer(tokens), params={"status": "cancelled"})
        assert [a["id"] for a in cancelled.json()["items"]] == [booked["id"]]
        active = await client.get("/api/v1/appointments", headers=bearer(tokens), params={"status": "booked"})
        assert active.json()["total"] == 0

    async def test_staff_and_strangers_have_no_list(self, client):
        _problem(await client.get("/api/v1/appointments"), 401, "unauthenticated")


class TestGetAppointment:
    async def test_the_owner_reads_it_and_another_citizen_gets_404(self, client, capsys, desk):
        slot_id = (await slot_ids(client, desk))[0]
        owner, stranger = await real_name_citizens(client, capsys, 2)
        booked = (await book(client, owner, slot_id, desk.item)).json()
        read = await client.get(f"/api/v1/appointments/{booked['id']}", headers=bearer(owner))
        assert read.status_code == 200 and read.json() == booked
        _problem(await client.get(f"/api/v1/appointments/{booked['id']}", headers=bearer(stranger)),
                 404, "appointment_not_found")

    async def test_ids_are_ascii_digits_that_fit_a_row(self, client, capsys):
        tokens = await login_citizen(client, capsys)
        for raw in ("٣", "３", "0", "9223372036854775808", "99999999999999999999", "-1", "1e3"):
            _problem(await client.get(f"/api/v1/appointments/{raw}", headers=bearer(tokens)),
                     404, "appointment_not_found")


class TestCancelAppointment:
    async def test_cancelling_gives_the_seat_back_and_frees_the_day_for_the_item(self, client, capsys, desk):
        ids = await slot_ids(client, desk)
        tokens = await real_name_citizen(client, capsys)
        booked = (await book(client, tokens, ids[0], desk.item)).json()
        assert await remaining(client, desk, ids[0]) == 3
        cancelled = await client.post(f"/api/v1/appointments/{booked['id']}/cancel", headers=bearer(tokens))
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert await remaining(client, desk, ids[0]) == 4
        # the unique index holds one *active* booking per item and day: a new one fits beside the cancelled
        assert (await book(client, tokens, ids[3], desk.item)).status_code == 201
        assert await OutboxEvent.exists(kind="appointment.cancelled", aggregate=f"appointment:{booked['id']}")

    async def test_cancelling_twice_gives_the_seat_back_once(self, client, capsys, desk):
        slot_id = (await slot_ids(client, desk))[0]
        tokens = await real_name_citizen(client, capsys)
        booked = (await book(client, tokens, slot_id, desk.item)).json()
        answers = await asyncio.gather(*(client.post(f"/api/v1/appointments/{booked['id']}/cancel",
                                                     headers=bearer(tokens)) for _ in range(5)))
        assert {r.status_code for r in answers} == {200}
        assert (await AppointmentSlot.get(id=slot_id)).booked == 0
        assert await OutboxEvent.filter(kind="appointment.cancelled",
                                        aggregate=f"appointment:{booked['id']}").count() == 1

    async def test_cancelling_closes_two_hours_before_the_slot(self, client, capsys, desk):
        slot_id = (await slot_ids(client, desk))[0]                      # Tuesday 08:30
        other = await another_item(desk)
        tokens = await real_name_citizen(client, capsys)
        first = (await book(client, tokens, slot_id, desk.item)).json()
        second = (await book(client, tokens, slot_id, other.code)).json()
        clock.advance(timedelta(hours=20, minutes=30))     # Tuesday 06:30: the last minute to cancel
        tokens = await refreshed(client, tokens)
        in_time = await client.post(f"/api/v1/appointments/{first['id']}/cancel", headers=bearer(tokens))
        assert in_time.status_code == 200
        clock.advance(timedelta(minutes=1))
        problem = _problem(await client.post(f"/api/v1/appointments/{second['id']}/cancel", headers=bearer(tokens)),
                           409, "change_deadline_passed")
        assert problem["deadline"] == "2026-06-02T06:30+08:00"
        assert (await AppointmentSlot.get(id=slot_id)).booked == 1

    async def test_another_citizens_booking_cannot_be_cancelled(self, client, capsys, desk):
        slot_id = (await slot_ids(client, desk))[0]
        owner, stranger = await real_name_citizens(client, capsys, 2)
        booked = (await book(client, owner, slot_id, desk.item)).json()
        _problem(await client.post(f"/api/v1/appointments/{booked['id']}/cancel", headers=bearer(stranger)),
                 404, "appointment_not_found")
        assert (await AppointmentSlot.get(id=slot_id)).booked == 1


class TestRescheduleAppointment:
    async def test_a_booking_moves_to_another_slot_and_the_seats_follow(self, client, capsys, desk):
        ids = await slot_ids(client, desk)
        wednesday = (await slot_ids(client, desk, "2026-06-03"))[4]
        tokens = await real_name_citizen(client, capsys)
        booked = (await book(client, tokens, ids[0], desk.item)).json()
        moved = await client.post(f"/api/v1/appointments/{booked['id']}/reschedule", headers=bearer(tokens),
                                  json={"slot_id": wednesday})
        assert moved.status_code == 200, moved.text
        assert moved.json()["id"] == booked["id"] and moved.json()["slot"]["id"] == wednesday
        assert moved.json()["date"] == "2026-06-03" and moved.json()["status"] == "booked"
        assert await remaining(client, desk, ids[0]) == 4
        assert await remaining(client, desk, wednesday, "2026-06-03") == 3
        event = await OutboxEvent.get(kind="appointment.rescheduled", aggregate=f"appointment:{booked['id']}")
        assert event.payload["from_slot"] == ids[0] and event.payload["to_slot"] == wednesday

    async def test_a_reschedule_that_cannot_get_the_new_seat_keeps_the_old_one(self, client, capsys, desk):
        ids = await slot_ids(client, desk)
        await AppointmentSlot.filter(id=ids[6]).update(booked=4)
        tokens = await real_name_citizen(client, capsys)
        booked = (await book(client, tokens, ids[0], desk.item)).json()
        _problem(await client.post(f"/api/v1/appointments/{booked['id']}/reschedule", headers=bearer(tokens),
                                   json={"slot_id": ids[6]}), 409, "slot_full")
        kept = (await client.get(f"/api/v1/appointments/{booked['id']}", headers=bearer(tokens))).json()
        assert kept == booked
        assert (await AppointmentSlot.get(id=ids[0])).booked == 1
        assert (await AppointmentSlot.get(id=ids[6])).booked == 4

    async def test_many_reschedules_racing_for_the_last_seat_move_one_and_keep_the_rest(self, client, capsys, desk):
        ids = await slot_ids(client, desk)
        target = ids[12]
        await AppointmentSlot.filter(id=target).update(capacity=1)
        citizens = await real_name_citizens(client, capsys, 8)
        bookings = [(await book(client, c, ids[i % 4], desk.item)).json() for i, c in enumerate(citizens)]
        answers = await asyncio.gather(*(
            client.post(f"/api/v1/appointments/{b['id']}/reschedule", headers=bearer(c), json={"slot_id": target})
            for b, c in zip(bookings, citizens)))
        assert sorted(r.status_code for r in answers) == [200] + [409] * 7
        assert (await AppointmentSlot.get(id=target)).booked == 1
        # every seat is accounted for: 8 bookings, 8 seats taken
        assert sum([s.booked for s in await AppointmentSlot.filter(id__in=ids)]) == 8
        assert await Appointment.filter(slot_id=target).count() == 1

    async def test_reschedules_crossing_between_two_slots_at_once_all_finish(self, client, capsys, desk):
        # two and two: even with every new seat taken before any old one is given back, both fit (4 each)
        ids = await slot_ids(client, desk)
        citizens = await real_name_citizens(client, capsys, 4)
        bookings = [(await book(client, c, ids[i % 2], desk.item)).json() for i, c in enumerate(citizens)]
        answers = await asyncio.gather(*(
            client.post(f"/api/v1/appointments/{b['id']}/reschedule", headers=bearer(c),
                        json={"slot_id": ids[1 - i % 2]}) for i, (b, c) in enumerate(zip(bookings, citizens))))
        assert {r.status_code for r in answers} == {200}, [r.text for r in answers]
        assert [s.booked for s in await AppointmentSlot.filter(id__in=ids[:2]).order_by("id")] == [2, 2]
        assert {a.slot_id for a in await Appointment.filter(id__in=[b["id"] for b in bookings[::2]])} == {ids[1]}

    async def test_a_reschedule_onto_a_day_holding_the_same_item_changes_nothing(self, client, capsys, desk):
        ids = await slot_ids(client, desk)
        wednesday = await slot_ids(client, desk, "2026-06-03")
        tokens = await real_name_citizen(client, capsys)
        tuesday_booking = (await book(client, tokens, ids[0], desk.item)).json()
        assert (await book(client, tokens, wednesday[0], desk.item)).status_code == 201
        _problem(await client.post(f"/api/v1/appointments/{tuesday_booking['id']}/reschedule",
                                   headers=bearer(tokens), json={"slot_id": wednesday[1]}), 409, "already_booked")
        assert (await AppointmentSlot.get(id=wednesday[1])).booked == 0
        assert (await AppointmentSlot.get(id=ids[0])).booked == 1

    async def test_a_booking_moves_only_within_its_hall(self, client, capsys, desk):
        ids = await slot_ids(client, desk)
        elsewhere = await make_desk()
        other_slot = (await slot_ids(client, elsewhere))[0]
        tokens = await real_name_citizen(client, capsys)
        booked = (await book(client, tokens, ids[0], desk.item)).json()
        _problem(await client.post(f"/api/v1/appointments/{booked['id']}/reschedule", headers=bearer(tokens),
                                   json={"slot_id": other_slot}), 422, "reschedule_other_hall")
        assert (await AppointmentSlot.get(id=other_slot)).booked == 0

    async def test_a_cancelled_booking_cannot_be_moved(self, client, capsys, desk):
        ids = await slot_ids(client, desk)
        tokens = await real_name_citizen(client, capsys)
        booked = (await book(client, tokens, ids[0], desk.item)).json()
        await client.post(f"/api/v1/appointments/{booked['id']}/cancel", headers=bearer(tokens))
        problem = _problem(await client.post(f"/api/v1/appointments/{booked['id']}/reschedule",
                                             headers=bearer(tokens), json={"slot_id": ids[1]}),
                           409, "appointment_not_active")
        assert problem["appointment_status"] == "cancelled"
        assert (await AppointmentSlot.get(id=ids[1])).booked == 0


class TestCheckInQr:
    async def test_the_owner_gets_the_code_as_svg_or_png_kept_out_of_shared_caches(self, client, capsys, desk):
        slot_id = (await slot_ids(client, desk))[0]
        owner, stranger = await real_name_citizens(client, capsys, 2)
        booked = (await book(client, owner, slot_id, desk.item)).json()
        svg = await client.get(f"/api/v1/appointments/{booked['id']}/qr", headers=bearer(owner))
        assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
        assert svg.text.startswith("<svg") and svg.headers["cache-control"] == "private, no-store"
        png = await client.get(f"/api/v1/appointments/{booked['id']}/qr", headers=bearer(owner),
                               params={"format": "png"})
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.content.startswith(b"\x89PNG\r\n\x1a\n") and png.headers["cache-control"] == "private, no-store"
        _problem(await client.get(f"/api/v1/appointments/{booked['id']}/qr", headers=bearer(stranger)),
                 404, "appointment_not_found")
        _problem(await client.get(f"/api/v1/appointments/{booked['id']}/qr", headers=bearer(owner),
                                  params={"format": "gif"}), 422, "validation_failed")

    async def test_a_cancelled_booking_has_no_code(self, client, capsys, desk):
        slot_id = (await slot_ids(client, desk))[0]
        tokens = await real_name_citizen(client, capsys)
        booked = (await book(client, tokens, slot_id, desk.item)).json()
        await client.post(f"/api/v1/appointments/{booked['id']}/cancel", headers=bearer(tokens))
        _problem(await client.get(f"/api/v1/appointments/{booked['id']}/qr", headers=bearer(tokens)),
                 409, "appointment_not_active")
