"""Brute-force protection for every path that checks a password (NIST SP 800-63B 5.2.2,
ASVS 5.0 6.3.1).

Each attempt is counted before any bcrypt work, committed apart from the caller's
transaction, under two keys: the normalized username, whether or not such a user exists
(so throttling reveals nothing about which names exist), and the client address when known.

- Username: the first ``throttle_free_failures`` consecutive failures are free; the
  attempt that reaches the allowance locks the name for ``throttle_base_delay_seconds``,
  and every later attempt let through locks it for twice the previous lock, up to
  ``throttle_max_delay_seconds``. Attempts during a lock are refused and counted, but
  neither move the lock nor lengthen the next one, so cheap refused requests cannot keep
  a name locked past the cap. A sign-in clears the count without a write of its own when
  the caller commits: its stamp moves the account's ``sign_in_count``, and the name's next
  count, seeing a different one, starts afresh. If the caller's transaction ends without
  a commit, the counter is deleted then. An admin's ``unlock`` deletes it.
- Address: a fixed window of ``throttle_ip_window_seconds`` allows
  ``throttle_ip_max_failures`` failures across all usernames; then attempts are refused
  until the window ends. A success gives its slot back.

The counts hold under concurrency because every step is one atomic statement. A count is
an UPSERT ... RETURNING, serialized per row by the database, so fifty parallel wrong
passwords count as fifty. The lock is a compare-and-set UPDATE (only if the lock is still
what the attempt's count returned), so of parallel attempts past the allowance exactly
one goes on to bcrypt. On PostgreSQL each statement commits as it completes (autocommit,
no BEGIN or COMMIT); on SQLite, with one writer at a time, an attempt's steps commit
together.

On PostgreSQL, counter statements do not wait for their WAL flush (``synchronous_commit``
off for that statement only), to keep the flush off every sign-in's path. Only a crash of
the database server itself can then lose the last fraction of a second of counts, which
errs toward a few more guesses after a crash, never toward skipping a check. Audit events,
including the one for a refused attempt, keep the full commit guarantee.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, Row, bindparam, case, delete, func, literal, null, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningInsert, ReturningUpdate, Update

from data.db.base import UTCDateTime
from data.models import ThrottleCounter, User, normalize_username
from services.audit import add_event, build_event, insert_event, log_event
from services.autonomous import engine_of, on_rollback, run_statements, run_statements_on
from services.errors import Unavailable
from studio_auth.clock import now
from studio_auth.settings import Settings, get_settings

# Bounds the work spent hashing a name or address that cannot be one.
_RAW_HASH_LIMIT = 1024
# The counter table's columns, for Core statements.
_c = ThrottleCounter.__table__.c


class Account(NamedTuple):
    """What a password check needs of the account a name belongs to."""

    id: int
    password_hash: str
    is_active: bool


@dataclass(frozen=True)
class Attempt:
    """The outcome of counting an attempt: whether it may check a password, and if not,
    how long to wait and which limit refused it (``"user"`` or ``"ip"``).

    ``account`` is the account the name belonged to when the attempt was counted (None
    if none), read by the counting statement itself so that a sign-in needs no separate
    lookup; it is committed data only, as seen from outside the caller's transaction.
    """

    user_key: str
    ip_key: str | None
    ip_window_start: datetime | None
    allowed: bool
    retry_after: float = 0.0
    limited_by: str | None = None
    account: Account | None = None
    # Failures under this name since its last sign-in, or at least
    # ``throttle_free_failures`` from this address in its window (what a flood's attempts
    # have once a lock expires): a caller may check such a password at a lower priority.
    has_recent_failures: bool = False


def user_key(username: object) -> str:
    """The counter key for ``username``: ``user:<normalized name>``, or a digest of the
    raw value when it cannot be a username (so invalid names are throttled alike)."""
    return _user_key(normalize_username(username), username)


def _user_key(name: str | None, username: object) -> str:
    """``user_key`` for a ``username`` already normalized to ``name``."""
    return f"user:{name}" if name is not None else f"user#{_digest(username)}"


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


@dataclass(frozen=True)
class _Statements:
    """The throttle's statements for one dialect, built once: each a complete, atomic
    step of its own (see ``services.autonomous.run_statements`` for how they commit)."""

    count_ip: ReturningInsert[Any]
    count_user: ReturningInsert[Any]
    lock: ReturningUpdate[Any]
    release_ip: Update
    release_user: Update


_AT = bindparam("at", type_=UTCDateTime())
# The dialect's INSERT, for its ON CONFLICT clause.
_Insert = Callable[[type[ThrottleCounter]], postgresql.Insert | sqlite.Insert]


@functools.cache
def _statements(dialect: str) -> _Statements:
    """The statements for ``dialect``, built on its first use."""
    if dialect == "postgresql":
        # Counter writes are acknowledged before their WAL flush; set_config with
        # is_local=true holds for the statement's own transaction only (see the module
        # docstring). It is returned as a column so that it runs inside the statement.
        async_commit: tuple[Any, ...] = (func.set_config("synchronous_commit", "off", True),)
        insert_: _Insert = postgresql.insert
    elif dialect == "sqlite":
        async_commit = ()
        insert_ = sqlite.insert
    else:
        raise Unavailable(f"throttling is not supported on {dialect}")
    return _Statements(
        count_ip=_count_ip(insert_, async_commit),
        count_user=_count_user(insert_, async_commit),
        lock=_lock(async_commit),
        release_ip=_release_ip(async_commit),
        release_user=_release_user(async_commit),
    )


def _first_failure() -> dict[str, Any]:
    """The values of a key's first counted attempt."""
    return {"key": bindparam("k"), "failures": 1, "window_start": _AT, "last_failure_at": _AT}


# The updates below take their times from the row they replace (``excluded``) rather than
# a parameter of their own: on SQLite every use of a parameter is bound, and converted,
# separately.


def _count_ip(insert_: _Insert, async_commit: tuple[Any, ...]) -> ReturningInsert[Any]:
    """Count an attempt from an address in its fixed window, restarting an expired window."""
    expired = _c.window_start <= bindparam("cutoff", type_=UTCDateTime())
    counting = insert_(ThrottleCounter).values(_first_failure())
    return counting.on_conflict_do_update(
        index_elements=[_c.key],
        set_={
            "failures": case((expired, 1), else_=_c.failures + 1),
            "window_start": case((expired, counting.excluded.window_start), else_=_c.window_start),
            "last_failure_at": counting.excluded.last_failure_at,
        },
    ).returning(_c.failures, _c.window_start, *async_commit)


def _count_user(insert_: _Insert, async_commit: tuple[Any, ...]) -> ReturningInsert[Any]:
    """Count an attempt under a name, starting afresh if its account has signed in since
    the last count, and return the account behind the name too (one round trip)."""
    owner = User.username_key == bindparam("name")
    account = [
        select(column).where(owner).scalar_subquery().label(column.key)
        for column in (User.id, User.password_hash, User.is_active)
    ]
    signed_in = select(User.sign_in_count).where(owner).scalar_subquery()
    counting = insert_(ThrottleCounter).values({**_first_failure(), "sign_in_count": signed_in})
    seen = counting.excluded.sign_in_count
    fresh = _c.sign_in_count.is_distinct_from(seen)
    return counting.on_conflict_do_update(
        index_elements=[_c.key],
        set_={
            "failures": case((fresh, 1), else_=_c.failures + 1),
            "blocked_until": case((fresh, null()), else_=_c.blocked_until),
            "window_start": case((fresh, counting.excluded.window_start), else_=_c.window_start),
            "last_failure_at": counting.excluded.last_failure_at,
            "sign_in_count": seen,
        },
    ).returning(_c.failures, _c.blocked_until, _c.window_start, *account, *async_commit)


def _lock(async_commit: tuple[Any, ...]) -> ReturningUpdate[Any]:
    """Lock a name, only if nobody has changed its lock since this attempt counted itself
    (compare-and-set): of several parallel attempts past the allowance exactly one wins."""
    return (
        update(ThrottleCounter)
        .where(
            _c.key == bindparam("k"),
            _c.blocked_until.is_not_distinct_from(bindparam("seen", type_=UTCDateTime())),
        )
        .values(window_start=_AT, blocked_until=bindparam("until", type_=UTCDateTime()))
        .returning(_c.key, *async_commit)
    )


def _release_ip(async_commit: tuple[Any, ...]) -> Update:
    """Give back a success's slot, unless the address's window has since restarted."""
    release = (
        update(ThrottleCounter)
        .where(
            _c.key == bindparam("k"),
            _c.window_start == bindparam("started", type_=UTCDateTime()),
            _c.failures > 0,
        )
        .values(failures=_c.failures - literal(1))
    )
    return release.returning(*async_commit) if async_commit else release


def _release_user(async_commit: tuple[Any, ...]) -> Update:
    """Give back a name's count for an attempt that never checked a password. Its lock, if
    it took one in advance, stays: erring toward more waiting, never fewer counts."""
    release = (
        update(ThrottleCounter)
        .where(_c.key == bindparam("k"), _c.failures > 0)
        .values(failures=_c.failures - literal(1))
    )
    return release.returning(*async_commit) if async_commit else release


def _count(conn: Connection, username: object, ip: str | None, user_agent: str | None) -> Attempt:
    attempt = _decide(conn, username, ip)
    if not attempt.allowed:
        detail: dict[str, Any] = {
            "retry_after": attempt.retry_after,
            "limited_by": attempt.limited_by,
        }
        if user_agent:
            detail["user_agent"] = user_agent
        fields = build_event("login", "throttled", username=username, ip=ip, detail=detail)
        log_event(fields)
        insert_event(conn, fields)
    return attempt


def _decide(conn: Connection, username: object, ip: str | None) -> Attempt:
    settings = get_settings()
    sql = _statements(conn.dialect.name)
    at = now()
    name = normalize_username(username)
    u_key = _user_key(name, username)
    a_key = ip_key(ip) if ip else None
    window_start = None
    ip_wait = 0.0
    ip_failures = 0
    if a_key is not None:
        window = timedelta(seconds=settings.throttle_ip_window_seconds)
        row = conn.execute(sql.count_ip, {"k": a_key, "at": at, "cutoff": at - window}).one()
        ip_failures, window_start = int(row[0]), row[1]
        if ip_failures > settings.throttle_ip_max_failures:
            ip_wait = max((window_start + window - at).total_seconds(), 1.0)
    row = conn.execute(sql.count_user, {"k": u_key, "at": at, "name": name}).one()
    failures, blocked_until, locked_at = int(row[0]), row[1], row[2]
    if blocked_until is not None and blocked_until > at:
        # Refused and counted; the lock is left as it is (see the module docstring).
        wait = max((blocked_until - at).total_seconds(), ip_wait)
        return Attempt(u_key, a_key, window_start, False, wait, "user")
    if ip_wait:
        return Attempt(u_key, a_key, window_start, False, ip_wait, "ip")
    account = None if row.id is None else Account(row.id, row.password_hash, row.is_active)
    if failures >= settings.throttle_free_failures:
        # Lock in advance for the case this attempt fails (a sign-in clears it).
        # For a username row, window_start is when its current lock began.
        previous = None if blocked_until is None else blocked_until - locked_at
        until = at + next_delay(previous, settings)
        params = {"k": u_key, "seen": blocked_until, "at": at, "until": until}
        if conn.execute(sql.lock, params).first() is None:
            # A parallel attempt took the lock first: this one waits like any other.
            query = select(_c.blocked_until).where(_c.key == u_key)
            current = conn.scalar(query)
            wait = max((current - at).total_seconds(), 1.0) if current else 1.0
            return Attempt(u_key, a_key, window_start, False, wait, "user")
    # Both counts include this attempt (and any still running from the same address).
    recent = failures > 1 or ip_failures > settings.throttle_free_failures
    return Attempt(u_key, a_key, window_start, True, account=account, has_recent_failures=recent)


def count_attempt(
    db: Session, username: object, *, ip: str | None = None, user_agent: str | None = None
) -> Attempt:
    """Count an attempt for ``username`` (and ``ip``) before any password is checked.

    Committed at once whatever the caller does with ``db``, with a ``login``/``throttled``
    audit event when the attempt is refused. Returns whether the attempt may go on to
    check the password. Raises ``Unavailable`` if the counters cannot be written: without
    them there is no protection, so sign-in is refused rather than run unthrottled.
    """
    try:
        return run_statements(db, lambda conn: _count(conn, username, ip, user_agent))
    except SQLAlchemyError as exc:
        raise Unavailable(
            f"sign-in refused: the throttle store failed ({exc.__class__.__name__})"
        ) from None


def refund_address(db: Session, attempt: Attempt) -> None:
    """Give the address its slot back after a correct password, committed at once
    whatever the caller does with ``db``.

    The username's failures need no write here: the sign-in's stamp moves the account's
    ``sign_in_count``, and the name's next count starts afresh when it sees that.
    """
    if _counted_address(attempt):
        _run_refund(db, lambda conn: _refund_address(conn, attempt))


def refund_attempt(db: Session, attempt: Attempt) -> None:
    """Give back what counting ``attempt`` took, committed at once, when no password was
    checked after all: the address's slot and the name's count, so that a client refused
    for want of capacity is not locked out by its own retries. A lock the attempt took
    in advance stays.
    """

    def refund(conn: Connection) -> None:
        if _counted_address(attempt):
            _refund_address(conn, attempt)
        conn.execute(_statements(conn.dialect.name).release_user, {"k": attempt.user_key})

    _run_refund(db, refund)


def _counted_address(attempt: Attempt) -> bool:
    return attempt.ip_key is not None and attempt.ip_window_start is not None


def _refund_address(conn: Connection, attempt: Attempt) -> None:
    params = {"k": attempt.ip_key, "started": attempt.ip_window_start}
    conn.execute(_statements(conn.dialect.name).release_ip, params)


def _run_refund(db: Session, refund: Callable[[Connection], None]) -> None:
    try:
        run_statements(db, refund)
    except SQLAlchemyError as exc:
        raise Unavailable(
            f"sign-in refused: the throttle store failed ({exc.__class__.__name__})"
        ) from None


def forget_failures(db: Session, attempt: Attempt) -> None:
    """Forget the name's failures once the sign-in stamped in ``db``'s transaction holds.

    Its commit does that with no write here (the stamp moves the account's
    ``sign_in_count``; see the module docstring). A correct password clears the count
    even if the caller then rolls back or never commits: the counter is deleted when its
    transaction ends that way.
    """
    engine, params = engine_of(db), {"k": attempt.user_key}

    def forget() -> None:
        run_statements_on(engine, lambda conn: conn.execute(_FORGET, params))

    on_rollback(db, forget)


_FORGET = delete(ThrottleCounter).where(_c.key == bindparam("k"))


def unlock(db: Session, username: str, *, actor_id: int | None = None) -> bool:
    """Clear the failure count and any lock on ``username``, in the caller's transaction
    (flushed, not committed), and record an ``unlock`` event.

    Returns True if there was a counter to clear, False if the name had none.
    """
    cleared = db.execute(
        delete(ThrottleCounter)
        .where(ThrottleCounter.key == user_key(username))
        .returning(ThrottleCounter.failures, ThrottleCounter.sign_in_count)
    ).first()
    account = _account_of(db, username)
    if cleared is not None and not _current(cleared.sign_in_count, account):
        cleared = None  # forgotten already: the account signed in since
    add_event(
        db,
        "unlock",
        "success" if cleared else "noop",
        user_id=account.id if account else None,
        actor_id=actor_id,
        username=username,
        detail={"failures": int(cleared.failures) if cleared else 0},
    )
    return cleared is not None


def locked_accounts(db: Session) -> dict[int, datetime]:
    """Every account whose name the throttle locks now: user id -> when the lock ends
    (for operators; one query however many accounts there are)."""
    at = now()
    counter = ThrottleCounter
    rows = db.execute(
        select(User.id, counter.blocked_until)
        .join(counter, counter.key == literal("user:") + User.username_key)
        .where(
            counter.blocked_until > at,
            # A counter the account has signed in since is forgotten (``_current``).
            counter.sign_in_count.is_not_distinct_from(User.sign_in_count),
        )
    )
    return {row.id: row.blocked_until for row in rows}


def current_counter(db: Session, username: object) -> ThrottleCounter | None:
    """The counter for ``username``, if it still counts (for operators and tests): a
    counter the account has signed in since is forgotten, as the next attempt will."""
    counter = db.get(ThrottleCounter, user_key(username))
    if counter is None or not _current(counter.sign_in_count, _account_of(db, username)):
        return None
    return counter


def _account_of(db: Session, username: object) -> Row[int, int] | None:
    name = normalize_username(username)
    if name is None:
        return None
    query = select(User.id, User.sign_in_count).where(User.username_key == name)
    return db.execute(query).first()


def _current(seen: int | None, account: Row[int, int] | None) -> bool:
    """Whether a counter that saw ``seen`` sign-ins is still current for ``account``."""
    return seen == (account.sign_in_count if account else None)
