"""``studio-auth sessions ...``: inspect and end sign-in sessions from the shell."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from data.models import AuthSession, User
from services.errors import NotFound
from studio_auth.cli.common import db_session, echo_json, echo_table, handle_errors

# The CLI is the local operator's tool (see docs/cli.md): revocations it makes are
# recorded with this reason and no actor.
OPERATOR_REASON = "operator"


def _user(db: Session, username: str) -> User:
    from services.auth import get_user_by_username

    user = get_user_by_username(db, username)
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


def session_row(row: AuthSession, username: str, state: str) -> dict[str, Any]:
    """What the CLI shows of a session; never the token digest."""
    return {
        "id": row.id,
        "user_id": row.user_id,
        "username": username,
        "state": state,
        "created_at": row.created_at,
        "last_seen_at": row.last_seen_at,
        "expires_at": row.expires_at,
        "revoked_at": row.revoked_at,
        "revoked_reason": row.revoked_reason,
        "client_ip": row.client_ip,
        "user_agent": row.user_agent,
        "elevated_by": row.elevated_by,
        "elevated_until": row.elevated_until,
    }


@click.group("sessions")
def sessions_group() -> None:
    """Sign-in sessions."""


@sessions_group.command("list")
@click.argument("username", required=False)
@click.option("--all", "include_inactive", is_flag=True, help="Include revoked and expired.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def list_command(username: str | None, include_inactive: bool, as_json: bool) -> None:
    """Live sessions, newest first: of USERNAME, or of every user."""
    from services.sessions import list_all_sessions, list_sessions, session_state

    with db_session() as db:
        if username is None:
            rows = list_all_sessions(db, include_inactive=include_inactive)
        else:
            rows = list_sessions(db, _user(db, username).id, include_inactive=include_inactive)
        ids = {r.user_id for r in rows}
        found = db.execute(select(User.id, User.username).where(User.id.in_(ids)))
        names: dict[int, str] = {user_id: name for user_id, name in found}
        out = [session_row(r, names.get(r.user_id, ""), session_state(r)) for r in rows]
    if as_json:
        echo_json(out)
        return
    if not out:
        click.echo("no sessions")
        return
    columns = ["id", "username", "state", "created_at", "last_seen_at", "expires_at"]
    echo_table(out, [*columns, "client_ip", "user_agent"])


@sessions_group.command("revoke")
@click.argument("session_id", type=int)
@click.option("--reason", default=OPERATOR_REASON, show_default=True, help="Recorded reason.")
@handle_errors
def revoke_command(session_id: int, reason: str) -> None:
    """End one session now."""
    from services.sessions import revoke_session

    with db_session() as db:
        if not revoke_session(db, session_id, reason=reason):
            raise NotFound(f"no unrevoked session with id {session_id}")
        db.commit()
    click.echo(f"revoked session {session_id}")


@sessions_group.command("revoke-all")
@click.argument("username")
@click.option("--reason", default=OPERATOR_REASON, show_default=True, help="Recorded reason.")
@handle_errors
def revoke_all_command(username: str, reason: str) -> None:
    """End every session of USERNAME now."""
    from services.sessions import revoke_user_sessions

    with db_session() as db:
        user = _user(db, username)
        count = revoke_user_sessions(db, user.id, reason=reason)
        db.commit()
        name = user.username
    click.echo(f"revoked {count} session{'' if count == 1 else 's'} of {name}")


@sessions_group.command("prune")
@click.option(
    "--older-than-days",
    type=click.IntRange(min=0, max=3650),
    default=0,
    show_default=True,
    help="Keep dead sessions younger than this, for inspection.",
)
@handle_errors
def prune_command(older_than_days: int) -> None:
    """Delete revoked and expired sessions."""
    from services.sessions import prune_sessions

    with db_session() as db:
        count = prune_sessions(db, older_than=timedelta(days=older_than_days))
        db.commit()
    click.echo(f"deleted {count} dead session{'' if count == 1 else 's'}")
