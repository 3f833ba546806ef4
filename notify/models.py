"""What notify keeps: one row per message to send (a delivery), the citizen's inbox, and the WeChat
one-time subscriptions a citizen has granted (credits)."""
from tortoise import fields
from tortoise.models import Model

__all__ = ["Delivery", "InboxNotification", "SubscriptionCredit"]


class Delivery(Model):
    """One event told to one person through one channel. The unique (event, channel, recipient) key
    makes expanding an event twice harmless; the status moves pending -> sending -> sent -> delivered
    (a provider's receipt), or failed (to be tried again at next_attempt_at) and finally dead;
    skipped when the channel cannot carry it (no WeChat consent, SMS turned off).
    A `sending` row whose lease has run out belonged to a worker that died: it is claimed again."""
    id = fields.BigIntField(primary_key=True)
    event_id = fields.BigIntField()                    # outbox_event.id
    kind = fields.CharField(max_length=64)             # the event's kind, for the admins' list
    channel = fields.CharField(max_length=8)           # wechat | sms
    recipient_kind = fields.CharField(max_length=8)    # citizen
    recipient_id = fields.BigIntField()
    template = fields.CharField(max_length=48)         # config/templates/notifications.toml
    language = fields.CharField(max_length=2)
    urgent = fields.BooleanField(default=False)        # sent in quiet hours too (a ticket call)
    params = fields.JSONField(default=dict)            # the template's values: numbers, names of halls; no PII
    status = fields.CharField(max_length=10, default="pending")
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    lease_until = fields.DatetimeField(null=True)      # while sending: another worker may take it after this
    claimed_by = fields.CharField(max_length=96, null=True)
    # set just before the provider is called, cleared with the outcome: a claimer that died in between
    # leaves it set, and whoever takes the delivery over first asks the provider whether it went out
    handed_at = fields.DatetimeField(null=True)
    provider_message_id = fields.CharField(max_length=64, null=True)
    last_error = fields.CharField(max_length=300, null=True)
    created_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)
    delivered_at = fields.DatetimeField(null=True)

    class Meta:
        table = "notify_delivery"
        unique_together = (("event_id", "channel", "recipient_kind", "recipient_id"),)
        indexes = (("status", "next_attempt_at"), ("provider_message_id",))


class InboxNotification(Model):
    """The in-app copy of every notification a citizen gets, whatever else reached them."""
    id = fields.BigIntField(primary_key=True)
    citizen_id = fields.BigIntField()
    event_id = fields.BigIntField()
    kind = fields.CharField(max_length=64)
    title = fields.CharField(max_length=120)
    body = fields.CharField(max_length=500)
    created_at = fields.DatetimeField()
    read_at = fields.DatetimeField(null=True)

    class Meta:
        table = "notify_inbox"
        unique_together = (("event_id", "citizen_id"),)
        indexes = (("citizen_id", "id"),)


class SubscriptionCredit(Model):
    """WeChat one-time subscriptions (一次性订阅): each acceptance of wx.requestSubscribeMessage allows
    one subscribe message of that template to that user; a send spends one."""
    id = fields.BigIntField(primary_key=True)
    citizen_id = fields.BigIntField()
    template_id = fields.CharField(max_length=64)
    remaining = fields.IntField(default=0)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "notify_subscription_credit"
        unique_together = (("citizen_id", "template_id"),)
