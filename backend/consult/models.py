"""Consulting (咨询): conversations between a citizen (or an official-account follower) and the staff
of a department, and their messages."""
from tortoise import fields
from tortoise.models import Model

__all__ = ["Conversation", "ConversationMessage", "OfficialAccountInbound", "CONVERSATION_STATUSES",
           "ACTIVE_STATUSES"]

# open (waiting for staff) -> pending (a staff member answered; waiting for the citizen) -> resolved;
# a citizen's message makes it open again, a resolved one too (reopened)
CONVERSATION_STATUSES = ("open", "pending", "resolved")
ACTIVE_STATUSES = ("open", "pending")


class Conversation(Model):
    id = fields.BigIntField(primary_key=True)
    # the citizen; None for an official-account follower whose openid is bound to no citizen yet
    citizen_id = fields.BigIntField(null=True)
    channel = fields.CharField(max_length=8)                    # app | oa (the official account)
    oa_openid = fields.CharField(max_length=64, null=True)      # the follower, for channel "oa"
    hall_code = fields.CharField(max_length=12)
    # the hall and its ancestors, "/150921001/150921/150900/": a supervisor's grant on a county finds
    # its townships' conversations with one LIKE, as the grant's subtree rule reads
    hall_path = fields.CharField(max_length=120)
    department_code = fields.CharField(max_length=32, default="")   # "": the hall's comprehensive desk
    item_code = fields.CharField(max_length=48, null=True)
    status = fields.CharField(max_length=10, default="open")
    assignee_id = fields.BigIntField(null=True)                 # the staff member answering it
    # the client_msg_id of the first message: a retried opening finds the conversation it made
    opening_client_msg_id = fields.CharField(max_length=64, null=True)
    flagged = fields.BooleanField(default=False)                # a message content security sent to review
    business_date = fields.DateField()                          # opened on this local day (supervision)
    created_at = fields.DatetimeField()
    last_message_at = fields.DatetimeField()
    last_citizen_message_at = fields.DatetimeField()            # the official account's 48-hour reply window
    first_answered_at = fields.DatetimeField(null=True)
    resolved_at = fields.DatetimeField(null=True)
    citizen_read_up_to = fields.BigIntField(default=0)
    staff_read_up_to = fields.BigIntField(default=0)

    class Meta:
        table = "conversation"
        unique_together = (("citizen_id", "opening_client_msg_id"),)
        indexes = (("hall_code", "department_code", "status"), ("assignee_id", "status"),
                   ("citizen_id", "last_message_at"), ("oa_openid", "status"), ("business_date", "department_code"))


class ConversationMessage(Model):
    id = fields.BigIntField(primary_key=True)
    conversation = fields.ForeignKeyField("ehall.Conversation", related_name="messages", on_delete=fields.CASCADE)
    sender_kind = fields.CharField(max_length=8)                # citizen | staff | follower
    sender_id = fields.BigIntField()                            # citizen or staff id; 0 for a follower
    client_msg_id = fields.CharField(max_length=64)             # the sender's: a retry finds the first
    text = fields.TextField(default="")                         # "" for an image without words
    review = fields.BooleanField(default=False)                 # content security said "review": staff check it
    # a photo (of a document), kept in the Runtime's FileStore under a key it made; its type was sniffed
    # from its bytes (kit.filetypes), never taken from the client's word
    image_key = fields.CharField(max_length=32, null=True)
    image_type = fields.CharField(max_length=16, null=True)
    image_size = fields.IntField(null=True)
    image_sha256 = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "conversation_message"
        unique_together = (("conversation", "sender_kind", "sender_id", "client_msg_id"),)


class OfficialAccountInbound(Model):
    """A callback message taken from WeChat, by its MsgId (an event by its sender and time): WeChat
    retries a callback it got no answer to within 5 seconds, and a retry must change nothing."""
    key = fields.CharField(max_length=96, primary_key=True)
    received_at = fields.DatetimeField()

    class Meta:
        table = "official_account_inbound"
