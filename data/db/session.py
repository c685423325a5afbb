"""Engines and sessions.

``SessionLocal`` is the contract's entry point: a session factory bound to
``DATABASE_URL``. Creating it opens no connection. ``make_engine`` and
``make_sessionmaker`` let tests and tools build their own.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from studio_auth.files import create_private_file
from studio_auth.settings import get_settings


def _sqlite_on_connect(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            # WAL with synchronous=NORMAL cannot corrupt the file; it may lose the last
            # commits on power loss, which is the usual trade for an embedded store.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        finally:
            cursor.close()

    return on_connect


def _sqlite_create_private(path: str) -> Any:
    def before_connect(*_args: Any) -> None:
        # The file holds password hashes: made owner-only before SQLite creates it with
        # the umask's mode. SQLite gives the -wal and -shm files the database file's mode.
        # Any other failure is SQLite's to report, as it opens the file.
        with contextlib.suppress(OSError):
            create_private_file(path).close()

    return before_connect


# A pooled PostgreSQL connection idle for longer than this is checked with a round trip
# before it is handed out. Connections in steady use skip the check (the pool would
# otherwise add a round trip to every checkout, on every sign-in several times); if one of
# them died meanwhile, the statement fails, the pool discards every connection made before
# the failure, and the next checkout connects afresh.
PING_AFTER_IDLE_SECONDS = 2.0


def _ping_when_idle(engine: Engine) -> None:
    def on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool retries the checkout on a fresh connection.
            raise DisconnectionError(f"stale pooled connection ({exc.__class__.__name__})") from exc

    event.listen(engine, "checkin", on_checkin)
    event.listen(engine, "checkout", on_checkout)


def make_engine(
    url: str | None = None, *, busy_timeout_ms: int | None = None, **kwargs: Any
) -> Engine:
    """An engine for ``url`` (default: the configured ``DATABASE_URL``).

    A new SQLite file is created readable by its owner only (0600). SQLite gets foreign
    keys, WAL and a busy timeout on every connection
    (``busy_timeout_ms``, default the configured one; 0 makes a locked database fail at
    once instead of waiting). PostgreSQL connections are reused most-recently-used first
    (a warm server process answers faster) and checked before use after an idle spell,
    so the pool recovers by itself after the server comes back.
    """
    settings = get_settings()
    url = url or settings.database_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        busy = settings.sqlite_busy_timeout_ms if busy_timeout_ms is None else busy_timeout_ms
        connect_args = {"timeout": busy / 1000, "check_same_thread": False}
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        path = parsed.database
        if path and path != ":memory:" and not parsed.query.get("uri"):
            event.listen(engine, "do_connect", _sqlite_create_private(path))
        event.listen(engine, "connect", _sqlite_on_connect(busy))
        return engine
    kwargs.setdefault("pool_use_lifo", True)
    kwargs.setdefault("pool_size", settings.db_pool_size)
    kwargs.setdefault("max_overflow", settings.db_max_overflow)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """A session factory with the project's defaults for ``engine``."""
    return sessionmaker(bind=engine, expire_on_commit=False)


SessionLocal: sessionmaker[Session] = make_sessionmaker(make_engine())
