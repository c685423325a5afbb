"""``studio-auth users ...``: account administration from the shell."""

from __future__ import annotations

from typing import Any

import click

from cli.common import db_session, echo_json, echo_table, handle_errors, read_password
from data.models import Role, User


def user_row(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "role": user.role.value,
        "artist_id": user.artist_id,
        "is_active": user.is_active,
        "last_login": user.last_login,
        "created_at": user.created_at,
    }


@click.group("users")
def users_group() -> None:
    """Staff accounts."""


@users_group.command("add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--artist-id", type=int, default=None, help="Required for the artist role.")
@click.option("--password-stdin", is_flag=True, help="Read the password as one line of stdin.")
@handle_errors
def add_command(username: str, role: str, artist_id: int | None, password_stdin: bool) -> None:
    """Create an account."""
    from services.users import create_user

    password = read_password(password_stdin)
    with db_session() as db:
        user = create_user(db, username, password, role, artist_id=artist_id)
        db.commit()
        click.echo(f"created user {user.username} (id {user.id}, role {user.role})")


@users_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def list_command(as_json: bool) -> None:
    """Every account, active or not."""
    from services.users import list_users

    with db_session() as db:
        rows = [user_row(u) for u in list_users(db)]
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, ["id", "username", "role", "artist_id", "is_active", "last_login"])
