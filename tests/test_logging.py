"""studio-auth as a library leaves logging to the application: without a handler
configured, its audit lines are dropped, not printed by Python's last-resort handler."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from studio_auth.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


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
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "STUDIO_AUTH_ENV": "test",
        "STUDIO_AUTH_BCRYPT_ROUNDS": "4",
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n"
    assert result.stderr == ""


@pytest.mark.parametrize(("given", "level"), [("warning", "WARNING"), ("DEBUG", "DEBUG")])
def test_log_level_setting(given: str, level: str) -> None:
    assert Settings(log_level=given).log_level == level  # type: ignore[arg-type]


def test_log_level_setting_refuses_unknown_levels() -> None:
    with pytest.raises(ValueError, match="log_level"):
        Settings(log_level="LOUD")  # type: ignore[arg-type]


def test_serve_logs_studio_auth_lines_at_the_configured_level() -> None:
    from cli.serve import log_config

    config = log_config("WARNING")
    assert config["loggers"]["studio_auth"] == {
        "handlers": ["default"],
        "level": "WARNING",
        "propagate": False,
    }
    assert "uvicorn" in config["loggers"]
