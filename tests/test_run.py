"""``run.py``, the README's quick start: the process it starts is the one a user stops."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from tests.web.processes import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 60.0


def _load_run_py() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_py", ROOT / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _venv_env(tmp_path: Path) -> dict[str, str]:
    """This interpreter's virtualenv for run.py, so that it starts without installing."""
    venv = Path(sys.prefix)
    run_py = _load_run_py()
    if run_py.needs_install(venv, run_py.EXTRAS["serve"]):
        pytest.skip("the test interpreter is not an up-to-date run.py virtualenv")
    return {
        **os.environ,
        "STUDIO_AUTH_VENV": str(venv),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}",
        "STUDIO_AUTH_ENV": "test",
        "STUDIO_AUTH_BCRYPT_ROUNDS": "4",
    }


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signalling_run_py_serve_stops_the_server(tmp_path: Path, sig: signal.Signals) -> None:
    env = _venv_env(tmp_path)
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "run.py"), "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Its own process group: whatever run.py leaves behind can be found, and killed.
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            assert proc.poll() is None, log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)

        os.kill(proc.pid, sig)  # the process the user started, as `kill PID` does
        assert proc.wait(timeout=30) in (0, -sig), log.read_text()
        # Anything run.py started would be left in its process group, reparented.
        deadline = time.monotonic() + 10
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _group_alive(proc.pid), "a process outlived the one run.py started"
        assert not _port_open(port)
        assert "Application shutdown complete" in log.read_text()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
