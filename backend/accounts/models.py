from tortoise import fields
from tortoise.models import Model

from backend.kit.pii import NAME_MAX_CHARS, sealed_length

__all__ = ["Citizen", "CitizenContact", "WechatIdentity", "OtpChallenge", "RefreshToken", "StaffUser", "StaffGrant"]


class Citizen(Model):
    """A person who uses the service. Phone, name and ID number are stored encrypted (kit.pii),
    the *_index columns are HMAC blind indexes for equality lookups."""
    id = fields.BigIntField(primary_key=True)
    # each *_enc column holds the longest ciphertext of the longest value the API accepts
    # (kit.pii.sealed_length: at most 113 for an 11-digit phone, 153 for an ID number, 269 for a name)
    phone_enc = fields.CharField(max_length=160, null=True)
    phone_index = fields.CharField(max_length=64, null=True, unique=True)
    name_enc = fields.CharField(max_length=sealed_length(NAME_MAX_CHARS), null=True)
    id_number_enc = fields.CharField(max_length=160, null=True)
    # unique: one person, one account (two accounts with one ID number are joined by staff, not by chance)
    id_number_index = fields.CharField(max_length=64, null=True, unique=True)
    preferred_language = fields.CharField(max_length=2, default="zh")
    # which channels may carry notifications besides the in-app inbox (PATCH /api/v1/me)
    notify_wechat = fields.BooleanField(default=True)
    notify_sms = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    closed_at = fields.DatetimeField(null=True)     # 注销: personal data erased, the id kept for what the law keeps

    class Meta:
        table = "citizen"


class CitizenContact(Model):
    """A citizen's business with a hall, which lets that hall's staff read the citizen's personal data
    for a while (accounts.personal_data). For now a staff-side lookup; bookings, tickets, cases and
    conversations will add their own."""
    id = fields.BigIntField(primary_key=True)
    citizen = fields.ForeignKeyField("ehall.Citizen", related_name="contacts", on_delete=fields.CASCADE)
    hall_code = fields.CharField(max_length=12)
    source = fields.CharField(max_length=16)           # lookup | appointment | ticket | case | conversation
    staff_id = fields.BigIntField(null=True)
    at = fields.DatetimeField(auto_now_add=True)   # record_contact sets it from kit.clock

    class Meta:
        table = "citizen_contact"
        indexes = (("citizen_id", "hall_code", "at"),)


class WechatIdentity(Model):
    """A mini-program user (openid of our appid), tied to one citizen."""
    id = fields.BigIntField(primary_key=True)
    appid = fields.CharField(max_length=32)
    openid = fields.CharField(max_length=64)
    unionid = fields.CharField(max_length=64, null=True, db_index=True)
    citizen = fields.ForeignKeyField("ehall.Citizen", related_name="wechat_identities", on_delete=fields.CASCADE)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "wechat_identity"
        unique_together = (("appid", "openid"),)


class OtpChallenge(Model):
    """An SMS login code. Only its hash is kept, and it is burnt after `otp.max_attempts` wrong guesses or one use."""
    id = fields.BigIntField(primary_key=True)
    phone_index = fields.CharField(max_length=64, db_index=True)
    code_hash = fields.CharField(max_length=96)               # salt$hmac
    expires_at = fields.DatetimeField()
    attempts = fields.IntField(default=0)
    consumed_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "otp_challenge"


class RefreshToken(Model):
    """An opaque refresh token (stored as its SHA-256), valid once: using it issues the next one in
    the same family. Presenting a used one again revokes the whole family (a stolen token is dead)."""
    id = fields.BigIntField(primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    family = fields.CharField(max_length=32, db_index=True)
    subject_kind = fields.CharField(max_length=8)          # citizen | staff
    subject_id = fields.BigIntField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "refresh_token"
        indexes = (("subject_kind", "subject_id"),)


class StaffUser(Model):
    id = fields.BigIntField(primary_key=True)
    username = fields.CharField(max_length=64, unique=True)
    password_hash = fields.CharField(max_length=256)          # argon2id
    display_name = fields.CharField(max_length=64, default="")
    # for the SMS that tells the responsible staff of a time limit running out (encrypted, as a citizen's)
    phone_enc = fields.CharField(max_length=160, null=True)
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "staff_user"


class StaffGrant(Model):
    """One role of a staff member, scoped to a hall and/or a department (NULL = any)."""
    id = fields.BigIntField(primary_key=True)
    staff = fields.ForeignKeyField("ehall.StaffUser", related_name="grants", on_delete=fields.CASCADE)
    role = fields.CharField(max_length=16)
    hall_code = fields.CharField(max_length=12, null=True)
    department_code = fields.CharField(max_length=32, null=True)

    class Meta:
        table = "staff_grant"
