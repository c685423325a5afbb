"""Server-side sessions: issue, resolve, list, rotate, revoke and prune.

A session token is opaque (``generate_session_token()``); the server keeps only its
SHA-256 digest, so a copy of the database holds no usable session. A session dies when
it is revoked, when it has been idle for ``session_idle_minutes``, when it is older than
``session_lifetime_hours``, or when its user is deactivated (checked on every resolve).

Functions that change sessions work in the caller's transaction (flushed, not committed),
except ``login`` and ``logout``, which commit. ``resolve_session`` never writes in the
caller's transaction: its rate-limited "last seen" touch is committed on its own.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    and_,
    bindparam,
    delete,
    or_,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from data.models import AuthSession, Role, User
from data.models.session import USER_AGENT_MAX_LENGTH
from services.audit import add_event, escape_text
from services.auth import (
    SESSION_TOKEN_LENGTH,
    SESSION_TOKEN_PREFIX,
    UserInfo,
    check_credentials,
    generate_session_token,
    user_info,
)
from services.autonomous import run_session_work
from services.errors import NotFound, Unavailable
from services.throttle import Attempt
from studio_auth.clock import now
from studio_auth.settings import get_settings

logger = logging.getLogger("studio_auth.sessions")

CLIENT_IP_MAX_LENGTH = 64
REASON_MAX_LENGTH = 64
_TOKEN_BODY = re.compile(r"[A-Za-z0-9_-]+")


class SessionInfo(UserInfo):
    """What ``resolve_session`` returns: the user's ``authenticate()`` dict and the
    session's own fields."""

    session_id: int
    expires_at: datetime
    idle_expires_at: datetime
    elevated_by: int | None
    elevated_until: datetime | None


@dataclass(frozen=True)
class IssuedSession:
    """A new session. ``token`` is shown to the client once and never stored."""

    token: str = field(repr=False)
    session_id: int
    expires_at: datetime


@dataclass(frozen=True)
class LoginResult:
    """What ``login`` returns: the new session and the ``authenticate()`` user dict."""

    token: str = field(repr=False)
    session_id: int
    expires_at: datetime
    user: UserInfo


def token_digest(token: object) -> str | None:
    """The stored form of a well-formed token (SHA-256, hex), or None for anything that
    cannot be a token this server issued. Cheap checks come first, so a 10 MB or
    non-string input costs nothing."""
    if not isinstance(token, str) or len(token) != SESSION_TOKEN_LENGTH:
        return None
    if not token.isascii() or not token.startswith(SESSION_TOKEN_PREFIX):
        return None
    if not _TOKEN_BODY.fullmatch(token, len(SESSION_TOKEN_PREFIX)):
        return None
    # A plain hash is enough here (no salt, no stretching): the token has 256 random bits,
    # so there is nothing to brute-force, and lookups must be one indexed equality.
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _idle_limit() -> timedelta:
    return timedelta(minutes=get_settings().session_idle_minutes)


def _lifetime() -> timedelta:
    return timedelta(hours=get_settings().session_lifetime_hours)


def _effective_expiry(created_at: datetime, expires_at: datetime) -> datetime:
    # The absolute expiry is fixed at issue time, but a lifetime shortened since then
    # applies at once to existing sessions too.
    return min(expires_at, created_at + _lifetime())


def _live(at: datetime) -> ColumnElement[bool]:
    """SQL for "not revoked, not expired, not idle" at ``at``."""
    return and_(
        AuthSession.revoked_at.is_(None),
        AuthSession.expires_at > at,
        AuthSession.created_at > at - _lifetime(),
        AuthSession.last_seen_at > at - _idle_limit(),
    )


def _clean(value: object, limit: int) -> str | None:
    """Client-supplied metadata, bounded and printable; None when absent or not text."""
    if not isinstance(value, str) or not value:
        return None
    return escape_text(value, limit)


def _reason(reason: object) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("a revocation reason is required")
    return escape_text(reason.strip(), REASON_MAX_LENGTH)


def _issue(
    db: Session,
    user: User,
    *,
    ip: str | None,
    user_agent: str | None,
    expires_at: datetime | None = None,
) -> IssuedSession:
    token = generate_session_token()
    digest = token_digest(token)
    assert digest is not None
    created = now()
    row = AuthSession(
        token_digest=digest,
        user_id=user.id,
        created_at=created,
        last_seen_at=created,
        expires_at=expires_at or created + _lifetime(),
        client_ip=_clean(ip, CLIENT_IP_MAX_LENGTH),
        user_agent=_clean(user_agent, USER_AGENT_MAX_LENGTH),
    )
    db.add(row)
    db.flush()
    add_event(
        db,
        "session_created",
        user_id=user.id,
        username=user.username,
        ip=row.client_ip,
        session_id=row.id,
        detail={"expires_at": row.expires_at.isoformat()},
    )
    return IssuedSession(token=token, session_id=row.id, expires_at=row.expires_at)


def issue_session(
    db: Session,
    user_id: int,
    *,
    ip: str | None = None,
    user_agent: str | None = None,
) -> IssuedSession:
    """A new session for an active user, in the caller's transaction (flushed, not
    committed), audited as ``session_created``.

    Raises NotFound when there is no active user with that id. The user agent is kept to
    256 characters and the client address to 64, with control characters escaped.
    """
    user = db.get(User, user_id)
    if user is None or not user.is_active:
        raise NotFound(f"no active user with id {user_id}")
    return _issue(db, user, ip=ip, user_agent=user_agent)


def resolve_session(db: Session, token: object) -> SessionInfo | None:
    """The ``authenticate()`` user dict plus ``session_id``, ``expires_at`` (absolute),
    ``idle_expires_at``, ``elevated_by`` and ``elevated_until`` for a live session.

    None, without raising and without a write, for anything else: a token never issued,
    revoked, idle too long, past its lifetime, of a deactivated user, or malformed (not
    a str, wrong length or alphabet, a "Bearer " prefix: the HTTP layer strips that).
    A valid session's ``last_seen_at`` is refreshed at most once per
    ``session_touch_seconds``, by a small UPDATE committed on its own, so this works on a
    read-only caller and does not write on every request.
    """
    found = read_session(db, token)
    if found is None:
        return None
    return touch_session(db, found) if found.touch_due else found.info


@dataclass(frozen=True)
class FoundSession:
    """A live session as read, before any last-seen write: ``info`` is what
    ``resolve_session`` returns, and ``touch_due`` says that ``touch_session`` should
    run before the session is used."""

    info: SessionInfo
    touch_due: bool
    at: datetime


def read_session(db: Session | Connection, token: object) -> FoundSession | None:
    """The reading half of ``resolve_session``: one SELECT, never a write, on a Session
    or directly on a Connection.

    For callers that must not wait on a write lock (the HTTP service reads on its event
    loop): they call ``touch_session`` elsewhere when ``touch_due`` is set. Raises
    ``Unavailable`` when the store fails, including a busy SQLite database.
    """
    digest = token_digest(token)
    if digest is None:
        return None
    at = now()
    try:
        found = _find(db, digest)
    except SQLAlchemyError as exc:
        # Fail closed, and say so: the caller denies access and can answer "unavailable"
        # rather than "signed out".
        raise Unavailable("session store unavailable") from exc
    if found is None:
        return None
    expires_at = _effective_expiry(found.created_at, found.expires_at)
    last_seen_at = found.last_seen_at
    if at >= expires_at or at >= last_seen_at + _idle_limit():
        return None
    touch_due = at - last_seen_at >= timedelta(seconds=get_settings().session_touch_seconds)
    info: SessionInfo = {
        **user_info(found),
        "session_id": found.session_id,
        "expires_at": expires_at,
        "idle_expires_at": min(expires_at, last_seen_at + _idle_limit()),
        "elevated_by": found.elevated_by,
        "elevated_until": found.elevated_until,
    }
    return FoundSession(info, touch_due, at)


def touch_session(db: Session, found: FoundSession) -> SessionInfo:
    """Write the last-seen time that ``read_session`` found due (committed on its own)
    and return the session's info with its idle expiry moved accordingly."""
    touch = timedelta(seconds=get_settings().session_touch_seconds)
    info = found.info
    seen = _touch(db, info["session_id"], found.at, touch)
    if seen is None:
        return info
    return {**info, "idle_expires_at": min(info["expires_at"], seen + _idle_limit())}


# The user row is read in the same statement as the session, on every resolve, so a
# deactivated account, a revoked session or a changed role takes effect on the next
# request, in every process sharing the database. Exactly the needed columns, as plain
# rows on the Session's connection, from a statement built once: each call only binds the
# digest, with no ORM objects or identity map (docs/performance.md, "Session resolve").
_RESOLVE = (
    select(
        User.id,
        User.username,
        User.role,
        User.artist_id,
        User.must_change_password,
        AuthSession.id.label("session_id"),
        AuthSession.created_at,
        AuthSession.last_seen_at,
        AuthSession.expires_at,
        AuthSession.elevated_by,
        AuthSession.elevated_until,
    )
    .join_from(AuthSession, User, User.id == AuthSession.user_id)
    .where(
        AuthSession.token_digest == bindparam("digest"),
        AuthSession.revoked_at.is_(None),
        User.is_active.is_(True),
    )
)


if TYPE_CHECKING:  # the Row generics of SQLAlchemy 2.1; never evaluated at run time
    _Found = Row[
        int,
        str,
        Role,
        int | None,
        bool,
        int,
        datetime,
        datetime,
        datetime,
        int | None,
        datetime | None,
    ]


def _find(db: Session | Connection, digest: str) -> _Found | None:
    conn = db
    if isinstance(db, Session):
        if db.autoflush:
            db.flush()  # the caller's pending changes count, as for an ORM query
        conn = db.connection()
    return conn.execute(_RESOLVE, {"digest": digest}).one_or_none()


def _touch(db: Session, session_id: int, at: datetime, touch: timedelta) -> datetime | None:
    """Move ``last_seen_at`` to ``at``; the condition makes concurrent resolvers of one
    token write once. Returns ``at`` when written (by us or a concurrent resolver)."""

    def work(own: Session) -> None:
        own.execute(
            update(AuthSession)
            .where(
                AuthSession.id == session_id,
                AuthSession.revoked_at.is_(None),
                AuthSession.last_seen_at <= at - touch,
            )
            .values(last_seen_at=at)
            .execution_options(synchronize_session=False)
        )

    try:
        run_session_work(db, work)
    except SQLAlchemyError as exc:
        # A failed touch does not make a valid session invalid; it only means the idle
        # clock was not moved, which errs toward ending the session early (fail closed).
        logger.warning("session %s: last-seen update failed: %s", session_id, type(exc).__name__)
        return None
    return at


def _sessions_query(at: datetime, include_inactive: bool) -> Select[AuthSession]:
    query = select(AuthSession).order_by(AuthSession.created_at.desc(), AuthSession.id.desc())
    return query if include_inactive else query.where(_live(at))


def list_sessions(
    db: Session, user_id: int, *, include_inactive: bool = False
) -> list[AuthSession]:
    """The user's sessions, newest first; only live ones unless ``include_inactive``."""
    query = _sessions_query(now(), include_inactive).where(AuthSession.user_id == user_id)
    return list(db.scalars(query).all())


def list_all_sessions(db: Session, *, include_inactive: bool = False) -> list[AuthSession]:
    """Every user's sessions, newest first; only live ones unless ``include_inactive``."""
    return list(db.scalars(_sessions_query(now(), include_inactive)).all())


def session_state(row: AuthSession, at: datetime | None = None) -> str:
    """``active``, ``revoked``, ``expired`` (absolute lifetime) or ``idle``."""
    at = at or now()
    if row.revoked_at is not None:
        return "revoked"
    if at >= _effective_expiry(row.created_at, row.expires_at):
        return "expired"
    if at >= row.last_seen_at + _idle_limit():
        return "idle"
    return "active"


def _revoke(
    db: Session,
    condition: ColumnElement[bool],
    *,
    reason: str,
    actor_id: int | None,
) -> Sequence[Any]:
    """Mark matching unrevoked sessions revoked in one UPDATE ... RETURNING (so two
    revokers cannot both claim one session) and audit each."""
    why = _reason(reason)
    at = now()
    rows = db.execute(
        update(AuthSession)
        .where(condition, AuthSession.revoked_at.is_(None))
        .values(revoked_at=at, revoked_reason=why)
        .returning(
            AuthSession.id, AuthSession.user_id, AuthSession.client_ip, AuthSession.user_agent
        )
        .execution_options(synchronize_session="fetch")
    ).all()
    for row in rows:
        add_event(
            db,
            "session_revoked",
            user_id=row.user_id,
            actor_id=actor_id,
            session_id=row.id,
            detail={"reason": why},
        )
    return rows


def revoke_session(
    db: Session,
    session_id: int,
    *,
    reason: str,
    actor_id: int | None = None,
    user_id: int | None = None,
) -> bool:
    """Revoke one session in the caller's transaction (flushed, not committed).

    True if this call revoked it; False if there is no such unrevoked session (or it
    belongs to another user when ``user_id`` is given). Raises ValueError for an empty
    reason. Audited as ``session_revoked``.
    """
    condition = AuthSession.id == session_id
    if user_id is not None:
        condition = and_(condition, AuthSession.user_id == user_id)
    return bool(_revoke(db, condition, reason=reason, actor_id=actor_id))


def revoke_user_sessions(
    db: Session,
    user_id: int,
    *,
    reason: str,
    except_session_id: int | None = None,
    actor_id: int | None = None,
) -> int:
    """Revoke every unrevoked session of the user (expired ones included, so none can
    come back if the timeouts are later raised), except ``except_session_id``.

    Returns how many were revoked. Caller's transaction, flushed, not committed.
    """
    condition = AuthSession.user_id == user_id
    if except_session_id is not None:
        condition = and_(condition, AuthSession.id != except_session_id)
    return len(_revoke(db, condition, reason=reason, actor_id=actor_id))


def rotate_session(db: Session, session_id: int, *, reason: str = "rotated") -> IssuedSession:
    """Replace a live session by a fresh token for the same user, client address and user
    agent, in the caller's transaction. The new session keeps the old absolute expiry
    (rotation changes the token, not the lifetime) and no elevation.

    Raises NotFound when the session is not live or its user is not active.
    """
    at = now()
    old = db.execute(select(AuthSession).where(AuthSession.id == session_id, _live(at)))
    row = old.scalar_one_or_none()
    user = db.get(User, row.user_id) if row is not None else None
    if row is None or user is None or not user.is_active:
        raise NotFound(f"no live session with id {session_id}")
    expires_at = _effective_expiry(row.created_at, row.expires_at)
    ip, user_agent = row.client_ip, row.user_agent
    # Revoke through the atomic UPDATE: if a concurrent request revoked it first, the
    # rotation fails instead of minting a token from a dead session.
    if not _revoke(db, AuthSession.id == session_id, reason=reason, actor_id=None):
        raise NotFound(f"no live session with id {session_id}")
    return _issue(db, user, ip=ip, user_agent=user_agent, expires_at=expires_at)


def prune_sessions(db: Session, *, older_than: timedelta | None = None) -> int:
    """Delete revoked, expired and idle-dead sessions (dead for at least ``older_than``,
    when given, so recent ones stay for inspection). Returns how many were deleted.
    Caller's transaction, flushed, not committed."""
    grace = older_than or timedelta(0)
    if grace < timedelta(0):
        raise ValueError("older_than must not be negative")
    cutoff = now() - grace
    dead = or_(
        AuthSession.revoked_at <= cutoff,
        AuthSession.expires_at <= cutoff,
        AuthSession.created_at <= cutoff - _lifetime(),
        AuthSession.last_seen_at <= cutoff - _idle_limit(),
    )
    result = db.execute(
        delete(AuthSession)
        .where(dead)
        .returning(AuthSession.id)
        .execution_options(synchronize_session="fetch")
    )
    count = len(result.all())
    if count:
        add_event(
            db,
            "sessions_pruned",
            detail={"count": count, "older_than_seconds": int(grace.total_seconds())},
        )
    return count


def login(
    db: Session,
    username: str,
    password: str,
    *,
    ip: str | None = None,
    user_agent: str | None = None,
    attempt: Attempt | None = None,
) -> LoginResult:
    """Authenticate, issue a session and commit: the one-call sign-in.

    Raises what ``check_credentials`` raises (``InvalidCredentials``, ``Throttled``,
    ``Unavailable``); nothing is committed then except the failure records, which are
    committed on their own.
    ``attempt`` comes from an earlier ``check_throttle`` (see ``check_credentials``).
    """
    user = check_credentials(db, username, password, ip=ip, user_agent=user_agent, attempt=attempt)
    result = complete_sign_in(db, user, ip=ip, user_agent=user_agent)
    db.commit()
    return result


def complete_sign_in(
    db: Session, user: UserInfo, *, ip: str | None = None, user_agent: str | None = None
) -> LoginResult:
    """Issue what a finished sign-in gives a user whose every check has passed: the one
    place a sign-in ends, whichever way it began. Does not commit."""
    issued = issue_session(db, user["id"], ip=ip, user_agent=user_agent)
    return LoginResult(
        token=issued.token,
        session_id=issued.session_id,
        expires_at=issued.expires_at,
        user=user,
    )


def logout(db: Session, token: object) -> bool:
    """End the session of ``token`` and commit. True if a session was ended; False,
    without a write, for a malformed, unknown or already revoked token."""
    digest = token_digest(token)
    if digest is None:
        return False
    # Look first, so an unknown token costs a read and never opens a write transaction.
    session_id = db.scalar(
        select(AuthSession.id).where(
            AuthSession.token_digest == digest, AuthSession.revoked_at.is_(None)
        )
    )
    if session_id is None:
        return False
    ended = revoke_session(db, session_id, reason="logout")
    db.commit()
    return ended
