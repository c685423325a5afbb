"""Private files: owner-only from the moment they exist, never replacing one."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio_auth.files import create_private_file


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The loosest umask, so that only the code under test can make a file private."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_new_file_is_owner_only_whatever_the_umask(tmp_path: Path, open_umask) -> None:
    path = tmp_path / "secret.key"
    with create_private_file(path) as out:
        out.write(b"key material")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == b"key material"


def test_an_existing_file_is_neither_replaced_nor_changed(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_bytes(b"kept")
    path.chmod(0o640)
    with pytest.raises(FileExistsError):
        create_private_file(path)
    assert path.read_bytes() == b"kept"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
