"""The service functions the kiosk check-in flow and the periodic jobs call, called directly (on the
same database and server runtime as the API): the check-in code, marking a booking checked in,
no-show marking and the suspension it leads to, slot generation."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from backend.appointments import service
from backend.appointments.models import Appointment, AppointmentSlot
from backend.appointments.permissions import require_check_in_scope
from backend.kit import clock
from backend.kit.auth import Grant, Principal
from backend.kit.errors import AppError
from backend.kit.models import OutboxEvent
from tests.appointments.conftest import Desk, another_item, book, make_desk, my_id, refreshed, slot_ids
from notify.service import expand_events
from tests.factories import bearer, real_name_citizen


async def _booked(client, capsys, desk: Desk, index: int = 0, day: str = "2026-06-02") -> tuple[dict, int]:
    """A real-name citizen's booking of the day's slot `index`, and the citizen's id."""
    tokens = await real_name_citizen(client, capsys)
    response = await book(client, tokens, (await slot_ids(client, desk, day))[index], desk.item)
    assert response.status_code == 201, response.text
    return {**response.json(), "tokens": tokens}, await my_id(client, tokens)


def _raises(code: str, status: int):
    class Expect:
        def __enter__(self):
            return self

        def __exit__(self, kind, error, trace):
            assert isinstance(error, AppError), f"expected AppError {code}, got {error!r}"
            assert (error.code, error.status) == (code, status)
            return True
    return Expect()


class TestVerifyCheckInCode:
    async def test_a_code_is_accepted_at_its_hall_within_the_window_around_the_slot(self, client, capsys, desk):
        booking, citizen = await _booked(client, capsys, desk)                  # Tuesday 08:30-09:00
        code = await service.check_in_code(client.rt, citizen_id=citizen, appointment_id=booking["id"])
        assert code.isascii() and len(code) <= 60 and code == code.upper()
        clock.advance(timedelta(hours=22))                                      # Tuesday 08:00: it opens
        assert await service.verify_check_in_code(client.rt, code=code, hall=desk.hall) == booking["id"]
        clock.advance(timedelta(hours=1))                                       # 09:00: the slot's end
        assert await service.verify_check_in_code(client.rt, code=f" {code.lower()} ", hall=desk.hall) \
            == booking["id"]

    async def test_a_forged_code_is_refused(self, client, capsys, desk):
        booking, citizen = await _booked(client, capsys, desk)
        code = await service.check_in_code(client.rt, citizen_id=citizen, appointment_id=booking["id"])
        clock.advance(timedelta(hours=22, minutes=10))
        prefix, appointment_id, hall, expires, mac = code.split(".")
        forgeries = [
            f"{prefix}.{int(appointment_id) + 1}.{hall}.{expires}.{mac}",        # another booking's id
            f"{prefix}.{appointment_id}.{hall}.{expires}.{'A' * 20}",           # a made-up signature
            f"{prefix}.{appointment_id}.{hall}.ZZZZZZZ.{mac}",                  # a longer life
            code[:-1], "", "EHA1", "x" * 500, "EHA1.١٢.150921.T.AAAAAAAAAAAAAAAAAAAA",
        ]
        for forged in forgeries:
            with _raises("check_in_code_invalid", 400):
                await service.verify_check_in_code(client.rt, code=forged, hall=desk.hall)

    async def test_a_code_of_another_hall_is_refused(self, client, capsys, desk):
        booking, citizen = await _booked(client, capsys, desk)
        code = await service.check_in_code(client.rt, citizen_id=citizen, appointment_id=booking["id"])
        clock.advance(timedelta(hours=22, minutes=10))
        elsewhere = await make_desk()
        with _raises("check_in_code_other_hall", 403):
            await service.verify_check_in_code(client.rt, code=code, hall=elsewhere.hall)

    async def test_a_code_after_its_slot_has_ended_is_expired(self, client, capsys, desk):
        booking, citizen = await _booked(client, capsys, desk)
        code = await service.check_in_code(client.rt, citizen_id=citizen, appointment_id=booking["id"])
        clock.advance(timedelta(hours=23, minutes=1))                           # Tuesday 09:01
        with _raises("check_in_code_expired", 410):
            await service.verify_check_in_code(client.rt, code=code, hall=desk.hall)

    async def test_a_code_long_before_its_slot_is_too_early(self, client, capsys, desk):
        booking, citizen = await _booked(client, capsys, desk)
        code = await service.check_in_code(client.rt, citizen_id=citizen, appointment_id=booking["id"])
        clock.advance(timedelta(hours=21, minutes=59))                          # Tuesday 07:59
        with _raises("check_in_too_early", 409):
            await service.verify_check_in_code(client.rt, code=code, hall=desk.hall)

    async def test_the_code_of_a_cancelled_booking_is_refused(self, client, capsys, desk):
        booking, citizen = await _booked(client, capsys, desk)
        code = await service.check_in_code(client.rt, citizen_id=citizen, appointment_id=booking["id"])
        await service.cancel_appointment(client.rt, citizen_id=citizen, appointment_id=booking["id"])
        clock.advance(timedelta(hours=22, minutes=10))
        with _raises("appointment_not_active", 409):
            await service.verify_check_in_code(client.rt, code=code, hall=desk.hall)

    async def test_a_code_drawn_before_a_reschedule_follows_the_new_slot(self, client, capsys, desk):
        booking, citizen = await _booked(client, capsys, desk)                  # Tuesday 08:30
        old_code = await service.check_in_code(client.rt, citizen_id=citizen, appointment_id=booking["id"])
        later = (await slot_ids(client, desk))[8]                               # Tuesday 15:00
        await service.reschedule_appointment(client.rt, citizen_id=citizen, appointment_id=booking["id"],
                                             slot_id=later)
        clock.advance(timedelta(hours=22, minutes=10))                          # 08:10: the old window
        with _raises("check_in_too_early", 409):
            await service.verify_check_in_code(client.rt, code=old_code, hall=desk.hall)
        clock.advance(timedelta(hours=6, minutes=30))                           # 14:40
        new_code = await service.check_in_code(client.rt, citizen_id=citizen, appointment_id=booking["id"])
        assert await service.verify_check_in_code(client.rt, code=new_code, hall=desk.hall) == booking["id"]


class TestMarkCheckedIn:
    async def test_a_booking_is_checked_in_once_and_again_changes_nothing(self, client, capsys, desk):
        booking, _ = await _booked(client, capsys, desk)
        clock.advance(timedelta(hours=22, minutes=10))
        first = await service.mark_checked_in(client.rt, appointment_id=booking["id"])
        again = await service.mark_checked_in(client.rt, appointment_id=booking["id"])
        assert first.status == again.status == "checked_in"
        row = await Appointment.get(id=booking["id"])
        assert row.checked_in_at == clock.now()
        events = await OutboxEvent.filter(kind="appointment.checked_in", aggregate=f"appointment:{booking['id']}")
        assert len(events) == 1 and set(events[0].payload) == {"appointment", "citizen", "slot", "hall"}

    async def test_a_cancelled_booking_cannot_be_checked_in(self, client, capsys, desk):
        booking, citizen = await _booked(client, capsys, desk)
        await service.cancel_appointment(client.rt, citizen_id=citizen, appointment_id=booking["id"])
        with _raises("appointment_not_active", 409):
            await service.mark_checked_in(client.rt, appointment_id=booking["id"])
        assert (await Appointment.get(id=booking["id"])).status == "cancelled"

    async def test_a_checked_in_booking_is_never_a_no_show_and_its_code_still_passes(self, client, capsys, desk):
        booking, citizen = await _booked(client, capsys, desk)
        code = await service.check_in_code(client.rt, citizen_id=citizen, appointment_id=booking["id"])
        clock.advance(timedelta(hours=22, minutes=10))
        await service.mark_checked_in(client.rt, appointment_id=booking["id"])
        # a second scan inside the window finds the same booking, so the flow can give the same ticket
        assert await service.verify_check_in_code(client.rt, code=code, hall=desk.hall) == booking["id"]
        clock.advance(timedelta(hours=3))
        await service.mark_no_shows(client.rt)
        assert (await Appointment.get(id=booking["id"])).status == "checked_in"


class TestMarkNoShows:
    async def test_bookings_not_checked_in_by_the_end_of_their_slot_become_no_shows_once(self, client, capsys, desk):
        early, _ = await _booked(client, capsys, desk, index=0)                 # 08:30-09:00
        late, _ = await _booked(client, capsys, desk, index=1)                  # 09:00-09:30
        clock.advance(timedelta(hours=23))                                      # Tuesday 09:00
        await service.mark_no_shows(client.rt)
        assert (await Appointment.get(id=early["id"])).status == "no_show"
        assert (await Appointment.get(id=late["id"])).status == "booked"
        await service.mark_no_shows(client.rt)
        assert (await Appointment.get(id=early["id"])).status == "no_show"
        events = await OutboxEvent.filter(kind="appointment.no_show", aggregate=f"appointment:{early['id']}")
        assert len(events) == 1 and set(events[0].payload) == {"appointment", "citizen", "slot", "hall", "starts_at"}

    async def test_a_run_counts_what_it_marked_and_a_second_run_marks_nothing(self, client, capsys, desk):
        missed = [(await _booked(client, capsys, desk, index=i))[0] for i in range(3)]
        # the horizon's runs have marked everything older already; from a moment past these three,
        # the only bookings due are these three and whatever other tests left due at that moment
        clock.advance(timedelta(days=1))
        first = await service.mark_no_shows(client.rt)
        assert first >= 3
        assert {a.status for a in await Appointment.filter(id__in=[m["id"] for m in missed])} == {"no_show"}
        assert await service.mark_no_shows(client.rt) == 0

    async def test_an_explicit_now_marks_up_to_that_instant(self, client, capsys, desk):
        booking, _ = await _booked(client, capsys, desk, index=12)              # 17:00-17:30
        slot_end = (await Appointment.get(id=booking["id"])).ends_at
        await service.mark_no_shows(client.rt, now=slot_end - timedelta(seconds=1))
        assert (await Appointment.get(id=booking["id"])).status == "booked"
        await service.mark_no_shows(client.rt, now=slot_end)
        assert (await Appointment.get(id=booking["id"])).status == "no_show"


class TestSuspension:
    async def test_two_no_shows_within_thirty_days_suspend_booking_for_thirty_days(self, client, capsys, desk):
        tokens = await real_name_citizen(client, capsys)
        citizen = await my_id(client, tokens)
        other = await another_item(desk)
        tuesday = await slot_ids(client, desk)
        await book(client, tokens, tuesday[0], desk.item)
        assert await service.suspended_until(client.rt, citizen_id=citizen) is None
        clock.advance(timedelta(days=1))                                        # Tuesday 10:00
        await service.mark_no_shows(client.rt)
        assert await service.suspended_until(client.rt, citizen_id=citizen) is None   # one is not enough
        tokens = await refreshed(client, tokens)
        wednesday = await slot_ids(client, desk, "2026-06-03")
        assert (await book(client, tokens, wednesday[0], other.code)).status_code == 201
        clock.advance(timedelta(days=1))                                        # Wednesday 10:00
        await service.mark_no_shows(client.rt)
        until = await service.suspended_until(client.rt, citizen_id=citizen)
        assert until == (await Appointment.get(citizen_id=citizen, day=date(2026, 6, 3))).ends_at + timedelta(days=30)
        suspended = await OutboxEvent.filter(kind="appointment.booking_suspended", aggregate=f"citizen:{citizen}")
        assert len(suspended) == 1 and set(suspended[0].payload) == {"citizen", "appointment", "until"}
        tokens = await refreshed(client, tokens)
        thursday = (await slot_ids(client, desk, "2026-06-04"))[0]
        refused = await book(client, tokens, thursday, desk.item)
        assert refused.status_code == 403 and refused.json()["code"] == "booking_suspended"
        # the day the suspension ends, booking works again
        clock.freeze(until + timedelta(minutes=1))
        assert await service.suspended_until(client.rt, citizen_id=citizen) is None

    async def test_two_no_shows_further_apart_than_the_window_do_not_suspend(self, client, capsys, desk):
        booking, citizen = await _booked(client, capsys, desk)
        await Appointment.filter(id=booking["id"]).update(
            status="no_show", ends_at=clock.now() - timedelta(days=40), starts_at=clock.now() - timedelta(days=40))
        second, _ = await _booked(client, capsys, desk, index=3)
        await Appointment.filter(id=second["id"]).update(citizen_id=citizen, item_code="x", status="no_show",
                                                         ends_at=clock.now() - timedelta(hours=1))
        assert await service.suspended_until(client.rt, citizen_id=citizen) is None
        third, _ = await _booked(client, capsys, desk, index=4)
        await Appointment.filter(id=third["id"]).update(citizen_id=citizen, item_code="y", status="no_show",
                                                        ends_at=clock.now() - timedelta(days=20))
        assert await service.suspended_until(client.rt, citizen_id=citizen) == \
            (await Appointment.get(id=second["id"])).ends_at + timedelta(days=30)


class TestGenerateSlots:
    async def test_generating_twice_makes_the_day_once(self, client, desk):
        day = date(2026, 6, 4)
        assert await service.generate_slots(client.rt, hall=desk.hall, category="A", day=day) == 13
        assert await service.generate_slots(client.rt, hall=desk.hall, category="A", day=day) == 13
        assert await AppointmentSlot.filter(hall_id=desk.hall, category="A", day=day).count() == 13

    async def test_a_holiday_gets_no_slots(self, client, desk):
        assert await service.generate_slots(client.rt, hall=desk.hall, category="A", day=date(2026, 10, 2)) == 0
        assert await service.generate_slots(client.rt, hall=desk.hall, category="A", day=date(2026, 6, 6)) == 0


class TestCheckInScope:
    @pytest.mark.parametrize("grant,allowed", [
        (Grant("kiosk", hall="150921"), True),
        (Grant("window_clerk", hall="150921"), True),
        (Grant("window_clerk", hall="150921", department="150921-ga"), True),
        (Grant("window_clerk", hall="150921", department="150921-bdc"), False),   # another department
        (Grant("kiosk", hall="150902"), False),            # another county
        (Grant("kiosk", hall="150900"), False),            # a kiosk serves exactly its hall
        (Grant("supervisor", hall="150900"), True),        # a supervisor reaches the halls below
        (Grant("approver", hall="150921"), False),
    ])
    def test_only_the_halls_kiosks_and_the_departments_clerks_check_in(self, grant, allowed):
        principal = Principal(kind="staff", id=1, grants=(grant,))
        if allowed:
            require_check_in_scope(principal, ["150921", "150900"], "150921-ga")
        else:
            with _raises("out_of_scope", 403):
                require_check_in_scope(principal, ["150921", "150900"], "150921-ga")


class TestRemindTomorrow:
    async def test_each_booking_of_tomorrow_is_reminded_once_from_the_evening_before(self, client, capsys, desk):
        booking, citizen = await _booked(client, capsys, desk)                  # Tuesday 08:30-09:00
        assert await service.remind_tomorrow(client.rt) == 0                    # Monday 10:00: too early
        clock.advance(timedelta(hours=7))                                       # Monday 17:00
        assert await service.remind_tomorrow(client.rt) >= 1
        assert await service.remind_tomorrow(client.rt) == 0
        events = await OutboxEvent.filter(kind="appointment.reminder", aggregate=f"appointment:{booking['id']}")
        assert len(events) == 1
        assert events[0].payload["citizen"] == citizen and events[0].payload["item"] == desk.item
        assert events[0].payload["starts_at"] == "2026-06-02T00:30:00+00:00"

    async def test_a_cancelled_booking_is_not_reminded(self, client, capsys, desk):
        booking, citizen = await _booked(client, capsys, desk)
        await service.cancel_appointment(client.rt, citizen_id=citizen, appointment_id=booking["id"])
        clock.advance(timedelta(hours=7))
        await service.remind_tomorrow(client.rt)
        assert not await OutboxEvent.filter(kind="appointment.reminder", aggregate=f"appointment:{booking['id']}")

    async def test_the_reminder_reaches_the_citizens_inbox_in_words(self, client, capsys, desk):
        booking, citizen = await _booked(client, capsys, desk)
        clock.advance(timedelta(hours=7))
        await service.remind_tomorrow(client.rt)
        while await expand_events(client.rt, limit=500):
            pass
        tokens = await refreshed(client, booking["tokens"])              # seven hours on: a new access token
        inbox = (await client.get("/api/v1/me/notifications", headers=bearer(tokens))).json()
        reminder = next(entry for entry in inbox["items"] if entry["kind"] == "appointment.reminder")
        assert reminder["title"] == "明日预约提醒"
        assert "2026年6月2日 08:30" in reminder["body"]
