"""The real ``studio-auth serve`` process on a free 127.0.0.1 port with a temp SQLite file:
first start prints a one-time admin password; sign in, /auth/me, sign out, stop."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

STARTUP_TIMEOUT = 30.0
NEW_PASSWORD = "a fresh and unusual passphrase 42"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _command() -> list[str]:
    found = shutil.which("studio-auth", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-c", "from cli import main; main()"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str], Path]]:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "STUDIO_AUTH_ENV": "test",
        "STUDIO_AUTH_BCRYPT_ROUNDS": "4",
    }
    out = tmp_path / "stdout.txt"
    with out.open("w") as stdout:
        process = subprocess.Popen(
            [*_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            stdout=stdout,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
            text=True,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"serve exited early:\n{out.read_text()}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"serve did not become ready:\n{out.read_text()}")
            time.sleep(0.1)
        yield base, process, out
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def test_serve_signs_in_answers_me_signs_out_and_stops(
    server: tuple[str, subprocess.Popen[str], Path],
) -> None:
    base, process, out = server
    printed = re.search(r"one-time password[^:]*: (\S+)", out.read_text())
    assert printed, out.read_text()
    first_password = printed.group(1)

    with httpx.Client(base_url=base, timeout=10) as client:
        login = client.post("/auth/login", json={"username": "admin", "password": first_password})
        assert login.status_code == 200, login.text
        assert login.headers["cache-control"] == "no-store"
        body = login.json()
        assert body["user"]["must_change_password"] is True
        headers = {"Authorization": f"Bearer {body['access_token']}"}

        me = client.get("/auth/me", headers=headers)
        assert me.status_code == 200
        assert me.json()["user"]["username"] == "admin"
        # The first sign-in can only change the password.
        assert client.get("/users", headers=headers).status_code == 403

        changed = client.post(
            "/auth/password",
            json={"current_password": first_password, "new_password": NEW_PASSWORD},
            headers=headers,
        )
        assert changed.status_code == 200, changed.text
        headers = {"Authorization": f"Bearer {changed.json()['access_token']}"}
        assert client.get("/users", headers=headers).status_code == 200

        assert client.post("/auth/logout", headers=headers).status_code == 204
        assert client.get("/auth/me", headers=headers).status_code == 401

    os.killpg(process.pid, signal.SIGTERM)
    # Uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert process.wait(timeout=15) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in out.read_text()
    # The password was printed once, and never into the server's log lines.
    assert out.read_text().count(first_password) == 1
    assert NEW_PASSWORD not in out.read_text()
