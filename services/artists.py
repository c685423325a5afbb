"""The artist records that artist accounts link to."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from data.models import Artist
from services.audit import add_event
from services.auth import UserInfo
from services.errors import InvalidRequest
from services.permissions import require

NAME_MAX_LENGTH = 200


def create_artist(db: Session, name: str, *, actor: UserInfo | None = None) -> Artist:
    """Add an artist in the caller's transaction (flushed, not committed).

    Permission ``staff.manage_users`` when ``actor`` is given (None: the local operator).
    Names need not be unique: two artists may share one. InvalidRequest for an empty,
    over-long or unprintable name.
    """
    if actor is not None:
        require(db, actor, "staff.manage_users")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > NAME_MAX_LENGTH:
        raise InvalidRequest(f"an artist name must be 1-{NAME_MAX_LENGTH} characters")
    clean = name.strip()
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") for ch in clean):
        raise InvalidRequest("an artist name must not contain control characters")
    artist = Artist(name=clean)
    db.add(artist)
    db.flush()
    add_event(
        db,
        "artist_created",
        actor_id=int(actor["id"]) if actor else None,
        detail={"artist_id": artist.id, "name": clean},
    )
    return artist


def list_artists(db: Session) -> Sequence[Artist]:
    """Every artist, by id."""
    return db.scalars(select(Artist).order_by(Artist.id)).all()
