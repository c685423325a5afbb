"""studio-auth as a library leaves logging to the application: without a handler
configured, its audit lines are dropped, not printed by Python's last-resort handler."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from studio_auth.settings import Settings
from tests.conftest import run_python


def test_an_unconfigured_application_gets_no_log_output(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        from data.db.session import SessionLocal
        from data.migrations import upgrade
        from services.auth import authenticate

        upgrade(SessionLocal.kw["bind"])
        with SessionLocal() as db:
            assert authenticate(db, "nobody", "a wrong password") is None
        print("done")
        """
    )
    result = run_python(script, f"sqlite:///{tmp_path / 'app.db'}", tmp_path)
    assert result.stdout == "done\n"
    assert result.stderr == ""


@pytest.mark.parametrize(("given", "level"), [("warning", "WARNING"), ("DEBUG", "DEBUG")])
def test_log_level_setting(given: str, level: str) -> None:
    assert Settings(log_level=given).log_level == level  # type: ignore[arg-type]


def test_log_level_setting_refuses_unknown_levels() -> None:
    with pytest.raises(ValueError, match="log_level"):
        Settings(log_level="LOUD")  # type: ignore[arg-type]


def test_serve_logs_studio_auth_lines_at_the_configured_level() -> None:
    from studio_auth.cli.serve import log_config

    config = log_config("WARNING")
    assert config["loggers"]["studio_auth"] == {
        "handlers": ["default"],
        "level": "WARNING",
        "propagate": False,
    }
    assert "uvicorn" in config["loggers"]
