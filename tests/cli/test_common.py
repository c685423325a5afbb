"""What every command shares: finding the database without creating one, messages an
operator can act on, help texts and times as people read them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import make_url, text

from data.db.session import SessionLocal, make_engine
from data.migrations import upgrade
from studio_auth.cli import main
from studio_auth.cli.common import EXIT_BAD_INPUT, EXIT_NO_DATABASE, EXIT_UNAVAILABLE
from tests.conftest import PG_URL

EXE = Path(sys.executable).with_name("studio-auth")
# The commands that make a database; every other one must find it.
CREATING = {("db", "upgrade"), ("init",), ("serve",)}
# Each other command with arguments it could run with, input on stdin if it reads any.
FINDING: dict[tuple[str, ...], list[str]] = {
    ("users", "add"): ["rin", "--role", "admin", "--password-stdin"],
    ("users", "list"): [],
    ("users", "show"): ["admin"],
    ("users", "set-role"): ["admin", "assistant"],
    ("users", "link-artist"): ["admin", "1"],
    ("users", "deactivate"): ["admin"],
    ("users", "activate"): ["admin"],
    ("users", "passwd"): ["admin", "--password-stdin"],
    ("users", "unlock"): ["admin"],
    ("artists", "add"): ["Rin"],
    ("artists", "list"): [],
    ("sessions", "list"): [],
    ("sessions", "revoke"): ["1"],
    ("sessions", "revoke-all"): ["admin"],
    ("sessions", "prune"): [],
    ("audit",): [],
    ("audit", "prune"): ["--older-than", "1"],
}
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z")


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command that does something, by its path (``audit`` itself lists events)."""
    for name, command in group.commands.items():
        path = (*prefix, name)
        if isinstance(command, click.Group):
            if command.invoke_without_command:
                yield path
            yield from _commands(command, path)
        else:
            yield path


def _run(*args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(main, list(args), input=stdin)


@pytest.fixture
def bind_url() -> Iterator[Callable[[str], None]]:
    """Point the CLI's ``SessionLocal`` at ``url`` for one test."""
    previous = SessionLocal.kw["bind"]
    engines = []

    def bind(url: str) -> None:
        engines.append(make_engine(url))
        SessionLocal.configure(bind=engines[-1])

    yield bind
    SessionLocal.configure(bind=previous)
    for engine in engines:
        engine.dispose()


def test_every_command_is_either_creating_or_finding() -> None:
    assert set(_commands(main)) == CREATING | set(FINDING)


@pytest.mark.parametrize("command", sorted(FINDING), ids=" ".join)
def test_no_command_but_upgrade_init_serve_creates_a_sqlite_file(
    command: tuple[str, ...], tmp_path: Path, bind_url
) -> None:
    path = tmp_path / "missing.db"
    bind_url(f"sqlite:///{path}")
    result = _run(*command, *FINDING[command], stdin="velvet thunder over the harbour\n")
    assert result.exit_code == EXIT_NO_DATABASE, result.output
    assert result.output == (
        f"error: no studio-auth database: SQLite file {path} does not exist; create it "
        "with: studio-auth db upgrade (or studio-auth init, which also makes the first "
        "admin), or set DATABASE_URL to the database you meant\n"
    )
    assert not path.exists()


def test_run_from_another_directory_names_the_file_it_looked_for(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # the default URL
    done = subprocess.run(
        [str(EXE), "users", "list"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == EXIT_NO_DATABASE
    expected = tmp_path.resolve() / "studio_auth.db"
    assert done.stderr.startswith(
        f"error: no studio-auth database: SQLite file {expected} does not exist "
        "(DATABASE_URL's path is relative); create it with: studio-auth db upgrade"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A reachable database without studio-auth's tables: its URL, and the password
    that URL carries (which no message may show)."""
    if request.param == "sqlite":
        path = tmp_path / "empty.db"
        path.touch()
        yield f"sqlite:///{path}", ""
        return
    if not PG_URL:
        pytest.skip("needs TEST_DATABASE_URL (PostgreSQL)")
    schema = "studio_auth_empty"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = make_url(PG_URL)
    password = url.password or "never-shown-pw"  # the local server trusts, or has one
    url = url.set(password=password).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False), str(password)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def test_a_database_without_the_schema_is_the_same_case(empty_database, bind_url) -> None:
    url, password = empty_database
    bind_url(url)
    result = _run("users", "list")
    assert result.exit_code == EXIT_NO_DATABASE, result.output
    assert result.output.startswith("error: no studio-auth database in ")
    assert "create it with: studio-auth db upgrade" in result.output
    if password:
        assert password not in result.output
    # Nothing was created: the next look finds it just as empty.
    assert _run("audit").exit_code == EXIT_NO_DATABASE
    created = _run("db", "upgrade")
    assert created.exit_code == 0, created.output
    assert _run("users", "list").exit_code == 0


def test_an_older_schema_asks_for_the_migrations(tmp_path: Path, bind_url) -> None:
    path = tmp_path / "old.db"
    old = make_engine(f"sqlite:///{path}")
    upgrade(old, "0001")
    old.dispose()
    bind_url(f"sqlite:///{path}")
    result = _run("users", "list")
    assert result.exit_code == EXIT_NO_DATABASE
    assert result.output == (
        f"error: the database in SQLite file {path} has an older schema than this "
        "studio-auth: apply the migrations with: studio-auth db upgrade\n"
    )


def test_an_unreachable_server_is_named_without_password_or_class_name() -> None:
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql+psycopg://nobody:hunter2-pw@127.0.0.1:1/none?connect_timeout=2",
    }
    done = subprocess.run([str(EXE), "users", "list"], env=env, capture_output=True, text=True)
    assert done.returncode == EXIT_UNAVAILABLE
    assert done.stderr.startswith(
        "error: database unavailable (postgresql+psycopg://nobody@127.0.0.1:1/none): "
    )
    assert "hunter2-pw" not in done.stderr
    assert "Error" not in done.stderr  # OperationalError and the like
    assert done.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DATABASE_URL", "", "DATABASE_URL: not a database URL; expected e.g."),
        (
            "DATABASE_URL",
            "postgres://staff:hunter2-pw@db/studio",
            "DATABASE_URL: unknown database kind 'postgres'; expected sqlite or",
        ),
        ("STUDIO_AUTH_DB_POOL_SIZE", "many", "STUDIO_AUTH_DB_POOL_SIZE: Input should be"),
    ],
)
def test_a_bad_setting_is_named(variable: str, value: str, expected: str) -> None:
    env = {**os.environ, variable: value}
    done = subprocess.run([str(EXE), "users", "list"], env=env, capture_output=True, text=True)
    assert done.returncode == EXIT_BAD_INPUT
    assert done.stderr.startswith(f"error: invalid configuration: {expected}")
    assert "hunter2-pw" not in done.stderr
    assert "Traceback" not in done.stderr


def test_passwd_names_an_unknown_user_before_asking_for_a_password(engine) -> None:
    result = _run("users", "passwd", "nobody")
    assert result.exit_code == 3
    assert result.output == "error: no user named 'nobody'\n"


@pytest.mark.parametrize("command", sorted(CREATING | set(FINDING) | {()}), ids=" ".join)
def test_help_has_no_markup(command: tuple[str, ...]) -> None:
    result = _run(*command, "--help")
    assert result.exit_code == 0
    assert "`" not in result.output


def test_times_print_as_the_api_writes_them(engine, db, make_user, make_artist, clock) -> None:
    user = make_user("rin")
    unlocked = _run("users", "unlock", "rin")  # an audit event, at the clock's time
    assert unlocked.exit_code == 0

    [row] = json.loads(_run("users", "list", "--json").output)
    assert TIME.fullmatch(row["created_at"])
    assert datetime.fromisoformat(row["created_at"]) == user.created_at
    shown = _run("users", "show", "rin").output
    assert f"created_at:           {row['created_at']}\n" in shown

    make_artist("Mika")
    [artist] = json.loads(_run("artists", "list", "--json").output)
    assert TIME.fullmatch(artist["created_at"])
    assert _run("artists", "list").output.splitlines()[1].endswith(f"Mika  {artist['created_at']}")

    [event] = json.loads(_run("audit", "--json").output)
    assert event["at"] == "2026-01-05T09:00:00Z"
    assert _run("audit").output.splitlines()[1].startswith("2026-01-05T09:00:00Z  unlock")
