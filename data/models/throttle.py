"""Counters for brute-force protection, one row per key (username or client address)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from data.db.base import Base, UTCDateTime


class ThrottleCounter(Base):
    __tablename__ = "throttle_counters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime())
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    # For a username: the account's sign_in_count when the last attempt was counted.
    sign_in_count: Mapped[int | None] = mapped_column(Integer)

    def __repr__(self) -> str:
        return f"ThrottleCounter(key={self.key!r}, failures={self.failures!r})"
