"""The artist records that artist accounts link to.

Changes take ``actor``, the acting user's info dict, checked against the policy
(``artists.manage``); ``actor=None`` is the local CLI operator. They run in the caller's
transaction (flushed, not committed) and are audited there.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from data.db.base import as_db_id
from data.models import Artist
from services.audit import add_event
from services.auth import UserInfo
from services.errors import InvalidRequest, NotFound
from services.permissions import require

NAME_MAX_LENGTH = 200


def _authorize(db: Session, actor: UserInfo | None) -> int | None:
    """Check the actor's right to manage artists; return the id to audit."""
    if actor is None:
        return None
    require(db, actor, "artists.manage")
    return int(actor["id"])


def _clean_name(name: object) -> str:
    """``name`` trimmed, or InvalidRequest for an empty, over-long or unprintable one."""
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > NAME_MAX_LENGTH:
        raise InvalidRequest(f"an artist name must be 1-{NAME_MAX_LENGTH} characters")
    clean = name.strip()
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") for ch in clean):
        raise InvalidRequest("an artist name must not contain control characters")
    return clean


def create_artist(db: Session, name: str, *, actor: UserInfo | None = None) -> Artist:
    """Add an artist in the caller's transaction (flushed, not committed).

    Permission ``artists.manage`` when ``actor`` is given (None: the local operator).
    Names need not be unique: two artists may share one. InvalidRequest for an empty,
    over-long or unprintable name.
    """
    actor_id = _authorize(db, actor)
    clean = _clean_name(name)
    artist = Artist(name=clean)
    db.add(artist)
    db.flush()
    add_event(
        db, "artist_created", actor_id=actor_id, detail={"artist_id": artist.id, "name": clean}
    )
    return artist


def rename_artist(
    db: Session, artist_id: int, name: str, *, actor: UserInfo | None = None
) -> Artist:
    """Give an artist a new name in the caller's transaction (flushed, not committed).

    Permission ``artists.manage`` as for ``create_artist``; NotFound for an unknown id,
    InvalidRequest for a bad name. Audited when the name changes.
    """
    actor_id = _authorize(db, actor)
    found = as_db_id(artist_id)
    artist = db.get(Artist, found) if found is not None else None
    if artist is None:
        raise NotFound(f"no artist with id {artist_id!r}")
    clean = _clean_name(name)
    if clean != artist.name:
        old = artist.name
        artist.name = clean
        db.flush()
        add_event(
            db,
            "artist_renamed",
            actor_id=actor_id,
            detail={"artist_id": artist.id, "from": old, "to": clean},
        )
    return artist


def list_artists(db: Session) -> Sequence[Artist]:
    """Every artist, by id."""
    return db.scalars(select(Artist).order_by(Artist.id)).all()
