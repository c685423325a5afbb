#!/usr/bin/env python3
"""Quick start with nothing but python3 (3.11+): make a virtualenv, install, run.

    python3 run.py serve   # install, then start the service on the SQLite default
    python3 run.py test    # install, then run the test suite

Anything after the command is passed on (``python3 run.py test -k sessions``). Uses only
the standard library, so it works before anything is installed. On Debian without the
python3-venv package (no ensurepip), pip is fetched from PyPI into the virtualenv.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("STUDIO_AUTH_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
MARKER = VENV / ".studio-auth-installed"


def _log(message: str) -> None:
    print(f"[run.py] {message}", file=sys.stderr, flush=True)


def _run(*args: str | Path) -> None:
    subprocess.run([str(a) for a in args], check=True)


def _bootstrap_pip() -> None:
    """Install pip into a venv made without it, from the wheel PyPI lists for pip."""
    index = "https://pypi.org/pypi/pip/json"
    with urllib.request.urlopen(index, timeout=60) as response:
        info = json.load(response)
    wheel = next(u for u in info["urls"] if u["packagetype"] == "bdist_wheel")
    url = urllib.parse.urljoin(index, wheel["url"])  # mirrors may answer relative links
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / wheel["filename"]
        with urllib.request.urlopen(url, timeout=120) as response:
            data = response.read()
        if hashlib.sha256(data).hexdigest() != wheel["digests"]["sha256"]:
            raise SystemExit("pip wheel failed its sha256 check")
        path.write_bytes(data)
        # A wheel is importable as a zip: run pip from it to install itself.
        _run(PYTHON, path / "pip", "install", "--quiet", "--no-index", path)


def ensure_venv() -> None:
    if not PYTHON.exists():
        _log(f"creating virtualenv {VENV}")
        try:
            venv.create(VENV, with_pip=True)
        except (subprocess.CalledProcessError, OSError):
            _log("ensurepip is not available; fetching pip from PyPI")
            venv.create(VENV, with_pip=False, clear=True)
            _bootstrap_pip()
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if MARKER.exists() and MARKER.read_text() == wanted:
        return
    _log("installing studio-auth and its test tools (first run only)")
    _run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    _run(PYTHON, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[test]")
    MARKER.write_text(wanted)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"serve", "test", "cli"}:
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_venv()
    if command == "test":
        args = [str(PYTHON), "-m", "pytest", *rest]
    elif command == "serve":
        args = [str(BIN / "studio-auth"), "serve", *rest]
    else:
        args = [str(BIN / "studio-auth"), *rest]
    os.chdir(ROOT)
    return subprocess.run(args, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
