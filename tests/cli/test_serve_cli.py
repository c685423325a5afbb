"""``studio-auth serve`` hands uvicorn the app factory meant for a process of its own."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

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
