"""``studio-auth db upgrade`` and ``studio-auth init``."""

from __future__ import annotations

import click

from studio_auth.cli.common import db_session, handle_errors


@click.group("db")
def db_group() -> None:
    """Database schema."""


def _upgrade() -> None:
    from data.db.session import SessionLocal
    from data.migrations import upgrade

    engine = SessionLocal.kw["bind"]
    upgrade(engine)


@db_group.command("upgrade")
@handle_errors
def upgrade_command() -> None:
    """Apply every pending migration to DATABASE_URL."""
    _upgrade()
    click.echo("database is up to date")


@click.command("init")
@handle_errors
def init_command() -> None:
    """Apply migrations and, on an empty database, create the first admin."""
    from services.bootstrap import FIRST_ADMIN, ensure_first_admin

    _upgrade()
    with db_session() as db:
        password = ensure_first_admin(db)
    if password is None:
        click.echo("database is up to date; users already exist")
        return
    click.echo(f"created the first admin account: {FIRST_ADMIN}")
    click.echo(f"one-time password (shown once, must be changed at first sign-in): {password}")
