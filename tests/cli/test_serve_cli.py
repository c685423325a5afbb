"""``studio-auth serve``: the app factory it hands uvicorn, and the address it refuses."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from data.models import User
from studio_auth.cli import main


def test_serve_runs_the_served_app_factory(engine, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    result = CliRunner().invoke(main, ["serve", "--port", "0"])
    assert result.exit_code == 0, result.output
    [(args, kwargs)] = calls
    assert args == ("studio_auth.web.app:create_served_app",)
    assert kwargs["factory"] is True
    assert kwargs["host"] == "127.0.0.1"


@pytest.fixture
def no_uvicorn(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    import uvicorn

    calls: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(args))
    return calls


def test_port_in_use_is_one_error_with_what_to_do(engine, db, no_uvicorn) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(main, ["serve", "--port", str(port)])
    assert result.exit_code == 1
    assert result.output == (
        f"error: port {port} on 127.0.0.1 is already in use (another studio-auth serve?): "
        "stop what listens there, or choose another port with --port\n"
    )
    assert no_uvicorn == []
    # Checked before anything else: no first admin was made (and no password printed).
    assert db.scalar(select(func.count()).select_from(User)) == 0


def test_an_address_of_another_machine_is_refused(engine, no_uvicorn) -> None:
    # 192.0.2.0/24 is reserved for documentation (RFC 5737): never this machine's.
    result = CliRunner().invoke(main, ["serve", "--host", "192.0.2.1", "--port", "0"])
    assert result.exit_code == 1
    assert "192.0.2.1 is not an address of this machine: use --host 127.0.0.1" in result.output
    assert no_uvicorn == []
