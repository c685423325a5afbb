"""``studio-auth users ...``: account administration from the shell.

The operator acts with full rights (``actor=None``): whoever runs the CLI can already write
the database. Every change is audited by the service it calls.
"""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy.orm import Session

from data.models import Role, User
from services.errors import NotFound
from studio_auth.cli.common import (
    db_session,
    echo_json,
    echo_table,
    format_value,
    handle_errors,
    prompt_new_password,
    read_password_line,
    require_database,
)


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


def user_detail(user: User) -> dict[str, Any]:
    return user_row(user) | {
        "must_change_password": user.must_change_password,
        "password_changed_at": user.password_changed_at,
        "updated_at": user.updated_at,
    }


def _find(db: Session, username: str) -> User:
    from services.auth import get_user_by_username

    user = get_user_by_username(db, username)
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


def _done(user: User, what: str, as_json: bool) -> None:
    if as_json:
        echo_json(user_detail(user))
    else:
        click.echo(f"{what}: {user.username} (id {user.id}, role {user.role})")


_json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


@click.group("users")
def users_group() -> None:
    """Staff accounts."""


@users_group.command("add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--artist-id", type=int, default=None, help="Required for the artist role.")
@click.option("--password-stdin", is_flag=True, help="Read the password as one line of stdin.")
@click.option(
    "--must-change",
    is_flag=True,
    help=(
        "Require a new password at first sign-in. Off unless given: the operator may be "
        "setting their own password here. Give it whenever the password is someone "
        "else's (the API's POST /users does this by default)."
    ),
)
@_json_option
@handle_errors
def add_command(
    username: str,
    role: str,
    artist_id: int | None,
    password_stdin: bool,
    must_change: bool,
    as_json: bool,
) -> None:
    """Create an account."""
    from services.users import create_user

    require_database()  # before the prompt: a wrong DATABASE_URL fails at once
    password = read_password_line() if password_stdin else prompt_new_password()
    with db_session() as db:
        user = create_user(
            db, username, password, role, artist_id=artist_id, must_change_password=must_change
        )
        db.commit()
        _done(user, "created user", as_json)


@users_group.command("list")
@_json_option
@click.option("--active", "active_only", is_flag=True, help="Only active accounts.")
@handle_errors
def list_command(as_json: bool, active_only: bool) -> None:
    """Every account, active or not."""
    from services.users import list_users

    with db_session() as db:
        rows = [user_row(u) for u in list_users(db, include_inactive=not active_only)]
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, ["id", "username", "role", "artist_id", "is_active", "last_login"])


@users_group.command("show")
@click.argument("username")
@_json_option
@handle_errors
def show_command(username: str, as_json: bool) -> None:
    """One account, with what its role may do."""
    from services.auth import user_info
    from services.permissions import effective_permissions

    with db_session() as db:
        user = _find(db, username)
        data = user_detail(user)
        data["permissions"] = effective_permissions(user_info(user))
    if as_json:
        echo_json(data)
        return
    for key, value in data.items():
        if key != "permissions":
            click.echo(f"{key + ':':<22}{format_value(value)}")
    click.echo("permissions:")
    for action, effect in data["permissions"].items():
        click.echo(f"  {action:<26}{effect}")


@users_group.command("set-role")
@click.argument("username")
@click.argument("role", type=click.Choice([r.value for r in Role]))
@click.option("--artist-id", type=int, default=None, help="Needed when ROLE is artist.")
@_json_option
@handle_errors
def set_role_command(username: str, role: str, artist_id: int | None, as_json: bool) -> None:
    """Change an account's role; its sessions end."""
    from services.users import set_role

    with db_session() as db:
        user = set_role(db, _find(db, username).id, role, artist_id=artist_id)
        db.commit()
        _done(user, "role set", as_json)


@users_group.command("link-artist")
@click.argument("username")
@click.argument("artist_id", type=int)
@_json_option
@handle_errors
def link_artist_command(username: str, artist_id: int, as_json: bool) -> None:
    """Link an artist account to an artist record; its sessions end."""
    from services.users import link_artist

    with db_session() as db:
        user = link_artist(db, _find(db, username).id, artist_id)
        db.commit()
        _done(user, f"linked to artist {artist_id}", as_json)


@users_group.command("deactivate")
@click.argument("username")
@_json_option
@handle_errors
def deactivate_command(username: str, as_json: bool) -> None:
    """Stop an account from signing in; its sessions end."""
    from services.users import deactivate

    with db_session() as db:
        user = deactivate(db, _find(db, username).id)
        db.commit()
        _done(user, "deactivated", as_json)


@users_group.command("activate")
@click.argument("username")
@_json_option
@handle_errors
def activate_command(username: str, as_json: bool) -> None:
    """Let a deactivated account sign in again."""
    from services.users import activate

    with db_session() as db:
        user = activate(db, _find(db, username).id)
        db.commit()
        _done(user, "activated", as_json)


@users_group.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password as one line of stdin.")
@click.option(
    "--must-change/--no-must-change",
    default=True,
    show_default=True,
    help="Require a new password at the next sign-in.",
)
@handle_errors
def passwd_command(username: str, password_stdin: bool, must_change: bool) -> None:
    """Set a new password (administrator reset); the account's sessions end."""
    from services.users import reset_password

    with db_session() as db:  # before the prompt: a wrong name or database fails at once
        _find(db, username)
    password = read_password_line() if password_stdin else prompt_new_password("New password")
    with db_session() as db:
        user = reset_password(db, _find(db, username).id, password, must_change=must_change)
        db.commit()
        click.echo(f"password reset: {user.username}")


@users_group.command("unlock")
@click.argument("username")
@handle_errors
def unlock_command(username: str) -> None:
    """Clear the failed sign-in count and any lockout of a username."""
    from services.throttle import unlock

    with db_session() as db:
        cleared = unlock(db, username)
        db.commit()
    click.echo(f"unlocked: {username}" if cleared else f"not locked: {username}")
