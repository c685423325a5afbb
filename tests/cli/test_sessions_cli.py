"""``studio-auth sessions ...`` on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from click.testing import CliRunner
from sqlalchemy.orm import Session

from data.models import User
from services.sessions import issue_session, resolve_session
from studio_auth.cli import main
from studio_auth.cli.common import EXIT_NOT_FOUND


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, ["sessions", *args])


def _two_sessions(db: Session, user: User) -> list[Any]:
    issued = [issue_session(db, user.id, ip="10.0.0.1", user_agent="Krita") for _ in range(2)]
    db.commit()
    return issued


def test_list_shows_sessions_but_never_tokens_or_digests(
    db: Session, make_user: Callable[..., User], clock: Any
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    issued = _two_sessions(db, alice)
    bobs = issue_session(db, bob.id)
    db.commit()

    result = _run("list", "ALICE", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["id"] for r in rows] == sorted((s.session_id for s in issued), reverse=True)
    assert {r["username"] for r in rows} == {"alice"}
    assert {r["state"] for r in rows} == {"active"}
    assert "token_digest" not in rows[0]

    everyone = _run("list")
    assert everyone.exit_code == 0, everyone.output
    assert "bob" in everyone.output and "alice" in everyone.output
    assert "Krita" in everyone.output
    for s in [*issued, bobs]:
        assert s.token not in everyone.output
        assert s.token not in result.output


def test_list_unknown_user_exits_not_found(engine: Any) -> None:
    result = _run("list", "nobody")
    assert result.exit_code == EXIT_NOT_FOUND
    assert "no user named" in result.output


def test_revoke_one_then_again(db: Session, make_user: Callable[..., User], clock: Any) -> None:
    alice = make_user("alice")
    first, second = _two_sessions(db, alice)
    result = _run("revoke", str(first.session_id))
    assert result.exit_code == 0, result.output
    assert resolve_session(db, first.token) is None
    assert resolve_session(db, second.token) is not None
    again = _run("revoke", str(first.session_id))
    assert again.exit_code == EXIT_NOT_FOUND
    listed = json.loads(_run("list", "alice", "--all", "--json").output)
    assert {r["id"]: r["state"] for r in listed} == {
        first.session_id: "revoked",
        second.session_id: "active",
    }
    assert listed[-1]["revoked_reason"] == "operator"


def test_revoke_all_and_prune(db: Session, make_user: Callable[..., User], clock: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    issued = _two_sessions(db, alice)
    bobs = issue_session(db, bob.id)
    db.commit()
    result = _run("revoke-all", "alice", "--reason", "laptop stolen")
    assert result.exit_code == 0, result.output
    assert "revoked 2 sessions of alice" in result.output
    assert [resolve_session(db, s.token) for s in issued] == [None, None]
    assert resolve_session(db, bobs.token) is not None
    assert _run("revoke-all", "nobody").exit_code == EXIT_NOT_FOUND

    kept = _run("prune", "--older-than-days", "1")
    assert kept.exit_code == 0, kept.output
    assert "deleted 0 dead sessions" in kept.output
    pruned = _run("prune")
    assert pruned.exit_code == 0, pruned.output
    assert "deleted 2 dead sessions" in pruned.output
    assert json.loads(_run("list", "--all", "--json").output)[0]["username"] == "bob"
    assert _run("prune", "--older-than-days", "-1").exit_code == 2
