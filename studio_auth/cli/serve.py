"""``studio-auth serve``: migrate, make the first admin if needed, then run the HTTP service."""

from __future__ import annotations

import copy
import logging.config
from typing import Any

import click

from studio_auth.cli.common import db_session, handle_errors


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port."
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes (each with its own password-check pool).",
)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    help="Log every request (the reverse proxy usually does; security events are always logged).",
)
@handle_errors
def serve_command(host: str, port: int, workers: int, access_log: bool) -> None:
    """Apply migrations and start the HTTP service on DATABASE_URL.

    On an empty database, first creates an `admin` account with a random password,
    printed here once; its first sign-in can only change that password.
    """
    import uvicorn

    from data.db.session import SessionLocal
    from data.migrations import upgrade
    from services.bootstrap import FIRST_ADMIN, ensure_first_admin
    from studio_auth.settings import get_settings

    settings = get_settings()  # refuse unsafe settings before anything starts
    logging_config = log_config(settings.log_level)
    # From here on, so the first admin's creation is logged too; uvicorn applies the
    # same configuration again in every worker.
    logging.config.dictConfig(logging_config)
    # Once, here, before the workers start: they would otherwise race to migrate.
    upgrade(SessionLocal.kw["bind"])
    with db_session() as db:
        password = ensure_first_admin(db)
    if password is not None:
        click.echo(f"created the first admin account: {FIRST_ADMIN}")
        click.echo(f"one-time password (shown once, must be changed at first sign-in): {password}")
    click.echo(f"studio-auth listening on http://{host}:{port}", err=True)
    uvicorn.run(
        "studio_auth.web.app:create_served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # Client addresses come from the socket; X-Forwarded-For is read by the app
        # itself, from STUDIO_AUTH_TRUSTED_PROXIES only. Uvicorn's own handling would
        # trust 127.0.0.1 by default.
        proxy_headers=False,
        forwarded_allow_ips="",
        server_header=False,
        log_level="info",
        # One log line per request costs token checks a measurable share of their time.
        access_log=access_log,
        log_config=logging_config,
    )


def log_config(level: str) -> dict[str, Any]:
    """Uvicorn's logging configuration plus studio-auth's own lines (audit events
    included) on stderr at ``level``; applied in every worker process."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["studio_auth"] = {
        "handlers": ["default"],
        "level": level,
        "propagate": False,
    }
    return config
