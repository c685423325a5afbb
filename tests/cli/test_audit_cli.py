"""``studio-auth audit`` and ``audit prune`` on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session

from services.audit import add_event, list_events
from services.auth import authenticate
from studio_auth.cli import main
from studio_auth.cli.common import EXIT_BAD_INPUT
from tests.conftest import DEFAULT_PASSWORD as PASSWORD


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, ["audit", *args])


def _seed(db: Session, clock: Any, make_user: Any) -> None:
    make_user("alice")
    clock.advance(days=-10)
    add_event(db, "user_created", user_id=1, username="alice", detail={"role": "assistant"})
    db.commit()
    clock.advance(days=10)
    assert authenticate(db, "alice", "wrong password") is None
    assert authenticate(db, "eve\x1b[2J", "guess") is None
    assert authenticate(db, "alice", PASSWORD, ip="10.0.0.5") is not None
    db.commit()


def test_lists_newest_first_as_json(db, clock, make_user) -> None:
    _seed(db, clock, make_user)
    result = _run("--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["event"], r["outcome"]) for r in rows] == [
        ("login", "success"),
        ("login", "failure"),
        ("login", "failure"),
        ("user_created", "success"),
    ]
    assert rows[0]["ip"] == "10.0.0.5"
    assert rows[1]["username"] == "eve\\x1b[2J"  # not a valid name: escaped, not folded
    assert PASSWORD not in result.output


def test_filters_by_user_type_since_and_limit(db, clock, make_user) -> None:
    _seed(db, clock, make_user)
    by_user = json.loads(_run("--user", "ALICE", "--json").output)
    assert {r["username"] for r in by_user} == {"alice"}
    assert len(by_user) == 3
    logins = json.loads(_run("--type", "login", "--since", "1d", "--json").output)
    assert len(logins) == 3
    since_iso = (clock.now - timedelta(days=11)).date().isoformat()
    assert len(json.loads(_run("--since", since_iso, "--json").output)) == 4
    assert len(json.loads(_run("--limit", "2", "--json").output)) == 2


def test_plain_output_is_a_table_without_control_characters(db, clock, make_user) -> None:
    _seed(db, clock, make_user)
    result = _run()
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["AT", "EVENT", "OUTCOME", "USER_ID", "USERNAME", "IP", "DETAIL"]
    assert len(lines) == 5
    assert "\x1b" not in result.output


@pytest.mark.parametrize("args", [("--since", "yesterday"), ("--limit", "0"), ("--limit", "10001")])
def test_bad_options_are_refused(db, args) -> None:
    result = _run(*args)
    assert result.exit_code == EXIT_BAD_INPUT
    assert "Traceback" not in result.output


def test_prune_deletes_old_events_and_says_how_many(db, clock, make_user) -> None:
    _seed(db, clock, make_user)
    result = _run("prune", "--older-than", "7")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "deleted 1 audit event older than 7 days"
    db.rollback()
    events = [e.event for e in list_events(db)]
    assert events[0] == "audit_pruned"
    assert "user_created" not in events


@pytest.mark.parametrize("days", ["0", "-3", "soon"])
def test_prune_needs_a_positive_number_of_days(db, days) -> None:
    result = _run("prune", "--older-than", days)
    assert result.exit_code == EXIT_BAD_INPUT
    assert list_events(db) == []
