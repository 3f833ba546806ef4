from __future__ import annotations

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


class CitizenProfile(BaseModel):
    """A citizen's own profile: personal data masked, as in every response."""
    id: int
    phone: str | None = Field(description="masked: 138****1234")
    name: str | None = Field(description="masked: 张*")
    id_number: str | None = Field(description="masked: 150***********123X")
    preferred_language: Language
    wechat_bound: bool


class ProfilePatch(_Strict):
    name: str | None = Field(None, min_length=1, max_length=NAME_MAX_CHARS)
    id_number: str | None = Field(None, max_length=18, description="18-character resident ID number")
    preferred_language: Language | None = None

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
