"""User administration: creating and listing staff accounts."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from data.models import Artist, Role, User, normalize_username
from services import passwords
from services.audit import record
from services.errors import InvalidRequest, NotFound, UserExists

_USERNAME_KEY = re.compile(r"[\w.@+-]+")


def parse_role(role: object) -> Role:
    """``role`` as a Role, or InvalidRequest naming the allowed values."""
    try:
        return Role(str(role).strip().lower())
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise InvalidRequest(f"unknown role {role!r}: use one of {allowed}") from None


def validate_username(username: object) -> str:
    """The normalized key for a new username, or InvalidRequest saying what is wrong."""
    key = normalize_username(username)
    if key is None or not _USERNAME_KEY.fullmatch(key):
        raise InvalidRequest(
            "username must be 1-150 characters: letters, digits and . @ + - _ only"
        )
    return key


def create_user(
    db: Session,
    username: str,
    password: str,
    role: Role | str,
    *,
    artist_id: int | None = None,
    must_change_password: bool = False,
    actor_id: int | None = None,
) -> User:
    """Create an account in the caller's transaction (flushed, not committed).

    Raises UserExists when the normalized name is taken (decided by the database's unique
    key, so parallel requests cannot both succeed; the caller's transaction is then rolled
    back), InvalidRequest for a bad username, role or artist link, and ValueError/TypeError
    for an unusable password.
    """
    validate_username(username)
    parsed_role = parse_role(role)
    if parsed_role is Role.ARTIST:
        if artist_id is None:
            raise InvalidRequest("an artist account needs --artist-id")
        if db.get(Artist, artist_id) is None:
            raise NotFound(f"no artist with id {artist_id}")
    elif artist_id is not None:
        raise InvalidRequest("only artist accounts link to an artist")
    user = User(
        username=username,
        password_hash=passwords.hash_password(password),
        role=parsed_role,
        artist_id=artist_id,
        must_change_password=must_change_password,
    )
    db.add(user)
    try:
        db.flush()
    except IntegrityError:
        # The unique key decided: another request took the name first. The failed flush
        # has aborted the transaction, so it is rolled back here.
        db.rollback()
        raise UserExists(username.strip()) from None
    record(
        db,
        "user_created",
        user_id=user.id,
        actor_id=actor_id,
        username=user.username,
        detail={"role": parsed_role.value, "artist_id": artist_id},
    )
    return user


def list_users(db: Session, *, include_inactive: bool = True) -> Sequence[User]:
    """Every account, by username key."""
    query = select(User).order_by(User.username_key)
    if not include_inactive:
        query = query.where(User.is_active.is_(True))
    return db.scalars(query).all()
