"""User administration: accounts, roles, artist links, activation and passwords.

Every change takes ``actor``, the acting user's info dict, and is checked against the
policy (``staff.manage_users``); ``actor=None`` is the local CLI operator, who can already
write the database and so acts with full rights. Changes run in the caller's transaction
(flushed, not committed), are audited there, and end sessions as the session rules say:
a role, artist or activation change ends all of the user's sessions, a password reset
too, and a password change every session but the current one, which gets a new token.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Row, and_, exists, func, not_, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from data.db.base import as_db_id
from data.models import Artist, AuthSession, Role, User, normalize_username
from services import password_policy, passwords
from services.audit import add_event
from services.auth import UserInfo, check_credentials, verify_password
from services.errors import InvalidRequest, NotFound, PasswordRejected, UserExists
from services.permissions import require
from services.sessions import IssuedSession, revoke_user_sessions, rotate_session
from studio_auth.clock import now

_USERNAME_KEY = re.compile(r"[\w.@+-]+")
ONE_TIME_PASSWORD_BYTES = 18


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()
"""Marks an ``update_user`` field that the request leaves unchanged."""


def generate_one_time_password() -> str:
    """A random password for someone else to give the account's owner once (144 bits from
    the OS CSPRNG, 24 URL-safe characters): whoever sets it also sets
    ``must_change_password``, so the owner replaces it at first sign-in."""
    return secrets.token_urlsafe(ONE_TIME_PASSWORD_BYTES)


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


def _authorize(db: Session, actor: UserInfo | None) -> int | None:
    """Check the actor's right to administer accounts; return the id to audit."""
    if actor is None:
        return None
    require(db, actor, "staff.manage_users")
    return int(actor["id"])


def _artist_must_exist(db: Session, artist_id: object) -> int:
    found = as_db_id(artist_id)
    if found is None or db.get(Artist, found) is None:
        raise NotFound(f"no artist with id {artist_id!r}")
    return found


def get_user(db: Session, user_id: object) -> User | None:
    """The account with this id, active or not; None if there is none."""
    found = as_db_id(user_id)
    return db.get(User, found) if found is not None else None


def _get(db: Session, user_id: object) -> User:
    user = get_user(db, user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id!r}")
    return user


def create_user(
    db: Session,
    username: str,
    password: str,
    role: Role | str,
    *,
    artist_id: int | None = None,
    must_change_password: bool = False,
    actor: UserInfo | None = None,
) -> User:
    """Create an account in the caller's transaction (flushed, not committed).

    Raises PermissionDenied if ``actor`` may not manage users; InvalidRequest for a bad
    username, role or artist link; NotFound for an unknown artist; PasswordRejected when
    the password breaks the policy; UserExists when the normalized name is taken. The
    database's unique key decides the last case, so of parallel requests for one name
    exactly one succeeds; the caller's transaction is then rolled back.
    """
    actor_id = _authorize(db, actor)
    key = validate_username(username)
    parsed_role = parse_role(role)
    artist_id = _artist_link(db, parsed_role, artist_id)
    password_policy.enforce(password, username=username, role=parsed_role.value)
    # A cheap early answer that saves a bcrypt hash; the unique key below is what decides.
    if _username_taken(db, key):
        raise UserExists(username.strip())
    user = User(
        username=username,
        password_hash=passwords.hash_password(password),
        role=parsed_role,
        artist_id=artist_id,
        must_change_password=must_change_password,
    )
    _insert(db, user, key)
    add_event(
        db,
        "user_created",
        user_id=user.id,
        actor_id=actor_id,
        username=user.username,
        detail={"role": parsed_role.value, "artist_id": artist_id},
    )
    return user


def _artist_link(
    db: Session, role: Role, requested: int | None, current: int | None = None
) -> int | None:
    """The artist an account of ``role`` links to: ``requested`` (which must exist), else
    ``current``. An artist account needs one; no other account may have one."""
    if role is not Role.ARTIST:
        if requested is not None:
            raise InvalidRequest("only artist accounts link to an artist")
        return None
    if requested is not None:
        return _artist_must_exist(db, requested)
    if current is None:
        raise InvalidRequest("an artist account needs an artist id")
    return current


def _username_taken(db: Session, key: str) -> bool:
    return bool(db.scalar(select(exists().where(User.username_key == key))))


def _insert(db: Session, user: User, key: str) -> None:
    """Add and flush a new ``user`` whose username key is ``key``, saying why when the
    database refuses it: UserExists, or NotFound for an artist deleted meanwhile."""
    username, artist_id = user.username, user.artist_id
    db.add(user)
    try:
        db.flush()
    except IntegrityError:
        # The failed flush has aborted the transaction; roll it back, then say why.
        db.rollback()
        if _username_taken(db, key):
            raise UserExists(username) from None
        if artist_id is not None and db.get(Artist, artist_id) is None:
            raise NotFound(f"no artist with id {artist_id!r}") from None
        raise


def list_users(db: Session, *, include_inactive: bool = True) -> Sequence[User]:
    """Every account, by username key; only active ones unless ``include_inactive``."""
    query = select(User).order_by(User.username_key)
    if not include_inactive:
        query = query.where(User.is_active.is_(True))
    return db.scalars(query).all()


# Exactly what an account listing shows, with the artist's name, as plain rows: loading
# ORM objects cost most of a 50-account page (docs/performance.md, "The console").
_ACCOUNTS = (
    select(
        User.id,
        User.username,
        User.username_key,
        User.role,
        User.artist_id,
        Artist.name.label("artist_name"),
        User.is_active,
        User.must_change_password,
        User.last_login,
    )
    .outerjoin(Artist, Artist.id == User.artist_id)
    .order_by(User.username_key)
)


def list_accounts(db: Session, user_id: int | None = None) -> Sequence[Row[*tuple[Any, ...]]]:
    """Every account (or the one with ``user_id``), active or not, by username key, as
    rows of its listing's columns and ``artist_name``."""
    query = _ACCOUNTS if user_id is None else _ACCOUNTS.where(User.id == as_db_id(user_id))
    return db.execute(query).all()


@dataclass(frozen=True)
class _AccessFields:
    """The fields of an account that ``update_user`` changes."""

    role: Role
    artist_id: int | None
    is_active: bool


def update_user(
    db: Session,
    user_id: int,
    *,
    role: Role | str | _Unset = UNSET,
    artist_id: int | _Unset | None = UNSET,
    is_active: bool | _Unset = UNSET,
    actor: UserInfo | None = None,
) -> User:
    """Change any of role, artist link and activation in one step (the HTTP PATCH).

    A role other than artist drops the artist link; the artist role needs one (given, or
    kept from before). Guards: nobody changes their own role or deactivates themselves,
    and the last active admin cannot be demoted or deactivated (InvalidRequest). Ends all
    of the user's sessions when anything changes. Audited per change.
    """
    actor_id = _authorize(db, actor)
    user = _get(db, user_id)
    old = _AccessFields(user.role, user.artist_id, user.is_active)
    new_role = old.role if isinstance(role, _Unset) else parse_role(role)
    if not isinstance(is_active, _Unset) and not isinstance(is_active, bool):
        raise InvalidRequest("is_active must be true or false")
    new_active = old.is_active if isinstance(is_active, _Unset) else is_active
    requested_artist = None if isinstance(artist_id, _Unset) else artist_id
    new_artist = _artist_link(db, new_role, requested_artist, old.artist_id)
    new = _AccessFields(new_role, new_artist, new_active)
    if actor_id is not None and actor_id == user.id:
        if new.role is not old.role:
            raise InvalidRequest("nobody can change their own role")
        if not new.is_active:
            raise InvalidRequest("nobody can deactivate their own account")
    if new == old:
        return user
    _guarded_update(db, user, role=new.role, artist_id=new.artist_id, is_active=new.is_active)
    reasons = _add_change_events(db, user, old, new, actor_id)
    revoke_user_sessions(db, user.id, reason=reasons[0], actor_id=actor_id)
    return user


def _add_change_events(
    db: Session, user: User, old: _AccessFields, new: _AccessFields, actor_id: int | None
) -> list[str]:
    """Add an event per change from ``old`` to ``new``; returns the changes' names, as
    session revocation reasons."""
    reasons = []
    if new.role is not old.role:
        reasons.append("role_changed")
        add_event(
            db,
            "user_role_changed",
            user_id=user.id,
            actor_id=actor_id,
            username=user.username,
            detail={"from": old.role.value, "to": new.role.value, "artist_id": new.artist_id},
        )
    if new.artist_id != old.artist_id and new.role is Role.ARTIST:
        reasons.append("artist_changed")
        add_event(
            db,
            "user_artist_linked",
            user_id=user.id,
            actor_id=actor_id,
            username=user.username,
            detail={"from": old.artist_id, "to": new.artist_id},
        )
    if new.is_active != old.is_active:
        reasons.append("activated" if new.is_active else "deactivated")
        add_event(
            db,
            "user_activated" if new.is_active else "user_deactivated",
            user_id=user.id,
            actor_id=actor_id,
            username=user.username,
        )
    return reasons


def _guarded_update(
    db: Session, user: User, *, role: Role, artist_id: int | None, is_active: bool
) -> None:
    """Write the change unless it would leave no active admin.

    Two parallel demotions of the last two admins must not both pass. The check and the
    change are one conditional UPDATE, and on PostgreSQL every active admin row is locked
    first (SELECT ... FOR UPDATE, in id order so that lockers cannot deadlock): a second
    transaction waits for the first to commit, then its UPDATE, a new statement under READ
    COMMITTED, counts the admins the first one left. SQLite has a single writer and the
    UPDATE takes the write lock before it reads, so its count is always current there.
    """
    user_id = user.id
    if role is not Role.ADMIN or not is_active:
        db.execute(
            select(User.id)
            .where(User.role == Role.ADMIN, User.is_active.is_(True))
            .order_by(User.id)
            .with_for_update()
        ).all()
    other = aliased(User)
    other_admins = (
        select(func.count())
        .select_from(other)
        .where(other.role == Role.ADMIN, other.is_active.is_(True), other.id != user_id)
        .scalar_subquery()
    )
    stays_safe = (
        true()
        if role is Role.ADMIN and is_active
        else or_(not_(and_(User.role == Role.ADMIN, User.is_active.is_(True))), other_admins > 0)
    )
    try:
        changed = db.execute(
            update(User)
            .where(User.id == user_id, stays_safe)
            .values(role=role, artist_id=artist_id, is_active=is_active, updated_at=now())
            .returning(User.id)
            .execution_options(synchronize_session=False)
        ).scalar_one_or_none()
    except IntegrityError:
        # The artist was deleted between the check and the change.
        db.rollback()
        raise NotFound(f"no artist with id {artist_id!r}") from None
    db.refresh(user)
    if changed is None:
        if get_user(db, user_id) is None:
            raise NotFound(f"no user with id {user_id!r}")
        raise InvalidRequest("the last active admin cannot be demoted or deactivated")


def set_role(
    db: Session,
    user_id: int,
    role: Role | str,
    *,
    artist_id: int | None = None,
    actor: UserInfo | None = None,
) -> User:
    """Change the role (an artist role needs ``artist_id`` unless one is linked)."""
    return update_user(
        db,
        user_id,
        role=role,
        artist_id=UNSET if artist_id is None else artist_id,
        actor=actor,
    )


def link_artist(
    db: Session, user_id: int, artist_id: int, *, actor: UserInfo | None = None
) -> User:
    """Link an artist account to another artist record."""
    user = _get(db, user_id)
    if user.role is not Role.ARTIST:
        raise InvalidRequest("only artist accounts link to an artist")
    return update_user(db, user_id, artist_id=artist_id, actor=actor)


def deactivate(db: Session, user_id: int, *, actor: UserInfo | None = None) -> User:
    """Soft-delete: the account can no longer sign in and all its sessions end."""
    return update_user(db, user_id, is_active=False, actor=actor)


def activate(db: Session, user_id: int, *, actor: UserInfo | None = None) -> User:
    """Let a deactivated account sign in again."""
    return update_user(db, user_id, is_active=True, actor=actor)


def _set_password(user: User, password: str, *, must_change: bool) -> None:
    user.password_hash = passwords.hash_password(password)
    user.password_changed_at = now()
    user.must_change_password = must_change


def reset_password(
    db: Session,
    user_id: int,
    new_password: str,
    *,
    must_change: bool = True,
    actor: UserInfo | None = None,
) -> User:
    """An administrator sets someone's password; all of that user's sessions end.

    By default the user must choose a new one at the next sign-in: the administrator
    knows this one. The acting admin's own password is changed with ``change_password``,
    which asks for the current one.
    """
    actor_id = _authorize(db, actor)
    user = _get(db, user_id)
    if actor_id is not None and actor_id == user.id:
        raise InvalidRequest("change your own password with the current one instead")
    password_policy.enforce(new_password, username=user.username, role=user.role.value)
    _set_password(user, new_password, must_change=must_change)
    db.flush()
    revoke_user_sessions(db, user.id, reason="password_reset", actor_id=actor_id)
    add_event(
        db,
        "password_reset",
        user_id=user.id,
        actor_id=actor_id,
        username=user.username,
        detail={"must_change_password": must_change},
    )
    return user


def change_password(
    db: Session,
    user_id: int,
    current_password: str,
    new_password: str,
    *,
    session_id: int | None = None,
) -> IssuedSession | None:
    """A user changes their own password, proving the current one.

    The current password goes through ``check_credentials`` (throttled, audited): raises
    InvalidCredentials or Throttled. PasswordRejected when the new one breaks the policy
    or equals the current one. Every other session of the user ends; ``session_id``, the
    session making the change, is replaced by a fresh one, returned. Clears
    ``must_change_password``.
    """
    user = _get(db, user_id)
    if session_id is not None:
        owner = db.scalar(
            select(AuthSession.user_id).where(
                AuthSession.id == as_db_id(session_id), AuthSession.revoked_at.is_(None)
            )
        )
        if owner != user.id:
            raise InvalidRequest("that session is not a live session of this user")
    check_credentials(db, user.username, current_password)
    password_policy.enforce(new_password, username=user.username, role=user.role.value)
    if verify_password(new_password, user.password_hash):
        raise PasswordRejected(["the new password must differ from the current one"])
    _set_password(user, new_password, must_change=False)
    db.flush()
    revoke_user_sessions(
        db, user.id, reason="password_changed", except_session_id=session_id, actor_id=user.id
    )
    issued = rotate_session(db, session_id, reason="password_changed") if session_id else None
    add_event(
        db,
        "password_changed",
        user_id=user.id,
        actor_id=user.id,
        username=user.username,
        session_id=issued.session_id if issued else None,
    )
    return issued
