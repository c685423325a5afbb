"""Request and response bodies, and the date-time query type. Passwords are ``SecretStr``:
never in a repr, a log line or a validation error."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
)

from data.db.base import DB_ID_MAX
from services.artists import NAME_MAX_LENGTH as ARTIST_NAME_MAX

RoleName = Literal["admin", "assistant", "artist"]
# Longer than any username or password the services accept, so that the services, not
# the schema, decide (and a too-long password at login is the same 401 as a wrong one).
NAME_MAX = 1024
PASSWORD_MAX = 8192


T = TypeVar("T")


def _refuse_null(value: T | None) -> T | None:
    if value is None:
        raise ValueError("leave the field out instead of sending null")
    return value


def _drop_null(schema: dict[str, Any]) -> None:
    """The field's JSON schema without its null branch and its null default."""
    (kept,) = [branch for branch in schema.pop("anyOf") if branch.get("type") != "null"]
    schema.update(kept)
    schema.pop("default", None)


# A field a request may leave out (left unchanged), but never send as null: the schema
# says so, so a client generator does not offer null.
Omittable = Annotated[T | None, AfterValidator(_refuse_null), Field(json_schema_extra=_drop_null)]

# RFC 3339's date-time with an offset, which the schema's "format": "date-time" promises;
# pydantic alone also reads a number of seconds ("0.5") as a time.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339_text(value: object) -> object:
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("expected an RFC 3339 date-time with an offset: 2026-01-05T09:00:00Z")
    return value


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError("the date-time is out of range") from None


DateTime = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(_in_utc)]


def _whole_number(value: object) -> object:
    """A float with no fraction as the int it is; anything else as it came."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# The integers request bodies carry, taken as JSON Schema counts integers: 5 or 5.0, never
# 5.5, "5" or true. (The bounds come before the validator, or pydantic leaves them out of
# the JSON schema's minimum and maximum.)
RowId = Annotated[int, Field(ge=1, le=DB_ID_MAX), BeforeValidator(_whole_number)]
ElevationMinutes = Annotated[int, Field(ge=1, le=30), BeforeValidator(_whole_number)]


class _Request(BaseModel):
    # Strict: a JSON value of the wrong type is refused, not converted (ASVS 5.0 V2.2.1
    # input validation): "no" and 0 are not false, "5" and true are not the number 5.
    # An integer field is a RowId or the like, or 5.0, an integer to the schema, is refused.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, strict=True)


class LoginRequest(_Request):
    username: str = Field(max_length=NAME_MAX)
    password: SecretStr = Field(max_length=PASSWORD_MAX)


class PasswordChangeRequest(_Request):
    current_password: SecretStr = Field(max_length=PASSWORD_MAX)
    new_password: SecretStr = Field(min_length=1, max_length=PASSWORD_MAX)


class ElevateRequest(_Request):
    """The approving admin's credentials, typed on the assistant's device."""

    username: str = Field(max_length=NAME_MAX)
    password: SecretStr = Field(max_length=PASSWORD_MAX)
    minutes: ElevationMinutes | None = None


class UserCreateRequest(_Request):
    username: str = Field(max_length=NAME_MAX)
    password: SecretStr = Field(min_length=1, max_length=PASSWORD_MAX)
    role: RoleName
    artist_id: RowId | None = None
    # The admin chose this password, so by default it lasts until the first sign-in
    # (ASVS 5.0 6.4.1); false when the person typed their own.
    must_change_password: bool = True


class UserUpdateRequest(_Request):
    """Any of the fields; a field left out is unchanged."""

    role: Omittable[RoleName] = None
    artist_id: RowId | None = None
    is_active: Omittable[bool] = None


class PasswordResetRequest(_Request):
    new_password: SecretStr = Field(min_length=1, max_length=PASSWORD_MAX)
    must_change_password: bool = True  # as for UserCreateRequest


class ArtistRequest(_Request):
    """An artist record's name (trimmed; at most 200 characters, none of them control
    characters)."""

    name: str = Field(min_length=1, max_length=ARTIST_NAME_MAX)


class ArtistOut(BaseModel):
    id: int
    name: str
    created_at: datetime


class UserOut(BaseModel):
    """The user as ``authenticate()`` describes it."""

    id: int
    username: str
    role: RoleName
    artist_id: int | None
    must_change_password: bool = False


class UserDetail(UserOut):
    """An account as administrators see it."""

    is_active: bool
    last_login: datetime | None
    created_at: datetime
    password_changed_at: datetime


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105  (the scheme's name, not a secret)
    expires_at: datetime
    user: UserOut


class SessionOut(BaseModel):
    id: int
    expires_at: datetime
    idle_expires_at: datetime
    elevated_by: int | None
    elevated_until: datetime | None


class MeResponse(BaseModel):
    user: UserOut
    session: SessionOut


class SessionListItem(BaseModel):
    id: int
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    client_ip: str | None
    user_agent: str | None
    elevated_until: datetime | None
    current: bool


class PermissionsResponse(BaseModel):
    role: RoleName
    permissions: dict[str, Literal["allow", "own", "supervised"]]
    elevated_until: datetime | None


class ElevationResponse(BaseModel):
    session_id: int
    elevated_until: datetime


class RevokedResponse(BaseModel):
    revoked: int


class UnlockResponse(BaseModel):
    unlocked: bool


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    event: str
    outcome: str
    user_id: int | None
    actor_id: int | None
    username: str | None
    client_ip: str | None
    session_id: int | None
    detail: dict[str, Any]


class HealthResponse(BaseModel):
    status: Literal["ok", "ready"]
