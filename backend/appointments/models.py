from tortoise import fields
from tortoise.models import Model

__all__ = ["AppointmentSlot", "Appointment", "ACTIVE"]

# Appointment.active_key of a booking that still holds its day: the unique index on
# (citizen, item, day, active_key) lets one such booking exist; a cancelled one has NULL, and NULLs
# never collide, so cancelled bookings pile up freely beside the active one.
ACTIVE = 1


class AppointmentSlot(Model):
    """A bookable period (预约时段) of one hall's queue category on one working day. `booked` only
    moves by conditional updates (`booked < capacity` to take a seat), never by read-modify-write."""
    id = fields.BigIntField(primary_key=True)
    hall = fields.ForeignKeyField("ehall.Hall", related_name="appointment_slots", on_delete=fields.RESTRICT)
    category = fields.CharField(max_length=1)          # the queue category's prefix letter
    day = fields.DateField()                           # business date, Asia/Shanghai
    starts_at = fields.DatetimeField()
    ends_at = fields.DatetimeField()
    capacity = fields.IntField()
    booked = fields.IntField(default=0)

    class Meta:
        table = "appointment_slot"
        # made lazily by whoever first asks for the day: the index makes a second maker a no-op
        unique_together = (("hall", "category", "starts_at"),)
        indexes = (("hall_id", "category", "day"),)


class Appointment(Model):
    """A citizen's booking (预约) of a slot for one service item. The slot's day and times are copied
    here (and moved with a reschedule) so that lists, deadlines and the no-show job need no join."""
    id = fields.BigIntField(primary_key=True)
    # no foreign key: a booking outlives the account rows it was made from (accounts may fold a
    # WeChat-only citizen into another); it is the citizen's id, never their personal data
    citizen_id = fields.BigIntField()
    slot = fields.ForeignKeyField("ehall.AppointmentSlot", related_name="appointments", on_delete=fields.RESTRICT)
    hall_code = fields.CharField(max_length=12)
    category = fields.CharField(max_length=1)
    item_code = fields.CharField(max_length=48)
    day = fields.DateField()
    starts_at = fields.DatetimeField()
    ends_at = fields.DatetimeField()
    status = fields.CharField(max_length=12, default="booked")   # booked | checked_in | cancelled | no_show
    active_key = fields.SmallIntField(null=True, default=ACTIVE)  # ACTIVE, or NULL once cancelled
    # set from kit.clock (not the ORM's own now), so that business time in tests is one time
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    cancelled_at = fields.DatetimeField(null=True)
    checked_in_at = fields.DatetimeField(null=True)
    reminded_at = fields.DatetimeField(null=True)  # the day-before reminder was recorded (once)

    class Meta:
        table = "appointment"
        # one active booking per citizen, item and day: the database says no to the second
        unique_together = (("citizen_id", "item_code", "day", "active_key"),)
        indexes = (("citizen_id", "starts_at"), ("status", "ends_at"))
