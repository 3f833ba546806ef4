"""Tables every domain writes to: the event outbox and the audit log; the leases of periodic jobs."""
from tortoise import fields
from tortoise.models import Model

__all__ = ["OutboxEvent", "AuditEntry", "JobLease"]


class OutboxEvent(Model):
    """A domain event, written in the same transaction as the change it describes. notify consumes it."""
    id = fields.BigIntField(primary_key=True)
    kind = fields.CharField(max_length=64)             # "citizen.phone_bound", "case.status_changed", ...
    aggregate = fields.CharField(max_length=64)        # "citizen:42"
    payload = fields.JSONField(default=dict)           # ids and codes only, never personal data in clear
    occurred_at = fields.DatetimeField(auto_now_add=True)
    processed_at = fields.DatetimeField(null=True)
    attempts = fields.IntField(default=0)

    class Meta:
        table = "outbox_event"
        indexes = (("processed_at", "id"),)


class AuditEntry(Model):
    """Who read or changed what, and when: every staff read of a citizen personal data leaves a row."""
    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField(auto_now_add=True)
    actor_kind = fields.CharField(max_length=16)       # staff | citizen | system
    actor_id = fields.CharField(max_length=64)
    action = fields.CharField(max_length=64)           # "citizen.pii.read", "staff.create", ...
    subject_kind = fields.CharField(max_length=32)
    subject_id = fields.CharField(max_length=64)
    request_id = fields.CharField(max_length=64, null=True)
    detail = fields.JSONField(default=dict)

    class Meta:
        table = "audit_entry"
        indexes = (("subject_kind", "subject_id"), ("actor_kind", "actor_id"))


class JobLease(Model):
    """Who may run a periodic job now, and how its last run went (kit.jobs). One row per job: a runner
    takes it with a conditional UPDATE (expired, or already its own), so of all the processes on all
    the machines one at a time runs the job, and a crashed holder's lease simply runs out."""
    name = fields.CharField(max_length=64, primary_key=True)
    holder = fields.CharField(max_length=96)           # "host:pid:random" of the runner holding it
    expires_at = fields.DatetimeField()
    last_run_at = fields.DatetimeField(null=True)      # when the last run started, ok or not
    last_ok_at = fields.DatetimeField(null=True)       # when the last successful run started
    runs = fields.BigIntField(default=0)
    last_error = fields.CharField(max_length=300, null=True)  # exception class and redacted message

    class Meta:
        table = "job_lease"
