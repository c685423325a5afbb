"""The audit trail: append-only rows in ``audit_events`` plus one structured log line each.

``record`` writes in the caller's transaction, so an event commits or rolls back with the
change it describes. ``record_now`` writes in a transaction of its own, for failures that
must be kept whatever the caller does with its session.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy.orm import Session

from data.models import AuditEvent
from services.durable import write_durably
from studio_auth.clock import now

logger = logging.getLogger("studio_auth.audit")

USERNAME_MAX_LENGTH = 160


def escape_text(value: str, limit: int = USERNAME_MAX_LENGTH) -> str:
    """Printable, bounded text for logs and the trail: control characters and lone
    surrogates are escaped so an attempted username cannot forge a log line."""
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


def _event(
    event: str,
    outcome: str,
    *,
    user_id: int | None,
    actor_id: int | None,
    username: object,
    ip: str | None,
    session_id: int | None,
    detail: dict[str, Any] | None,
) -> AuditEvent:
    name = escape_text(username) if isinstance(username, str) else None
    row = AuditEvent(
        at=now(),
        event=event,
        outcome=outcome,
        user_id=user_id,
        actor_id=actor_id,
        username=name,
        client_ip=escape_text(ip, 64) if ip else None,
        session_id=session_id,
        detail=dict(detail or {}),
    )
    logger.info(
        "audit %s",
        json.dumps(
            {
                "event": event,
                "outcome": outcome,
                "user_id": user_id,
                "actor_id": actor_id,
                "username": name,
                "ip": row.client_ip,
                "session_id": session_id,
                "detail": row.detail,
            },
            ensure_ascii=True,
            sort_keys=True,
            default=str,
        ),
    )
    return row


def record(
    db: Session,
    event: str,
    outcome: str = "success",
    *,
    user_id: int | None = None,
    actor_id: int | None = None,
    username: object = None,
    ip: str | None = None,
    session_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add an event to the caller's transaction (flushed, not committed)."""
    db.add(
        _event(
            event,
            outcome,
            user_id=user_id,
            actor_id=actor_id,
            username=username,
            ip=ip,
            session_id=session_id,
            detail=detail,
        )
    )
    db.flush()


def record_now(
    db: Session,
    event: str,
    outcome: str = "failure",
    *,
    user_id: int | None = None,
    actor_id: int | None = None,
    username: object = None,
    ip: str | None = None,
    session_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Write an event durably: committed whatever the caller does with ``db``."""
    row = _event(
        event,
        outcome,
        user_id=user_id,
        actor_id=actor_id,
        username=username,
        ip=ip,
        session_id=session_id,
        detail=detail,
    )
    fields = {c.key: getattr(row, c.key) for c in AuditEvent.__table__.columns if c.key != "id"}
    write_durably(db, lambda session: session.add(AuditEvent(**fields)))
