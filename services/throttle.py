"""Brute-force protection for every path that checks a password.

Each attempt is counted *before* any bcrypt work, in a transaction of its own, under two
keys: the normalized username (whether or not such a user exists, so throttling reveals
nothing about which names exist) and, when known, the client address.

- Username: the first ``throttle_free_failures`` consecutive failures are free; the
  attempt that reaches the allowance locks the name for ``throttle_base_delay_seconds``,
  and every later attempt that is let through locks it for twice the previous lock, up to
  ``throttle_max_delay_seconds``. Attempts during a lock are refused and counted, but they
  neither move the lock nor lengthen the next one: cheap refused requests cannot keep a
  name locked past the cap. A success (or an admin's ``unlock``) deletes the counter.
- Address: a fixed window of ``throttle_ip_window_seconds`` allows
  ``throttle_ip_max_failures`` failures across all usernames; then attempts are refused
  until the window ends. A success gives its reserved slot back.

The count is an UPSERT ... RETURNING that also takes the row lock (PostgreSQL) or the
write lock (SQLite), so parallel attempts are serialized by the database: fifty parallel
wrong passwords are counted as fifty, and only the allowance reaches bcrypt.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, literal, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningInsert

from data.models import ThrottleCounter, User, normalize_username
from services.audit import record
from services.durable import write_durably
from services.errors import Unavailable
from studio_auth.clock import now
from studio_auth.settings import Settings, get_settings

# Bounds the work spent hashing a name or address that cannot be one.
_RAW_HASH_LIMIT = 1024
_table = ThrottleCounter.__table__


@dataclass(frozen=True)
class Attempt:
    """The outcome of reserving an attempt: whether it may check a password, and if not,
    how long to wait and which limit refused it (``"user"`` or ``"ip"``)."""

    user_key: str
    ip_key: str | None
    ip_window_start: datetime | None
    allowed: bool
    retry_after: float = 0.0
    limited_by: str | None = None


def user_key(username: object) -> str:
    """The counter key for ``username``: ``user:<normalized name>``, or a digest of the
    raw value when it cannot be a username (so invalid names are throttled alike)."""
    key = normalize_username(username)
    if key is not None:
        return f"user:{key}"
    return f"user#{_digest(username)}"


def ip_key(ip: object) -> str:
    """The counter key for a client address. IPv6 addresses count per /64, the block a
    single subscriber usually holds, so rotating addresses inside it gains nothing."""
    if not isinstance(ip, str):
        return f"ip#{_digest(ip)}"
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return f"ip#{_digest(ip)}"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"ip:{address.ipv4_mapped}"
        return f"ip:{ipaddress.IPv6Network((address, 64), strict=False)}"
    return f"ip:{address}"


def _digest(value: object) -> str:
    if isinstance(value, str):
        raw = value[:_RAW_HASH_LIMIT].encode("utf-8", "surrogatepass")
    else:
        raw = f"<{type(value).__name__}>".encode()
    return hashlib.sha256(raw).hexdigest()


def next_delay(previous: timedelta | None, settings: Settings | None = None) -> timedelta:
    """The lock that follows a failure past the allowance: the base delay the first time,
    then twice the ``previous`` lock, up to the cap."""
    settings = settings or get_settings()
    base = timedelta(seconds=settings.throttle_base_delay_seconds)
    cap = timedelta(seconds=settings.throttle_max_delay_seconds)
    if previous is None:
        return base
    return min(cap, max(base, 2 * previous))


def _upsert(
    db: Session,
    key: str,
    at: datetime,
    set_: dict[str, Any],
    returning: tuple[Any, ...],
) -> ReturningInsert[Any]:
    """INSERT a first failure for ``key`` or, if the row exists, apply ``set_`` to it."""
    values = {"key": key, "failures": 1, "window_start": at, "last_failure_at": at}
    dialect = db.get_bind().dialect.name
    if dialect == "postgresql":
        pg = postgresql.insert(ThrottleCounter).values(values)
        return pg.on_conflict_do_update(index_elements=[_table.c.key], set_=set_).returning(
            *returning
        )
    if dialect == "sqlite":
        lite = sqlite.insert(ThrottleCounter).values(values)
        return lite.on_conflict_do_update(index_elements=[_table.c.key], set_=set_).returning(
            *returning
        )
    raise Unavailable(f"throttling is not supported on {dialect}")


def _count_ip(db: Session, key: str, at: datetime, settings: Settings) -> tuple[int, datetime]:
    window = timedelta(seconds=settings.throttle_ip_window_seconds)
    expired = ThrottleCounter.window_start <= at - window
    set_ = {
        "failures": case((expired, 1), else_=ThrottleCounter.failures + 1),
        "window_start": case((expired, at), else_=ThrottleCounter.window_start),
        "last_failure_at": at,
    }
    returning = (ThrottleCounter.failures, ThrottleCounter.window_start)
    row = db.execute(_upsert(db, key, at, set_, returning)).one()
    return int(row[0]), row[1]


def _count_user(db: Session, key: str, at: datetime) -> tuple[int, datetime | None, datetime]:
    # Counting takes the row lock; the lock decision in _reserve is made under it, so
    # parallel attempts see each other's counts and locks in order.
    set_ = {"failures": ThrottleCounter.failures + 1, "last_failure_at": at}
    returning = (
        ThrottleCounter.failures,
        ThrottleCounter.blocked_until,
        ThrottleCounter.window_start,
    )
    row = db.execute(_upsert(db, key, at, set_, returning)).one()
    return int(row[0]), row[1], row[2]


def _reserve(session: Session, username: object, ip: str | None, user_agent: str | None) -> Attempt:
    attempt = _decide(session, username, ip)
    if attempt.allowed:
        _commit_without_waiting(session)
    else:
        # Recorded in the transaction that counted it: one commit per refused attempt,
        # which is what a flood of them costs the database.
        detail: dict[str, Any] = {
            "retry_after": attempt.retry_after,
            "limited_by": attempt.limited_by,
        }
        if user_agent:
            detail["user_agent"] = user_agent
        record(session, "login", "throttled", username=username, ip=ip, detail=detail)
    return attempt


def _decide(session: Session, username: object, ip: str | None) -> Attempt:
    settings = get_settings()
    at = now()
    u_key = user_key(username)
    a_key = ip_key(ip) if ip else None
    window_start = None
    ip_wait = 0.0
    if a_key is not None:
        ip_failures, window_start = _count_ip(session, a_key, at, settings)
        if ip_failures > settings.throttle_ip_max_failures:
            end = window_start + timedelta(seconds=settings.throttle_ip_window_seconds)
            ip_wait = max((end - at).total_seconds(), 1.0)
    failures, blocked_until, locked_at = _count_user(session, u_key, at)
    if blocked_until is not None and blocked_until > at:
        # Refused and counted; the lock is left as it is (see the module docstring).
        wait = max((blocked_until - at).total_seconds(), ip_wait)
        return Attempt(u_key, a_key, window_start, False, wait, "user")
    if ip_wait:
        return Attempt(u_key, a_key, window_start, False, ip_wait, "ip")
    if failures >= settings.throttle_free_failures:
        # Lock in advance for the case this attempt fails (a success deletes the row).
        # For a username row, window_start is when its current lock began.
        previous = None if blocked_until is None else blocked_until - locked_at
        session.execute(
            update(ThrottleCounter)
            .where(ThrottleCounter.key == u_key)
            .values(window_start=at, blocked_until=at + next_delay(previous, settings))
        )
    return Attempt(u_key, a_key, window_start, True)


def reserve(
    db: Session, username: object, *, ip: str | None = None, user_agent: str | None = None
) -> Attempt:
    """Count an attempt for ``username`` (and ``ip``) before any password is checked.

    Committed in a transaction of its own whatever the caller does with ``db``, with a
    ``login``/``throttled`` audit event when the attempt is refused. Returns whether the
    attempt may go on to check the password. Raises ``Unavailable`` if the
    counters cannot be written: without them there is no protection, so sign-in is
    refused rather than run unthrottled.
    """
    try:
        return write_durably(db, lambda session: _reserve(session, username, ip, user_agent))
    except SQLAlchemyError as exc:
        raise Unavailable(
            f"sign-in refused: the throttle store failed ({exc.__class__.__name__})"
        ) from None


def _commit_without_waiting(session: Session) -> None:
    """Let PostgreSQL acknowledge this transaction's commit before its WAL flush.

    Counter-only transactions sit on every sign-in's path, and waiting for the flush is
    most of their cost. Only a crash of the database server itself can then lose the
    last fraction of a second of counts, which errs toward letting a few more guesses
    through after a crash, never toward skipping a check; transactions holding an
    audit event keep the default, fully durable commit.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))


def _release(session: Session, attempt: Attempt) -> None:
    _commit_without_waiting(session)
    session.execute(delete(ThrottleCounter).where(ThrottleCounter.key == attempt.user_key))
    if attempt.ip_key is not None and attempt.ip_window_start is not None:
        # Give back this success's slot, unless the window has since been restarted.
        session.execute(
            update(ThrottleCounter)
            .where(
                ThrottleCounter.key == attempt.ip_key,
                ThrottleCounter.window_start == attempt.ip_window_start,
                ThrottleCounter.failures > 0,
            )
            .values(failures=ThrottleCounter.failures - literal(1))
        )


def succeeded(db: Session, attempt: Attempt) -> None:
    """Forget the username's failures after a correct password, durably."""
    try:
        write_durably(db, lambda session: _release(session, attempt))
    except SQLAlchemyError as exc:
        raise Unavailable(
            f"sign-in refused: the throttle store failed ({exc.__class__.__name__})"
        ) from None


def unlock(db: Session, username: str, *, actor_id: int | None = None) -> bool:
    """Clear the failure count and any lock on ``username``, in the caller's transaction
    (flushed, not committed), and record an ``unlock`` event.

    Returns True if there was a counter to clear, False if the name had none.
    """
    key = user_key(username)
    cleared = db.execute(
        delete(ThrottleCounter)
        .where(ThrottleCounter.key == key)
        .returning(ThrottleCounter.failures)
    ).first()
    name = normalize_username(username)
    user_id = db.scalar(select(User.id).where(User.username_key == name)) if name else None
    record(
        db,
        "unlock",
        "success" if cleared else "noop",
        user_id=user_id,
        actor_id=actor_id,
        username=username,
        detail={"failures": int(cleared[0]) if cleared else 0},
    )
    return cleared is not None


def status(db: Session, username: object) -> ThrottleCounter | None:
    """The counter for ``username``, if any (for operators and tests)."""
    return db.get(ThrottleCounter, user_key(username))
