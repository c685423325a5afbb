"""Files that hold secrets: created readable and writable by their owner only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO


def create_private_file(path: str | Path) -> BinaryIO:
    """Create ``path`` with mode 0600 and open it for writing in binary.

    Raises FileExistsError if ``path`` exists: an existing file keeps its contents and the
    permissions its owner gave it. The mode is set by the call that creates the file, so
    there is no moment when another user could open it (a chmod afterwards would leave one).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    return os.fdopen(os.open(path, flags, 0o600), "wb")
