"""The PostgreSQL pool: reused most-recently-used first, checked only after an idle spell,
and back on its feet by itself after a connection dies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from data.db import session as db_session
from data.db.session import make_engine
from tests.conftest import PG_URL

pytestmark = pytest.mark.skipif(not PG_URL, reason="needs TEST_DATABASE_URL (PostgreSQL)")


@pytest.fixture
def small_pool(pg_engine: Engine) -> Iterator[Engine]:
    engine = make_engine(pg_engine.url.render_as_string(hide_password=False), pool_size=1)
    yield engine
    engine.dispose()


def _backend(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(text("SELECT pg_backend_pid()")))


def _kill(pg_engine: Engine, pid: int) -> None:
    with pg_engine.connect() as conn:
        assert conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}) is True
        conn.commit()


def test_a_connection_idle_past_the_threshold_is_checked_and_replaced(
    small_pool, pg_engine, monkeypatch
) -> None:
    first = _backend(small_pool)
    _kill(pg_engine, first)
    monkeypatch.setattr(db_session, "PING_AFTER_IDLE_SECONDS", 0.0)
    assert _backend(small_pool) != first  # no error: the check found it dead


def test_a_connection_in_steady_use_is_not_checked_and_recovers_after_one_error(
    small_pool, pg_engine, monkeypatch
) -> None:
    monkeypatch.setattr(db_session, "PING_AFTER_IDLE_SECONDS", 3600.0)
    first = _backend(small_pool)
    assert _backend(small_pool) == first  # reused, most recently used first
    _kill(pg_engine, first)
    with pytest.raises(OperationalError):
        _backend(small_pool)
    assert _backend(small_pool) != first
