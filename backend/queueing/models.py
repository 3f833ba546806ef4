from tortoise import fields
from tortoise.models import Model

__all__ = ["TicketCounter", "Ticket", "TICKET_STATUSES", "OPEN_STATUSES"]

# waiting -> called -> serving -> done; called -> missed (过号) -> waiting (requeue, once);
# waiting -> cancelled (the holder); anything open at the end of its business day -> closed
TICKET_STATUSES = ("waiting", "called", "serving", "done", "missed", "cancelled", "closed")
OPEN_STATUSES = ("waiting", "called", "serving", "missed")


class TicketCounter(Model):
    """The last ticket number given in a hall for a prefix on a business date.

    Incremented under its row lock by every ticket issued, so numbers are gapless: a rolled-back issue
    gives its number back."""
    id = fields.BigIntField(primary_key=True)
    hall_code = fields.CharField(max_length=12)
    prefix = fields.CharField(max_length=1)
    business_date = fields.DateField()
    last_seq = fields.IntField(default=0)

    class Meta:
        table = "ticket_counter"
        unique_together = (("hall_code", "prefix", "business_date"),)


class Ticket(Model):
    """A queue ticket (号), numbered prefix + seq for its hall and business day.

    The number never changes, while `category` is the queue it waits in now (a transfer moves it). Order
    in a queue: `rank` (from the priority), then `arrived_at`."""
    id = fields.BigIntField(primary_key=True)
    hall_code = fields.CharField(max_length=12)
    prefix = fields.CharField(max_length=1)
    business_date = fields.DateField()
    seq = fields.IntField()
    number = fields.CharField(max_length=8)
    category = fields.CharField(max_length=1)
    source = fields.CharField(max_length=12)            # kiosk | remote | appointment
    priority = fields.CharField(max_length=16)          # normal | appointment | elderly | disabled | green_channel
    rank = fields.SmallIntField()                       # from priority: lower is called first
    status = fields.CharField(max_length=10, default="waiting")
    citizen_id = fields.BigIntField(null=True)
    appointment_id = fields.BigIntField(null=True, unique=True)   # one ticket per booking (check-in)
    # the holder while the ticket waits, else null: with the unique index below, at most one waiting
    # ticket per citizen per hall and category (NULLs never collide)
    waiting_holder = fields.BigIntField(null=True)
    arrived_at = fields.DatetimeField()
    window_number = fields.CharField(max_length=8, null=True)   # the window that called it last
    window_department = fields.CharField(max_length=32, null=True)
    directed_window = fields.CharField(max_length=8, null=True)  # transferred to this window only
    called_at = fields.DatetimeField(null=True)
    recalls = fields.SmallIntField(default=0)
    started_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    missed_at = fields.DatetimeField(null=True)
    requeued = fields.BooleanField(default=False)
    turn_near_at = fields.DatetimeField(null=True)
    closed_from = fields.CharField(max_length=10, null=True)   # the status it had when the day was closed
    created_at = fields.DatetimeField()

    class Meta:
        table = "ticket"
        unique_together = (("hall_code", "prefix", "business_date", "seq"),
                           ("hall_code", "category", "waiting_holder"))
        indexes = (("hall_code", "status", "category", "rank", "arrived_at"),
                   ("citizen_id", "created_at"), ("business_date", "status"))
