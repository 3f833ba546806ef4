from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backend.catalog.schemas import HALL_CODE_PATTERN
from backend.kit.auth import STAFF_ROLES
from backend.kit.identity import normalize_id_number, normalize_phone
from backend.kit.pii import NAME_MAX_CHARS

Language = Literal["zh", "mn", "en"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SmsCodeRequest(_Strict):
    phone: str = Field(max_length=20, description="mainland mobile number, e.g. 13800001111")

    _phone = field_validator("phone")(lambda cls, v: normalize_phone(v))


class SmsCodeSent(BaseModel):
    expires_in: int
    resend_after: int


class SmsLoginRequest(_Strict):
    phone: str = Field(max_length=20)
    code: str = Field(pattern=r"^\d{4,8}$", description="the code from the SMS")

    _phone = field_validator("phone")(lambda cls, v: normalize_phone(v))


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


class CitizenLogin(TokenPair):
    is_new: bool = Field(description="a citizen created by this login: the app should ask for the profile")


class RefreshRequest(_Strict):
    refresh_token: str = Field(min_length=16, max_length=128)


class NotificationChannels(BaseModel):
    """Which channels may carry notifications; the in-app inbox always gets them."""
    wechat: bool = Field(description="WeChat subscribe messages (each needs the user's one-time consent)")
    sms: bool = Field(description="SMS, also the fallback when WeChat cannot be used")


class NotificationChannelsPatch(_Strict):
    wechat: bool | None = None
    sms: bool | None = None


class CitizenProfile(BaseModel):
    """A citizen's own profile: personal data masked, as in every response."""
    id: int
    phone: str | None = Field(description="masked: 138****1234")
    name: str | None = Field(description="masked: 张*")
    id_number: str | None = Field(description="masked: 150***********123X")
    preferred_language: Language
    wechat_bound: bool
    notifications: NotificationChannels


class ProfilePatch(_Strict):
    name: str | None = Field(None, min_length=1, max_length=NAME_MAX_CHARS)
    id_number: str | None = Field(None, max_length=18, description="18-character resident ID number")
    preferred_language: Language | None = Field(None, description="also the language of notifications")
    notifications: NotificationChannelsPatch | None = None

    _id_number = field_validator("id_number")(lambda cls, v: None if v is None else normalize_id_number(v))


class StaffLoginRequest(_Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class GrantOut(BaseModel):
    role: Literal[STAFF_ROLES]  # type: ignore[valid-type]
    hall: str | None
    department: str | None


class StaffProfile(BaseModel):
    id: int
    username: str
    display_name: str
    grants: list[GrantOut]


class CitizenLookup(_Strict):
    phone: str = Field(max_length=20)
    hall: str = Field(pattern=HALL_CODE_PATTERN, description="the hall the citizen is being served in")

    _phone = field_validator("phone")(lambda cls, v: normalize_phone(v))


class PiiReadQuery(_Strict):
    hall: str = Field(pattern=HALL_CODE_PATTERN, description="the hall where the citizen has business")
    reason: str = Field(min_length=2, max_length=200, description="why the unmasked data is needed (audited)")


class CitizenPii(BaseModel):
    """Unmasked personal data for a staff member whose role needs it; every read is audited."""
    id: int
    phone: str | None
    name: str | None
    id_number: str | None


class CloseAccountQuery(_Strict):
    confirm: Literal["true"] = Field(
        json_schema_extra={"enum": ["true"]},
        description="must be `true`: closing erases the phone, name and ID number and cannot be undone")


class ExportedProfile(BaseModel):
    """The citizen's own personal data, unmasked: it is their copy (PIPL art. 45)."""
    id: int
    phone: str | None
    name: str | None
    id_number: str | None
    preferred_language: Language
    created_at: datetime


class ExportedWechatBinding(BaseModel):
    appid: str
    created_at: datetime


class ExportedSession(BaseModel):
    """One login (its refresh tokens taken together); never a token or its hash."""
    created_at: datetime
    last_refreshed_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class ExportedPersonalDataRead(BaseModel):
    """A staff member who looked the citizen up or read their unmasked data."""
    at: datetime
    action: Literal["citizen.lookup", "citizen.pii.read"]
    staff_id: int | None
    hall: str | None
    reason: str | None


class CitizenExport(BaseModel):
    """Everything the centre holds about the citizen's account (PIPL art. 45)."""
    exported_at: datetime
    profile: ExportedProfile
    wechat: list[ExportedWechatBinding]
    sessions: list[ExportedSession]
    personal_data_reads: list[ExportedPersonalDataRead]
