"""A SQLite database holds password hashes: its files are owner-only when SQLite creates
them through ``make_engine``."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from data.db.session import make_engine
from data.migrations import upgrade

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask():
    previous = os.umask(0o022)  # the common default: new files readable by everyone
    try:
        yield
    finally:
        os.umask(previous)


def test_a_new_database_and_its_wal_and_shm_files_are_owner_only(
    tmp_path: Path, usual_umask
) -> None:
    path = tmp_path / "new.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
        with engine.connect() as conn:  # WAL mode: -wal and -shm exist while it is open
            conn.execute(text("SELECT count(*) FROM users"))
            files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
            assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        engine.dispose()


def test_an_existing_database_keeps_the_mode_its_owner_gave_it(tmp_path: Path, usual_umask) -> None:
    path = tmp_path / "shared.db"
    path.touch()
    path.chmod(0o640)
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    assert _mode(path) == 0o640


def test_a_missing_directory_is_sqlites_error_to_report(tmp_path: Path) -> None:
    from sqlalchemy.exc import OperationalError

    engine = make_engine(f"sqlite:///{tmp_path / 'absent' / 'x.db'}")
    with pytest.raises(OperationalError, match="unable to open database file"):
        engine.connect()
    engine.dispose()
