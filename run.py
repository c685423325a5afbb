#!/usr/bin/env python3
"""Quick start with nothing but python3 (3.11+): make a virtualenv, install, run.

    python3 run.py test             # install with the test tools, then run the test suite
    python3 run.py serve            # install, then run the service in the foreground
                                    # on the SQLite default, until Ctrl-C
    python3 run.py cli users --help # install, then run the studio-auth command
    python3 run.py install [--test] # only install (--test: with the test tools)

Anything after the command is passed on (python3 run.py test -k sessions). serve and
cli install what running needs; test and install --test add the test tools (the [test]
extra: pytest, ruff, mypy, schemathesis). On POSIX the command replaces this process, so
stopping it (Ctrl-C, kill PID, a process manager) stops the service itself. Uses only
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
import venv as venv_module
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("STUDIO_AUTH_VENV", ROOT / ".venv"))
MARKER_NAME = ".studio-auth-installed"
# The optional dependency groups (pyproject.toml) each command needs.
EXTRAS: dict[str, frozenset[str]] = {
    "serve": frozenset(),
    "cli": frozenset(),
    "test": frozenset({"test"}),
}


def _bin(venv: Path) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin")


def _log(message: str) -> None:
    print(f"[run.py] {message}", file=sys.stderr, flush=True)


def _run(*args: str | Path) -> None:
    subprocess.run([str(a) for a in args], check=True)


def _bootstrap_pip(python: Path) -> None:
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
        _run(python, path / "pip", "install", "--quiet", "--no-index", path)


def _installed(venv: Path) -> tuple[str, frozenset[str]] | None:
    """What the last install recorded: the pyproject.toml digest and the extras."""
    try:
        record = json.loads((venv / MARKER_NAME).read_text())
        return str(record["pyproject"]), frozenset(record["extras"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _pyproject_digest() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def needs_install(venv: Path, extras: frozenset[str]) -> bool:
    """True unless ``venv`` holds this pyproject.toml's install with ``extras``."""
    installed = _installed(venv)
    return installed is None or installed[0] != _pyproject_digest() or not extras <= installed[1]


def ensure_venv(venv: Path, extras: frozenset[str]) -> None:
    python = _bin(venv) / "python"
    if not python.exists():
        _log(f"creating virtualenv {venv}")
        try:
            venv_module.create(venv, with_pip=True)
        except (subprocess.CalledProcessError, OSError):
            _log("ensurepip is not available; fetching pip from PyPI")
            venv_module.create(venv, with_pip=False, clear=True)
            _bootstrap_pip(python)
    if not needs_install(venv, extras):
        return
    # Keep what an earlier install added: `serve` after `test` must not look stale.
    previous = _installed(venv)
    wanted = extras | (previous[1] if previous else frozenset())
    what = "studio-auth and its test tools" if "test" in wanted else "studio-auth"
    _log(f"installing {what} into {venv}")
    _run(python, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    suffix = f"[{','.join(sorted(wanted))}]" if wanted else ""
    _run(python, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}{suffix}")
    record = {"pyproject": _pyproject_digest(), "extras": sorted(wanted)}
    (venv / MARKER_NAME).write_text(json.dumps(record))


def _replace_process(args: list[str]) -> int:
    """Run ``args`` as this process (POSIX exec), so that a signal sent to the process
    the user started reaches the service itself. Elsewhere, run it as a child and wait:
    the console delivers Ctrl-C to both, and the child decides when it has stopped."""
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        os.execv(args[0], args)
    child = subprocess.Popen(args)
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            continue


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {*EXTRAS, "install"}:
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "install":
        if rest not in ([], ["--test"]):
            print(__doc__, file=sys.stderr)
            return 2
        ensure_venv(VENV, frozenset({"test"}) if rest else frozenset())
        return 0
    ensure_venv(VENV, EXTRAS[command])
    bin_dir = _bin(VENV)
    if command == "test":
        args = [str(bin_dir / "python"), "-m", "pytest", *rest]
    elif command == "serve":
        args = [str(bin_dir / "studio-auth"), "serve", *rest]
    else:
        args = [str(bin_dir / "studio-auth"), *rest]
    os.chdir(ROOT)
    return _replace_process(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
