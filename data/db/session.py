"""Engines and sessions.

``SessionLocal`` is the contract's entry point: a session factory bound to
``DATABASE_URL``. Creating it opens no connection. ``make_engine`` and
``make_sessionmaker`` let tests and tools build their own.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

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


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url`` (default: the configured ``DATABASE_URL``).

    SQLite gets foreign keys, WAL and a busy timeout on every connection; PostgreSQL gets
    pre-ping so the pool recovers by itself after the server comes back.
    """
    settings = get_settings()
    url = url or settings.database_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        busy = settings.sqlite_busy_timeout_ms
        connect_args = {"timeout": busy / 1000, "check_same_thread": False}
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect(busy))
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", settings.db_pool_size)
    kwargs.setdefault("max_overflow", settings.db_max_overflow)
    return create_engine(url, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """A session factory with the project's defaults for ``engine``."""
    return sessionmaker(bind=engine, expire_on_commit=False)


SessionLocal: sessionmaker[Session] = make_sessionmaker(make_engine())
