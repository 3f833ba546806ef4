from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from backend.accounts.schemas import CitizenLogin, TokenPair


class WechatCode(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    code: str = Field(min_length=1, max_length=128, pattern=r"^[0-9A-Za-z_-]+$")


class WechatLogin(CitizenLogin):
    phone_bound: bool


class PhoneBound(TokenPair):
    citizen_id: int
    merged: bool = Field(description="true when this WeChat user joined the citizen who already had the phone")
