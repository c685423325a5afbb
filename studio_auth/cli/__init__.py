"""The ``studio-auth`` command: a thin layer over the services."""

from __future__ import annotations

import click

from studio_auth.cli.artists import artists_group
from studio_auth.cli.audit import audit_group
from studio_auth.cli.db import db_group, init_command
from studio_auth.cli.serve import serve_command
from studio_auth.cli.sessions import sessions_group
from studio_auth.cli.users import users_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """studio-auth: accounts, sessions and permissions for a studio.

    Every command works on the database DATABASE_URL names (default
    sqlite:///studio_auth.db, a file in the working directory); only db upgrade, init
    and serve create one.
    """


main.add_command(db_group)
main.add_command(init_command)
main.add_command(serve_command)
main.add_command(users_group)
main.add_command(artists_group)
main.add_command(sessions_group)
main.add_command(audit_group)
