"""Shared fixtures. Every database test runs on SQLite and, when ``TEST_DATABASE_URL`` is
set, on PostgreSQL too (an unreachable server is an error, never a skip)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

_TMP = Path(tempfile.mkdtemp(prefix="studio-auth-tests-"))
os.environ["STUDIO_AUTH_ENV"] = "test"
os.environ["STUDIO_AUTH_BCRYPT_ROUNDS"] = "4"
os.environ["DATABASE_URL"] = f"sqlite:///{_TMP / 'default.db'}"

import pytest  # noqa: E402
from sqlalchemy import Engine, make_url, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from data.db.base import Base  # noqa: E402
from data.db.session import SessionLocal, make_engine, make_sessionmaker  # noqa: E402
from data.migrations import upgrade  # noqa: E402
from data.models import Artist, Role, User  # noqa: E402
from services import passwords  # noqa: E402
from studio_auth.clock import use_clock  # noqa: E402
from studio_auth.settings import reset_settings  # noqa: E402

PG_URL = os.environ.get("TEST_DATABASE_URL", "")
if os.environ.get("STUDIO_AUTH_REQUIRE_POSTGRES") and not PG_URL:
    raise RuntimeError("STUDIO_AUTH_REQUIRE_POSTGRES is set but TEST_DATABASE_URL is not")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
DEFAULT_PASSWORD = "correct horse battery staple"


def _worker_pg_url() -> str:
    """One PostgreSQL database per xdist worker, created on demand."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker:
        return PG_URL
    base = make_url(PG_URL)
    name = f"{base.database}_{worker}"
    admin = make_engine(base.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            found = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not found:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def sqlite_template() -> Path:
    """A migrated SQLite file, copied for each test."""
    path = _TMP / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_engine() -> Iterator[Engine]:
    """The PostgreSQL test database, rebuilt from the migrations once per run."""
    engine = make_engine(_worker_pg_url())
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    yield engine
    engine.dispose()


def _truncate(engine: Engine) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty database of each backend; ``SessionLocal`` is bound to it."""
    if request.param == "sqlite":
        path = tmp_path / "test.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        eng = make_engine(f"sqlite:///{path}")
    else:
        eng = request.getfixturevalue("pg_engine")
        _truncate(eng)
    previous = SessionLocal.kw["bind"]
    SessionLocal.configure(bind=eng)
    try:
        yield eng
    finally:
        SessionLocal.configure(bind=previous)
        if request.param == "sqlite":
            eng.dispose()
        else:
            _truncate(eng)


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    with make_sessionmaker(engine)() as session:
        yield session


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 0, **kwargs: float) -> datetime:
        self.now += timedelta(seconds=seconds, **kwargs)
        return self.now


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    fake = FakeClock()
    with use_clock(fake):
        yield fake


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Change settings for one test: ``settings_env(bcrypt_rounds=5)``."""

    def apply(**values: Any) -> None:
        for name, value in values.items():
            env = "DATABASE_URL" if name == "database_url" else f"STUDIO_AUTH_{name.upper()}"
            monkeypatch.setenv(env, str(value))
        reset_settings()

    yield apply
    monkeypatch.undo()
    reset_settings()


@pytest.fixture
def make_artist(db: Session) -> Callable[..., Artist]:
    def make(name: str = "Rin") -> Artist:
        artist = Artist(name=name)
        db.add(artist)
        db.commit()
        return artist

    return make


@pytest.fixture
def make_user(db: Session, make_artist: Callable[..., Artist]) -> Callable[..., User]:
    """Create and commit a user directly (no policy checks): ``make_user("ana", role=...)``."""

    def make(
        username: str = "alice",
        password: str = DEFAULT_PASSWORD,
        role: Role | str = Role.ASSISTANT,
        *,
        artist_id: int | None = None,
        is_active: bool = True,
        password_hash: str | None = None,
    ) -> User:
        role = Role(role)
        if role is Role.ARTIST and artist_id is None:
            artist_id = make_artist(f"artist of {username}").id
        user = User(
            username=username,
            password_hash=(
                passwords.hash_password(password) if password_hash is None else password_hash
            ),
            role=role,
            artist_id=artist_id,
            is_active=is_active,
        )
        db.add(user)
        db.commit()
        return user

    return make


class CountingCheckpw:
    """Counts bcrypt verifications, as Django's auth tests count hasher calls."""

    def __init__(self, real: Callable[[bytes, bytes], bool]) -> None:
        self.real = real
        self.calls = 0

    def __call__(self, password: bytes, hashed: bytes) -> bool:
        self.calls += 1
        return self.real(password, hashed)


@pytest.fixture
def checkpw_counter(monkeypatch: pytest.MonkeyPatch) -> CountingCheckpw:
    import bcrypt

    counter = CountingCheckpw(bcrypt.checkpw)
    monkeypatch.setattr(bcrypt, "checkpw", counter)
    passwords.dummy_hash()  # built outside the count
    counter.calls = 0
    return counter


def run_python(code: str, database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter, as an application would, on ``database_url``
    at bcrypt cost 4; fails the test unless it exits 0."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "STUDIO_AUTH_ENV": "test",
        "STUDIO_AUTH_BCRYPT_ROUNDS": "4",
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done
