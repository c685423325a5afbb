#!/usr/bin/env python3
"""The peers studio-auth is measured against, each in a virtualenv of its own.

    python bench/peers.py setup        # create/update both virtualenvs (PyPI)
    python bench/peers.py authenticate [--rounds 10]   # Django authenticate() vs checkpw

- FastAPI-Users 15 (SQLAlchemy + aiosqlite, pwdlib bcrypt cost 12, bearer transport with
  the database strategy): ``bench/peers/fastapi_users_app.py``, served by uvicorn.
- Django's ``authenticate()`` with BCryptPasswordHasher: ``bench/peers/django_app.py``,
  served by gunicorn (one process, gthread workers) for the HTTP figures. Django 6 needs
  Python 3.12 or newer; when no such interpreter is found, Django 5.2 LTS (the newest
  release for Python 3.11) is installed instead and the output says so.

Servers listen on free 127.0.0.1 ports only and are always stopped (``with`` blocks).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PEERS = BENCH / "peers"
FASTAPI_USERS_VENV = BENCH / ".venv-fastapi-users"
DJANGO_VENV = BENCH / ".venv-django"
FASTAPI_USERS_REQUIREMENTS = [
    "fastapi-users[sqlalchemy]>=15,<16",
    "aiosqlite>=0.20,<1",
    "uvicorn>=0.29,<1",
    "bcrypt>=4.1,<6",
]
DJANGO_6_REQUIREMENTS = ["django>=6,<7", "bcrypt>=4.1,<6", "gunicorn>=22,<24"]
DJANGO_52_REQUIREMENTS = ["django>=5.2,<5.3", "bcrypt>=4.1,<6", "gunicorn>=22,<24"]
START_TIMEOUT = 60.0


def _python_at_least(minor: int) -> str | None:
    """A working interpreter of Python 3.<minor> or newer: this one, one on PATH, or one
    installed by pyenv (pyenv's shims exist on PATH even when they cannot run, so each
    candidate is tried)."""
    if sys.version_info >= (3, minor):
        return sys.executable
    candidates = [shutil.which(f"python3.{m}") for m in range(minor, minor + 4)]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if pyenv.is_dir():
        candidates += [str(v / "bin" / "python3") for v in sorted(pyenv.iterdir(), reverse=True)]
    probe = f"import sys; sys.exit(sys.version_info < (3, {minor}))"
    for candidate in candidates:
        if not candidate or not Path(candidate).exists():
            continue
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            check = subprocess.run([candidate, "-c", probe], capture_output=True, timeout=30)
            if check.returncode == 0:
                return candidate
    return None


def ensure_venv(venv: Path, requirements: list[str], python: str | None = None) -> Path:
    """The venv's python, creating the venv and installing ``requirements`` when the
    recorded requirement list differs (so a second run costs nothing)."""
    marker = venv / "bench-requirements.json"
    wanted = {"python": python or "python3", "requirements": requirements}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return venv / "bin" / "python"
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([python or "python3", "-m", "venv", str(venv)], check=True)
    pip = [
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
    ]
    subprocess.run([*pip, *requirements], check=True, timeout=900)
    marker.write_text(json.dumps(wanted))
    return venv / "bin" / "python"


def fastapi_users_python() -> Path:
    return ensure_venv(FASTAPI_USERS_VENV, FASTAPI_USERS_REQUIREMENTS)


def django_python() -> tuple[Path, str]:
    """The Django venv's python and a label naming the Django line installed."""
    newer = _python_at_least(12)
    if newer:
        return ensure_venv(DJANGO_VENV, DJANGO_6_REQUIREMENTS, newer), "Django 6"
    return ensure_venv(DJANGO_VENV, DJANGO_52_REQUIREMENTS), "Django 5.2 (no Python >= 3.12)"


def installed_version(python: Path, package: str) -> str:
    out = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({package!r}))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Server:
    """A running HTTP server on 127.0.0.1."""

    name: str
    url: str
    pid: int


def wait_until_up(url: str, proc: subprocess.Popen[bytes], timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (127.0.0.1)
                if response.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"no answer from {url} within {timeout:.0f} s")


@contextlib.contextmanager
def running(
    name: str, argv: list[str], health_url: str, *, cwd: Path, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``argv`` in its own process group; always stop the whole group."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_until_up(health_url, proc)
            yield proc
        except BaseException:
            sys.stderr.write(
                f"--- {name} log ({log}) ---\n{log.read_text(errors='replace')[-3000:]}"
            )
            raise
        finally:
            stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env.update(extra)
    return env


@contextlib.contextmanager
def fastapi_users_server(users: list[tuple[str, str]], workdir: Path) -> Iterator[Server]:
    """FastAPI-Users under uvicorn (one process, its default event loop), seeded with
    ``users`` (email ``<name>@example.com``)."""
    python = fastapi_users_python()
    env = _clean_env(PEER_DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'fastapi_users.db'}")
    seed = [f"{u}:{p}" for u, p in users]
    subprocess.run(
        [str(python), "fastapi_users_app.py", "seed", *seed],
        cwd=PEERS,
        env=env,
        check=True,
        timeout=300,
    )
    port = free_port()
    argv = [
        str(python),
        "-m",
        "uvicorn",
        "fastapi_users_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    url = f"http://127.0.0.1:{port}"
    with running(
        "fastapi-users", argv, f"{url}/ping", cwd=PEERS, env=env, log=workdir / "fastapi_users.log"
    ) as proc:
        yield Server("FastAPI-Users", url, proc.pid)


@contextlib.contextmanager
def django_server(
    users: list[tuple[str, str]], workdir: Path, threads: int = 4
) -> Iterator[Server]:
    """Django under gunicorn: one process with ``threads`` gthread workers (the usual
    deployment of a sync Django app), seeded with ``users``."""
    python, label = django_python()
    env = _clean_env(PEER_DATABASE_PATH=str(workdir / "django.db"))
    seed = [f"{u}:{p}" for u, p in users]
    subprocess.run(
        [str(python), "django_app.py", "seed", *seed], cwd=PEERS, env=env, check=True, timeout=300
    )
    port = free_port()
    argv = [
        str(python),
        "-m",
        "gunicorn",
        "django_app:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--threads",
        str(threads),
        "--worker-class",
        "gthread",
        "--log-level",
        "warning",
    ]
    url = f"http://127.0.0.1:{port}"
    with running(
        "django", argv, f"{url}/ping", cwd=PEERS, env=env, log=workdir / "django.log"
    ) as proc:
        yield Server(label, url, proc.pid)


def django_authenticate(rounds: int) -> tuple[str, dict[str, dict[str, list[float]]]]:
    """Django authenticate() per path and raw checkpw, interleaved, in seconds: whole
    calls ("whole") and the time each spent outside bcrypt ("added")."""
    python, label = django_python()
    with tempfile.TemporaryDirectory() as tmp:
        env = _clean_env(PEER_DATABASE_PATH=str(Path(tmp) / "django.db"))
        password = "a long and quite ordinary passphrase"
        subprocess.run(
            [str(python), "django_app.py", "seed", f"alice:{password}", f"gone:{password}"],
            cwd=PEERS,
            env=env,
            check=True,
            timeout=300,
        )
        out = subprocess.run(
            [str(python), "django_app.py", "authenticate", str(rounds)],
            cwd=PEERS,
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=900,
        )
    return label, json.loads(out.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("command", choices=["setup", "authenticate"])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    if args.command == "setup":
        fu = fastapi_users_python()
        dj, label = django_python()
        print(f"fastapi-users {installed_version(fu, 'fastapi-users')} in {FASTAPI_USERS_VENV}")
        print(f"django {installed_version(dj, 'django')} in {DJANGO_VENV} ({label})")
        return 0
    sys.path.insert(0, str(BENCH))
    import statistics

    from _common import summary
    from bcrypt_clock import in_place_ratio

    label, samples = django_authenticate(args.rounds)
    whole, added = samples["whole"], samples["added"]
    raw_samples = whole.pop("raw checkpw")
    raw = statistics.median(raw_samples)
    print(f"{label}: authenticate() over raw bcrypt.checkpw, cost 12, {args.rounds} rounds, ms")
    print(f"  {'raw checkpw':15s} {summary(raw_samples, 1000)}")
    worst = 0.0
    for name, values in whole.items():
        in_place = in_place_ratio(added[name], raw_samples)
        worst = max(worst, in_place)
        print(
            f"  {name:15s} {summary(values, 1000)}   added "
            f"{statistics.median(added[name]) * 1000:6.2f}   of medians "
            f"{statistics.median(values) / raw:6.3f}   in place {in_place:6.3f}"
        )
    print(f"\nworst ratio over the bcrypt paths, in place: {worst:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
