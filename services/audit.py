"""The audit trail: append-only rows in ``audit_events`` plus one structured log line each.

``add_event`` writes in the caller's transaction, so an event commits or rolls back with the
change it describes. ``commit_event`` writes in a transaction of its own, for failures that
must be kept whatever the caller does with its session.

What is stored is bounded and inert: the attempted username is normalized (or, when it
cannot be a username, escaped) and truncated; detail values are escaped and truncated, and
values under keys that name a password, secret or token are replaced, so a careless caller
cannot put a credential into the trail or a log line. Rows are only ever added, except by
``prune_events``, which records that it ran.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypedDict, Unpack, cast

from sqlalchemy import Connection, CursorResult, delete, insert, or_, select
from sqlalchemy.orm import Session

from data.models import AuditEvent, User, normalize_username
from services.autonomous import run_statements
from services.errors import InvalidRequest
from studio_auth.clock import now

logger = logging.getLogger("studio_auth.audit")

USERNAME_MAX_LENGTH = 160
DETAIL_TEXT_MAX_LENGTH = 256
DETAIL_MAX_ITEMS = 16
MAX_LIST_LIMIT = 10_000
REDACTED = "[redacted]"
_SECRET_WORDS = ("password", "passwd", "secret", "token")
# Outcomes that an operator watching the logs should see without enabling INFO.
_WARNING_OUTCOMES = frozenset({"failure", "throttled", "denied"})
_INSERT_EVENT = insert(AuditEvent)


def escape_text(value: str, limit: int = USERNAME_MAX_LENGTH) -> str:
    """Printable, bounded text for logs and the trail: control characters and lone
    surrogates are escaped so an attempted username cannot forge a log line."""
    if value.isascii() and value.isprintable() and "\\" not in value:
        return value[:limit]  # nothing to escape: the common case, at C speed
    return _escape_each(value, limit)


def _escape_each(value: str, limit: int) -> str:
    out = []
    for ch in value[:limit]:
        code = ord(ch)
        if code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0 or 0xD800 <= code < 0xE000:
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        elif ch == "\\":
            out.append("\\\\")
        else:
            out.append(ch)
    return "".join(out)[:limit]


def attempted_username(username: object) -> str | None:
    """How an attempted username is stored: its normalized key, or the raw text escaped
    when it cannot be a username; truncated either way. None for a non-string."""
    if not isinstance(username, str):
        return None
    key = normalize_username(username)
    return escape_text(key if key is not None else username)


def _clean(value: object, depth: int = 0) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return escape_text(value, DETAIL_TEXT_MAX_LENGTH)
    if depth < 2 and isinstance(value, dict):
        return _clean_detail(value, depth + 1)
    if depth < 2 and isinstance(value, list | tuple):
        return [_clean(v, depth + 1) for v in list(value)[:DETAIL_MAX_ITEMS]]
    return escape_text(str(value), DETAIL_TEXT_MAX_LENGTH)


def _clean_detail(detail: dict[Any, Any], depth: int = 0) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for raw_key, value in list(detail.items())[:DETAIL_MAX_ITEMS]:
        key = escape_text(str(raw_key), 64)
        if any(word in key.lower() for word in _SECRET_WORDS):
            clean[key] = REDACTED
        else:
            clean[key] = _clean(value, depth)
    return clean


class EventFields(TypedDict, total=False):
    """What an event may say besides its name and outcome (every field optional)."""

    user_id: int | None
    actor_id: int | None
    username: object
    ip: str | None
    session_id: int | None
    detail: dict[str, Any] | None


def build_event(event: str, outcome: str, **fields: Unpack[EventFields]) -> dict[str, Any]:
    """The cleaned column values of one event (for ``insert_event``), not yet logged: its
    writer calls ``log_event``, after its statement when only that tells whether the
    event happened."""
    ip = fields.get("ip")
    return {
        "at": now(),
        "event": event,
        "outcome": outcome,
        "user_id": fields.get("user_id"),
        "actor_id": fields.get("actor_id"),
        "username": attempted_username(fields.get("username")),
        "client_ip": escape_text(ip, 64) if ip else None,
        "session_id": fields.get("session_id"),
        "detail": _clean_detail(fields.get("detail") or {}),
    }


def log_event(fields: dict[str, Any]) -> None:
    """The structured log line of an event made by ``build_event``."""
    level = logging.WARNING if fields["outcome"] in _WARNING_OUTCOMES else logging.INFO
    if logger.isEnabledFor(level):
        # The log line names the address "ip", as it always has.
        line = {**fields, "at": fields["at"].isoformat(), "ip": fields["client_ip"]}
        del line["client_ip"]
        text = json.dumps(line, ensure_ascii=True, sort_keys=True, default=str)
        logger.log(level, "audit %s", text)


def add_event(
    db: Session, event: str, outcome: str = "success", **fields: Unpack[EventFields]
) -> None:
    """Add an event to the caller's transaction (flushed, not committed)."""
    built = build_event(event, outcome, **fields)
    log_event(built)
    # Pending changes first: the event may refer to rows they create.
    db.flush()
    insert_event(db.connection(), built)


def commit_event(
    db: Session, event: str, outcome: str = "failure", **fields: Unpack[EventFields]
) -> None:
    """Write an event in a transaction of its own (one INSERT, with the database's full
    commit guarantee), kept whatever the caller then does with ``db``."""
    built = build_event(event, outcome, **fields)
    log_event(built)
    run_statements(db, lambda conn: insert_event(conn, built))


def insert_event(conn: Connection, fields: dict[str, Any]) -> None:
    """Insert one event made by ``build_event`` on ``conn`` (in whatever transaction, or
    autocommit, ``conn`` is in)."""
    conn.execute(_INSERT_EVENT, fields)


def list_events(
    db: Session,
    *,
    user_id: int | None = None,
    username: str | None = None,
    event: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditEvent]:
    """Events, newest first, matching every filter given, from ``since`` (inclusive) to
    ``until`` (exclusive), skipping the first ``offset``.

    ``username`` matches events about that account (by id) and attempts made under that
    name, including names no account has. ``limit`` must be 1-10000 and ``offset`` 0 or
    more (InvalidRequest).
    """
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIST_LIMIT}")
    if offset < 0:
        raise InvalidRequest("offset must not be negative")
    query = select(AuditEvent)
    if user_id is not None:
        query = query.where(AuditEvent.user_id == user_id)
    if username is not None:
        name = attempted_username(username)
        ids = select(User.id).where(User.username_key == normalize_username(username))
        query = query.where(or_(AuditEvent.username == name, AuditEvent.user_id.in_(ids)))
    if event is not None:
        query = query.where(AuditEvent.event == event)
    if outcome is not None:
        query = query.where(AuditEvent.outcome == outcome)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    query = query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    return list(db.scalars(query.limit(limit).offset(offset)))


def event_types(db: Session) -> list[str]:
    """The event names the trail holds, sorted (for a filter's choices)."""
    return list(db.scalars(select(AuditEvent.event).distinct().order_by(AuditEvent.event)))


def prune_events(db: Session, *, older_than: timedelta, actor_id: int | None = None) -> int:
    """Delete events older than ``older_than`` in the caller's transaction (flushed, not
    committed) and record an ``audit_pruned`` event. Returns how many were deleted.

    Raises InvalidRequest unless ``older_than`` is at least one day, so a slip cannot
    erase the recent trail.
    """
    if older_than < timedelta(days=1):
        raise InvalidRequest("older_than must be at least one day")
    cutoff = now() - older_than
    result = db.execute(
        delete(AuditEvent).where(AuditEvent.at < cutoff),
        execution_options={"synchronize_session": False},
    )
    deleted = cast(CursorResult[Any], result).rowcount
    add_event(
        db,
        "audit_pruned",
        "success",
        actor_id=actor_id,
        detail={"deleted": deleted, "before": cutoff.isoformat()},
    )
    return deleted


@dataclass(frozen=True)
class SignInHistory:
    """An account's recent sign-ins from a client (over HTTP: a password checked to
    change it, or by a library caller, has no client address), newest first, and the
    failed or throttled attempts under its name since the sign-in before the latest
    (ASVS 5.0 6.3.4: people see what happened to their account since they last looked)."""

    recent: list[AuditEvent]
    failures: list[AuditEvent]


def sign_in_history(
    db: Session, user_id: int, username: str, *, limit: int = 5, max_failures: int = 50
) -> SignInHistory:
    """The last ``limit`` sign-ins of the account, and at most ``max_failures`` failed
    attempts, newest first, since the one before the latest (all kept ones when there is
    no earlier sign-in)."""
    recent = list(
        db.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.event == "login",
                AuditEvent.outcome == "success",
                AuditEvent.user_id == user_id,
                AuditEvent.client_ip.is_not(None),
            )
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
    )
    failures = (
        select(AuditEvent)
        .where(
            AuditEvent.event == "login",
            AuditEvent.outcome != "success",
            or_(AuditEvent.user_id == user_id, AuditEvent.username == attempted_username(username)),
        )
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(max_failures)
    )
    if len(recent) > 1:
        failures = failures.where(AuditEvent.at > recent[1].at)
    return SignInHistory(recent, list(db.scalars(failures)))
