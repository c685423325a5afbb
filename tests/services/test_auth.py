"""get_user_by_username and authenticate(), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import bcrypt
import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from data.db.session import make_sessionmaker
from data.models import AuditEvent, User
from services import passwords
from services.auth import authenticate, check_credentials, check_throttle, get_user_by_username
from services.errors import InvalidCredentials

PASSWORD = "correct horse battery staple"


@pytest.mark.parametrize("name", ["admin", "ADMIN", "  Admin ", "ａｄｍｉｎ", "ＡＤＭＩＮ"])
def test_lookup_uses_the_normalized_key(db, make_user, name) -> None:
    make_user("admin", role="admin")
    user = get_user_by_username(db, name)
    assert user is not None and user.username == "admin"


@pytest.mark.parametrize(
    "name", [None, 42, b"admin", "", "   ", "a" * 151, "x" * 1_000_000, "ad\x00min", "\ud800"]
)
def test_lookup_of_impossible_names_is_none(db, make_user, name, checkpw_counter) -> None:
    make_user("admin", role="admin")
    assert get_user_by_username(db, name) is None
    assert checkpw_counter.calls == 0


def test_lookup_returns_inactive_users_too(db, make_user) -> None:
    make_user("gone", is_active=False)
    user = get_user_by_username(db, "gone")
    assert user is not None and user.is_active is False


def test_success_returns_a_plain_dict(db, make_user) -> None:
    artist_user = make_user("rin", role="artist")
    info = authenticate(db, "Rin", PASSWORD)
    assert info == {
        "id": artist_user.id,
        "username": "rin",
        "role": "artist",
        "artist_id": artist_user.artist_id,
        "must_change_password": False,
    }
    assert type(info["role"]) is str
    assert type(info["id"]) is int


def test_last_login_is_flushed_not_committed(db, make_user, engine) -> None:
    make_user("alice")
    assert authenticate(db, "alice", PASSWORD) is not None
    stamped = get_user_by_username(db, "alice")
    assert stamped is not None and stamped.last_login is not None
    with make_sessionmaker(engine)() as other:
        assert other.scalar(select(User.last_login).where(User.username == "alice")) is None
    db.commit()
    with make_sessionmaker(engine)() as other:
        assert other.scalar(select(User.last_login).where(User.username == "alice")) is not None


def test_last_login_changes_only_on_success(db, make_user, clock) -> None:
    user = make_user("alice")
    assert authenticate(db, "alice", PASSWORD)
    db.commit()
    first = user.last_login
    clock.advance(60)
    assert authenticate(db, "alice", "wrong password") is None
    db.commit()
    db.refresh(user)
    assert user.last_login == first
    clock.advance(60)
    assert authenticate(db, "alice", PASSWORD)
    db.commit()
    db.refresh(user)
    assert user.last_login == clock.now


def test_inactive_user_cannot_sign_in_even_with_the_right_password(db, make_user) -> None:
    make_user("gone", is_active=False)
    assert authenticate(db, "gone", PASSWORD) is None


@pytest.mark.parametrize(
    "case", ["success", "wrong_password", "unknown_user", "inactive", "malformed", "empty_hash"]
)
def test_every_path_costs_one_bcrypt_check(db, make_user, checkpw_counter, case) -> None:
    # Django's approach: count hasher work per path instead of timing it.
    make_user("alice")
    make_user("gone", is_active=False)
    make_user("broken", password_hash="$2b$12$not-a-real-hash")
    make_user("blank", password_hash="")
    username, password = {
        "success": ("alice", PASSWORD),
        "wrong_password": ("alice", "not the password"),
        "unknown_user": ("nobody", PASSWORD),
        "inactive": ("gone", PASSWORD),
        "malformed": ("broken", PASSWORD),
        "empty_hash": ("blank", PASSWORD),
    }[case]
    checkpw_counter.calls = 0
    result = authenticate(db, username, password)
    assert (result is not None) == (case == "success")
    assert checkpw_counter.calls == 1


@pytest.mark.parametrize("password", ["é" * 64, "x" * 100, "Ａ long fullwidth one"])
def test_unusual_passwords_cost_the_same_for_unknown_users(
    db, make_user, checkpw_counter, password
) -> None:
    make_user("alice", password=password)
    for username, pw in (("alice", password + "!"), ("nobody", password)):
        checkpw_counter.calls = 0
        assert authenticate(db, username, pw) is None
        real = checkpw_counter.calls
        assert real >= 1
    checkpw_counter.calls = 0
    authenticate(db, "alice", password + "!")
    assert checkpw_counter.calls == real


@pytest.mark.parametrize("password", [None, "", 123, "nul\x00byte", "\ud800"])
def test_unusable_passwords_fail_without_touching_users(db, make_user, password) -> None:
    make_user("alice")
    assert authenticate(db, "alice", password) is None


@pytest.mark.parametrize("username", [None, "", "a" * 10_000, "\x00", "\ud800", 7])
def test_impossible_usernames_fail_cleanly(db, username) -> None:
    assert authenticate(db, username, PASSWORD) is None


def test_outdated_hash_is_upgraded_in_the_callers_transaction(db, make_user, engine) -> None:
    old = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4, b"2a")).decode()
    make_user("alice", password_hash=old)
    assert authenticate(db, "alice", PASSWORD)
    user = get_user_by_username(db, "alice")
    assert user is not None and user.password_hash.startswith("$2b$04$")
    with make_sessionmaker(engine)() as other:
        assert other.scalar(select(User.password_hash).where(User.id == user.id)) == old
    db.commit()
    assert authenticate(db, "alice", PASSWORD)


def test_lower_cost_hash_is_upgraded(db, make_user, settings_env) -> None:
    make_user("alice", password_hash=passwords.hash_password(PASSWORD, rounds=4))
    settings_env(bcrypt_rounds=5)
    assert authenticate(db, "alice", PASSWORD)
    db.commit()
    user = get_user_by_username(db, "alice")
    assert user is not None and user.password_hash.startswith("$2b$05$")


def test_usernames_are_unique_by_normalized_key(db, make_user) -> None:
    from sqlalchemy.exc import IntegrityError

    make_user("admin", role="admin")
    with pytest.raises(IntegrityError):
        make_user("ＡＤＭＩＮ", role="admin")


def test_authenticate_works_on_a_fresh_contract_session(engine, make_user) -> None:
    from data.db.session import SessionLocal

    make_user("admin", "password123", role="admin")
    with SessionLocal() as db:
        assert isinstance(db, Session)
        info = authenticate(db, "admin", "password123")
        db.commit()
    assert info is not None and info["role"] == "admin"


@contextmanager
def _statements(engine) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """Every SQL statement the engine runs inside the block (first word, upper case)."""
    seen: list[str] = []

    def note(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement.split()[0].upper())

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


@pytest.mark.parametrize(
    ("username", "password", "expected"),
    [
        # count the attempt (reading the account in the same statement), record the failure
        ("alice", "not the password", ["INSERT", "INSERT"]),
        ("nobody", PASSWORD, ["INSERT", "INSERT"]),
        ("gone", PASSWORD, ["INSERT", "INSERT"]),
        # ... or stamp last_login, which also clears the count, and record the success
        # (on PostgreSQL the stamp and the event are one statement)
        ("alice", PASSWORD, ["INSERT", "UPDATE", "INSERT"]),
    ],
)
def test_a_sign_in_costs_a_fixed_handful_of_statements(
    engine, make_user, username, password, expected
) -> None:
    make_user("alice")
    make_user("gone", is_active=False)
    succeeds = "UPDATE" in expected
    if engine.dialect.name == "postgresql" and succeeds:
        expected = ["INSERT", "WITH"]
    with _statements(engine) as seen, make_sessionmaker(engine)() as session:
        result = authenticate(session, username, password)
        assert (result is not None) == succeeds
        # An idle caller's session is left idle by a failure: nothing to roll back.
        assert session.in_transaction() == (result is not None)
        session.commit()
    assert seen == expected


def _change_alice(engine, change: str) -> None:  # type: ignore[no-untyped-def]
    """An administrator's committed change to alice: a new password, or deactivation."""
    with make_sessionmaker(engine)() as admin:
        user = admin.scalars(select(User).where(User.username == "alice")).one()
        if change == "password":
            user.password_hash = passwords.hash_password("a brand new passphrase")
        else:
            user.is_active = False
        admin.commit()


@pytest.mark.parametrize("change", ["password", "deactivate"])
def test_an_account_changed_during_the_check_does_not_sign_in(
    db, make_user, engine, monkeypatch, change
) -> None:
    make_user("alice")
    check = passwords.check

    def check_then_change(candidates, stored):  # type: ignore[no-untyped-def]
        result = check(candidates, stored)
        _change_alice(engine, change)
        return result

    monkeypatch.setattr(passwords, "check", check_then_change)
    assert authenticate(db, "alice", PASSWORD) is None
    db.commit()
    with make_sessionmaker(engine)() as other:
        assert other.scalar(select(User.last_login).where(User.username == "alice")) is None
        outcomes = other.scalars(select(AuditEvent.outcome)).all()
    assert outcomes == ["failure"]


@pytest.mark.parametrize("change", ["password", "deactivate"])
def test_an_account_changed_after_the_attempt_was_counted_does_not_sign_in(
    make_user, engine, change
) -> None:
    # The HTTP service counts an attempt (reading the account) before the password
    # check queues for the pool; a change in between must not let the old state in.
    make_user("alice")
    factory = make_sessionmaker(engine)
    with factory() as s:
        attempt = check_throttle(s, "alice")
    assert attempt.account is not None
    _change_alice(engine, change)
    with factory() as s, pytest.raises(InvalidCredentials):
        check_credentials(s, "alice", PASSWORD, attempt=attempt)


def test_an_attempt_counted_for_another_name_is_refused(make_user, engine) -> None:
    make_user("alice")
    make_user("bob")
    factory = make_sessionmaker(engine)
    with factory() as s:
        attempt = check_throttle(s, "alice")
    with factory() as s, pytest.raises(ValueError, match="another username"):
        check_credentials(s, "bob", PASSWORD, attempt=attempt)
    with factory() as s:  # the same name in another spelling is the same name
        assert check_credentials(s, " ALICE ", PASSWORD, attempt=attempt)["username"] == "alice"


def test_a_user_the_caller_holds_shows_the_new_last_login(db, make_user, clock) -> None:
    user = make_user("alice")
    assert user.last_login is None
    assert user.sign_in_count == 0
    assert authenticate(db, "alice", PASSWORD)
    assert user.last_login == clock.now
    assert user.sign_in_count == 1
