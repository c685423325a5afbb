"""The minimal artists table that artist accounts link to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from data.db.base import Base, UTCDateTime
from studio_auth.clock import now


class Artist(Base):
    __tablename__ = "artists"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)

    def __repr__(self) -> str:
        return f"Artist(id={self.id!r}, name={self.name!r})"
