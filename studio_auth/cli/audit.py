"""``studio-auth audit``: read and prune the audit trail."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from data.models import AuditEvent
from studio_auth.cli.common import db_session, echo_json, echo_table, handle_errors

_RELATIVE = re.compile(r"(\d{1,6})([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_since(value: str) -> datetime:
    """``7d``, ``12h`` or ``30m`` ago, or an ISO 8601 date or time (UTC unless it says)."""
    from studio_auth.clock import now

    text = value.strip()
    if match := _RELATIVE.fullmatch(text):
        amount, unit = match.groups()
        return now() - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            "use 30m, 12h, 7d or an ISO date such as 2026-01-31 or 2026-01-31T08:00"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def event_row(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at,
        "event": event.event,
        "outcome": event.outcome,
        "user_id": event.user_id,
        "actor_id": event.actor_id,
        "username": event.username,
        "ip": event.client_ip,
        "session_id": event.session_id,
        "detail": event.detail,
    }


@click.group("audit", invoke_without_command=True)
@click.option("--user", "username", default=None, help="Events about or attempted as NAME.")
@click.option("--type", "event_type", default=None, help="Only this event, e.g. login.")
@click.option("--since", default=None, help="30m, 12h, 7d or an ISO date/time (UTC).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@handle_errors
def audit_group(
    ctx: click.Context,
    username: str | None,
    event_type: str | None,
    since: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """The audit trail, newest first; audit prune deletes old events."""
    if ctx.invoked_subcommand is not None:
        return
    from services.audit import list_events

    moment = parse_since(since) if since else None
    with db_session() as db:
        rows = [
            event_row(e)
            for e in list_events(db, username=username, event=event_type, since=moment, limit=limit)
        ]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        row["detail"] = ", ".join(f"{k}={v}" for k, v in row["detail"].items())
    echo_table(rows, ["at", "event", "outcome", "user_id", "username", "ip", "detail"])


@audit_group.command("prune")
@click.option(
    "--older-than",
    "days",
    type=click.IntRange(min=1),
    required=True,
    help="Delete events older than this many days.",
)
@handle_errors
def prune_command(days: int) -> None:
    """Delete events older than DAYS days (the pruning itself is recorded)."""
    from services.audit import prune_events

    with db_session() as db:
        deleted = prune_events(db, older_than=timedelta(days=days))
        db.commit()
    click.echo(f"deleted {deleted} audit event{'s' if deleted != 1 else ''} older than {days} days")
