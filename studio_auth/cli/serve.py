"""``studio-auth serve``: migrate, make the first admin if needed, then run the HTTP service."""

from __future__ import annotations

import copy
import errno
import logging.config
import os
import socket
from typing import Any

import click

from studio_auth.cli.common import db_session, fail, handle_errors


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
    """Apply migrations and run the HTTP service on DATABASE_URL, in the foreground
    until Ctrl-C or SIGTERM.

    On an empty database, first creates an account named admin with a random password,
    printed here once; its first sign-in can only change that password.
    """
    import uvicorn

    from data.db.session import SessionLocal
    from data.migrations import upgrade
    from services.bootstrap import FIRST_ADMIN, ensure_first_admin
    from studio_auth.settings import get_settings

    settings = get_settings()  # refuse unsafe settings before anything starts
    # Before migrating or creating the first admin, so that a port in use changes nothing.
    problem = listen_problem(host, port)
    if problem is not None:
        fail(problem)
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


def listen_problem(host: str, port: int) -> str | None:
    """Why the service could not listen on ``host``:``port``, in words an operator can act
    on, or None. Binds and closes a socket per address as uvicorn (asyncio) will."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return (
            f"cannot listen on {host!r}: not an address of this machine nor a name it can "
            "resolve; use --host 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)"
        )
    for family, kind, proto, _name, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            if os.name == "posix":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                return _bind_failure(exc, host, port)
    return None


def _bind_failure(exc: OSError, host: str, port: int) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is already in use (another studio-auth serve?): stop "
            "what listens there, or choose another port with --port"
        )
    if exc.errno == errno.EACCES:
        return (
            f"not allowed to listen on port {port} on {host}: ports below 1024 need "
            "privileges; choose another port with --port and put a proxy in front"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"{host} is not an address of this machine: use --host 127.0.0.1 (this machine "
            "only) or 0.0.0.0 (every interface)"
        )
    return f"cannot listen on {host} port {port}: {exc.strerror or 'unknown error'}"
