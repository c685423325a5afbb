"""The User model: staff accounts with a role, an optional artist link and soft delete."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Dialect,
    ForeignKey,
    Integer,
    String,
    false,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, validates
from sqlalchemy.types import TypeDecorator

from data.db.base import Base, UTCDateTime
from studio_auth.clock import now

USERNAME_MAX_LENGTH = 150


class Role(StrEnum):
    ADMIN = "admin"
    ASSISTANT = "assistant"
    ARTIST = "artist"


class RoleType(TypeDecorator[Role]):
    """Stores a role as its plain string; reads it back as a ``Role`` (a ``str``)."""

    impl = String(16)
    cache_ok = True

    def process_bind_param(self, value: Role | str | None, dialect: Dialect) -> str | None:
        return None if value is None else Role(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> Role | None:
        return None if value is None else Role(value)


def normalize_username(username: object) -> str | None:
    """The lookup key for a username: trimmed, NFKC, case-folded.

    Returns None for anything that cannot be a username (not a string, empty, too long,
    control characters or lone surrogates), so callers treat it as "no such user".
    """
    if not isinstance(username, str) or len(username) > 4 * USERNAME_MAX_LENGTH:
        return None
    # NFKC, casefold, NFKC again: Unicode's recommended caseless identifier matching,
    # so "ADMIN", "admin" and fullwidth "ａｄｍｉｎ" are one account.
    key = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())
    key = key.strip()
    if not key or len(key) > USERNAME_MAX_LENGTH:
        return None
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Cf", "Zl", "Zp") for ch in key):
        return None
    return key


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'assistant', 'artist')", name="role_valid"),
        CheckConstraint(
            "(role = 'artist' AND artist_id IS NOT NULL)"
            " OR (role <> 'artist' AND artist_id IS NULL)",
            name="artist_link_matches_role",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(USERNAME_MAX_LENGTH))
    username_key: Mapped[str] = mapped_column(String(USERNAME_MAX_LENGTH), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(RoleType())
    artist_id: Mapped[int | None] = mapped_column(
        ForeignKey("artists.id", ondelete="RESTRICT"), index=True
    )
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    must_change_password: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    last_login: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Successful sign-ins so far; a change tells the throttle to forget earlier failures.
    sign_in_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)

    @validates("username")
    def _keep_key_in_step(self, _field: str, value: str) -> str:
        key = normalize_username(value)
        if key is None:
            raise ValueError("invalid username")
        self.username_key = key
        return value.strip()

    def __repr__(self) -> str:
        # Never the password hash.
        return (
            f"User(id={self.id!r}, username={self.username!r}, role={self.role!s}, "
            f"artist_id={self.artist_id!r}, is_active={self.is_active!r})"
        )
