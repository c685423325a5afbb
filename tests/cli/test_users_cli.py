"""``studio-auth users ...`` and ``studio-auth artists ...`` on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from data.models import AuditEvent, Role, User
from services.auth import authenticate
from services.sessions import issue_session, resolve_session
from services.throttle import current_counter
from studio_auth.cli import main
from studio_auth.cli.common import EXIT_BAD_INPUT, EXIT_CONFLICT, EXIT_NOT_FOUND
from tests.conftest import DEFAULT_PASSWORD

NEW_PASSWORD = "velvet thunder over the harbour"


def _run(*args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(main, list(args), input=stdin)


def _json(*args: str, stdin: str | None = None) -> Any:
    result = _run(*args, "--json", stdin=stdin)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_add_list_show(engine):
    created = _json("users", "add", "Desk", "--role", "assistant", "--password-stdin",
                    stdin=NEW_PASSWORD + "\n")  # fmt: skip
    assert created["username"] == "Desk"
    assert created["must_change_password"] is False
    assert [u["username"] for u in _json("users", "list")] == ["Desk"]
    shown = _json("users", "show", "desk")
    assert shown["role"] == "assistant"
    assert shown["permissions"]["clients.edit"] == "supervised"
    assert "staff.manage_users" not in shown["permissions"]
    assert "password_hash" not in shown
    text = _run("users", "show", "desk")
    assert text.exit_code == 0
    assert "clients.edit" in text.output
    assert NEW_PASSWORD not in text.output


def test_add_must_change_is_the_operators_explicit_choice(engine):
    created = _json("users", "add", "desk", "--role", "assistant", "--must-change",
                    "--password-stdin", stdin=NEW_PASSWORD + "\n")  # fmt: skip
    assert created["must_change_password"] is True
    assert "the operator may be setting their own password" in " ".join(
        _run("users", "add", "--help").output.split()
    )


def test_add_refuses_duplicates_and_weak_passwords(engine, make_user):
    make_user("alice")
    dup = _run("users", "add", "ALICE", "--role", "admin", "--password-stdin",
               stdin=NEW_PASSWORD + "\n")  # fmt: skip
    assert dup.exit_code == EXIT_CONFLICT
    assert "already exists" in dup.output
    weak = _run("users", "add", "bob", "--role", "admin", "--password-stdin",
                stdin="password1234\n")  # fmt: skip
    assert weak.exit_code == EXIT_BAD_INPUT
    assert "too common" in weak.output
    assert "password1234" not in weak.output


def test_artists_and_linking(db, engine, make_user):
    artist = _json("artists", "add", "Rin Okabe")
    assert artist["name"] == "Rin Okabe"
    other = _json("artists", "add", "Mika")
    assert [a["name"] for a in _json("artists", "list")] == ["Rin Okabe", "Mika"]
    assert _run("artists", "add", "  ").exit_code == EXIT_BAD_INPUT

    user = make_user("ink")
    missing = _run("users", "set-role", "ink", "artist")
    assert missing.exit_code == EXIT_BAD_INPUT
    changed = _json("users", "set-role", "ink", "artist", "--artist-id", str(artist["id"]))
    assert (changed["role"], changed["artist_id"]) == ("artist", artist["id"])
    relinked = _json("users", "link-artist", "ink", str(other["id"]))
    assert relinked["artist_id"] == other["id"]
    assert _run("users", "link-artist", "ink", "9999").exit_code == EXIT_NOT_FOUND
    db.expire_all()
    assert db.get(User, user.id).artist_id == other["id"]


def test_deactivate_activate_and_last_admin(db, engine, make_user):
    make_user("boss", role=Role.ADMIN)
    desk = make_user("desk")
    token = issue_session(db, desk.id).token
    db.commit()
    assert _json("users", "deactivate", "desk")["is_active"] is False
    assert resolve_session(db, token) is None
    db.expire_all()  # the test's session holds the user from before the command
    assert authenticate(db, "desk", DEFAULT_PASSWORD) is None
    assert _json("users", "activate", "desk")["is_active"] is True
    db.expire_all()
    assert authenticate(db, "desk", DEFAULT_PASSWORD)
    db.commit()
    last = _run("users", "deactivate", "boss")
    assert last.exit_code == EXIT_BAD_INPUT
    assert "last active admin" in last.output
    demote = _run("users", "set-role", "boss", "assistant")
    assert demote.exit_code == EXIT_BAD_INPUT
    assert _run("users", "deactivate", "nobody").exit_code == EXIT_NOT_FOUND


@pytest.mark.parametrize("flag", [[], ["--no-must-change"]])
def test_passwd(db, engine, make_user, flag):
    desk = make_user("desk")
    token = issue_session(db, desk.id).token
    db.commit()
    result = _run("users", "passwd", "desk", "--password-stdin", *flag, stdin=NEW_PASSWORD)
    assert result.exit_code == 0, result.output
    assert NEW_PASSWORD not in result.output
    assert resolve_session(db, token) is None
    db.expire_all()
    info = authenticate(db, "desk", NEW_PASSWORD)
    assert info is not None
    assert info["must_change_password"] is (not flag)
    weak = _run("users", "passwd", "desk", "--password-stdin", stdin="desk-desk-desk")
    assert weak.exit_code == EXIT_BAD_INPUT
    assert "username" in weak.output


def test_passwd_prompts_twice(db, engine, make_user):
    make_user("desk")
    result = _run("users", "passwd", "desk", stdin=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    db.expire_all()
    assert authenticate(db, "desk", NEW_PASSWORD)


def test_unlock(db, engine, make_user):
    make_user("desk")
    for _ in range(3):
        assert authenticate(db, "desk", "wrong password, many times") is None
    db.rollback()
    assert current_counter(db, "desk") is not None
    result = _run("users", "unlock", "DESK")
    assert result.exit_code == 0, result.output
    assert "unlocked" in result.output
    db.expire_all()
    assert current_counter(db, "desk") is None
    again = _run("users", "unlock", "desk")
    assert "not locked" in again.output
    assert db.scalars(select(AuditEvent).where(AuditEvent.event == "unlock")).all()


def test_cli_changes_are_audited_without_an_actor(db, engine, make_user):
    make_user("boss", role=Role.ADMIN)
    make_user("desk")
    assert _run("users", "deactivate", "desk").exit_code == 0
    event = db.scalars(select(AuditEvent).where(AuditEvent.event == "user_deactivated")).one()
    assert event.actor_id is None
    assert event.username == "desk"
