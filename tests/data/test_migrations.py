"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from data.db.base import Base
from data.migrations import alembic_config, is_current, upgrade
from data.models import Artist, Role, User
from services import throttle


def test_models_and_migrations_agree(engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_database_is_at_head(engine) -> None:
    assert is_current(engine)


@pytest.mark.parametrize(("revision", "ready"), [("0001", False), ("9999", True)])
def test_behind_is_not_current_but_a_newer_release_is(engine, revision, ready) -> None:
    # During a rolling upgrade the new release migrates first; the old processes keep
    # serving (their /readyz stays 200) until they are replaced. A database behind the
    # code is not ready.
    with engine.begin() as conn:
        head = conn.scalar(text("SELECT version_num FROM alembic_version"))
        conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    try:
        assert is_current(engine) is ready
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": head})


def test_throttle_counters_of_accounts_stay_current_across_the_sign_in_count_upgrade(
    engine,
) -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")
    at = datetime(2026, 1, 5, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (username, username_key, password_hash, role, is_active,"
                " must_change_password, created_at, updated_at, password_changed_at)"
                " VALUES ('alice', 'alice', 'x', 'admin', true, false, :at, :at, :at)"
            ),
            {"at": at},
        )
        for key in ("user:alice", "user:nobody", "ip:192.0.2.1"):
            conn.execute(
                text(
                    "INSERT INTO throttle_counters (key, failures, window_start, last_failure_at)"
                    " VALUES (:key, 7, :at, :at)"
                ),
                {"key": key, "at": at},
            )
    upgrade(engine)
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT key, sign_in_count FROM throttle_counters")).all())
        assert conn.scalar(text("SELECT sign_in_count FROM users")) == 0
    assert rows == {"user:alice": 0, "user:nobody": None, "ip:192.0.2.1": None}
    with Session(engine) as s:
        assert throttle.current_counter(s, "alice").failures == 7
        assert throttle.current_counter(s, "nobody").failures == 7


def test_role_check_constraint(db) -> None:
    with pytest.raises(IntegrityError):  # noqa: PT012  (the INSERT and its flush)
        db.execute(
            text(
                "INSERT INTO users (username, username_key, password_hash, role, is_active,"
                " must_change_password, created_at, updated_at, password_changed_at)"
                " VALUES ('x', 'x', 'h', 'owner', true, false, :t, :t, :t)"
            ),
            {"t": datetime(2026, 1, 1, tzinfo=UTC)},
        )
        db.flush()


@pytest.mark.parametrize(("role", "with_artist"), [("artist", False), ("assistant", True)])
def test_artist_link_must_match_role(db, role, with_artist) -> None:
    artist = Artist(name="Rin")
    db.add(artist)
    db.flush()
    db.add(
        User(
            username="x",
            password_hash="h",
            role=Role(role),
            artist_id=artist.id if with_artist else None,
        )
    )
    with pytest.raises(IntegrityError):
        db.flush()


def test_artist_foreign_key_is_enforced(db) -> None:
    db.add(User(username="x", password_hash="h", role=Role.ARTIST, artist_id=9999))
    with pytest.raises(IntegrityError):
        db.flush()


def test_timestamps_come_back_aware_utc(db, make_user) -> None:
    user = make_user("alice")
    db.expire_all()
    fresh = db.get(User, user.id)
    assert fresh is not None
    assert fresh.created_at.tzinfo is not None
    assert fresh.created_at.utcoffset().total_seconds() == 0


def test_naive_datetimes_are_refused(db, make_user) -> None:
    from sqlalchemy.exc import StatementError

    user = make_user("alice")
    user.last_login = datetime(2026, 1, 1)
    with pytest.raises(StatementError, match="naive datetime"):
        db.flush()
