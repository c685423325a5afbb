"""The real ``studio-auth serve`` process on a free 127.0.0.1 port with a temp SQLite file:
first start prints a one-time admin password; sign in, /auth/me, sign out, stop."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.web.processes import serve

pytestmark = pytest.mark.slow

STARTUP_TIMEOUT = 30.0
NEW_PASSWORD = "a fresh and unusual passphrase 42"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "STUDIO_AUTH_ENV": "test",
        "STUDIO_AUTH_BCRYPT_ROUNDS": "4",
    }
    out = tmp_path / "stdout.txt"
    with serve(env, out, cwd=tmp_path, timeout=STARTUP_TIMEOUT) as (base, process):
        yield base, process, out


def test_serve_signs_in_answers_me_signs_out_and_stops(
    server: tuple[str, subprocess.Popen[bytes], Path],
) -> None:
    base, process, out = server
    printed = re.search(r"one-time password[^:]*: (\S+)", out.read_text())
    assert printed, out.read_text()
    first_password = printed.group(1)

    with httpx.Client(base_url=base, timeout=10) as client:
        wrong = client.post("/auth/login", json={"username": "admin", "password": "not it"})
        assert wrong.status_code == 401
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
    # Audit events reach the service's log: failures as WARNING, the rest as INFO.
    audit = [line for line in out.read_text().splitlines() if " audit {" in line]
    assert any(line.startswith("WARNING") and '"outcome": "failure"' in line for line in audit)
    assert any(line.startswith("INFO") and '"outcome": "success"' in line for line in audit)
    # ... from the start: the first admin's creation, before the service runs, too.
    assert any('"event": "user_created"' in line for line in audit)
    # The password was printed once, and never into the server's log lines.
    assert out.read_text().count(first_password) == 1
    assert NEW_PASSWORD not in out.read_text()
