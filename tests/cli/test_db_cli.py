"""``studio-auth db upgrade`` and ``studio-auth init``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import inspect

from data.migrations import is_current
from services.auth import authenticate
from studio_auth.cli import main


def test_upgrade_is_idempotent(engine) -> None:
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
    assert is_current(engine)


def test_init_creates_one_admin_with_a_one_time_password(engine, db) -> None:
    result = CliRunner().invoke(main, ["init"])
    assert result.exit_code == 0, result.output
    password = result.output.strip().splitlines()[-1].rsplit(" ", 1)[-1]
    assert len(password) >= 20
    info = authenticate(db, "admin", password)
    assert info is not None and info["role"] == "admin" and info["must_change_password"]
    again = CliRunner().invoke(main, ["init"])
    assert again.exit_code == 0
    assert password not in again.output
    assert "users already exist" in again.output


def test_entry_point_on_a_new_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}"}
    exe = Path(sys.executable).with_name("studio-auth")
    done = subprocess.run(
        [str(exe), "db", "upgrade"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    from data.db.session import make_engine

    engine = make_engine(f"sqlite:///{path}")
    assert {"users", "sessions", "audit_events"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2",
    }
    exe = Path(sys.executable).with_name("studio-auth")
    done = subprocess.run(
        [str(exe), "users", "list"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 7
    assert done.stderr.startswith("error: database unavailable")
    assert "Traceback" not in done.stderr


def test_unsafe_settings_are_refused(tmp_path: Path) -> None:
    env = {**os.environ, "STUDIO_AUTH_ENV": "production", "STUDIO_AUTH_BCRYPT_ROUNDS": "4"}
    exe = Path(sys.executable).with_name("studio-auth")
    done = subprocess.run(
        [str(exe), "users", "list"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode != 0
    assert "BCRYPT_ROUNDS" in done.stderr
