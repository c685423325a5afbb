"""Session lifecycle on SQLite and PostgreSQL, with the fake clock for every expiry."""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, text, update
from sqlalchemy.orm import Session

from data.db.base import Base
from data.db.session import make_sessionmaker
from data.models import AuditEvent, AuthSession, Role, User
from services.auth import (
    SESSION_TOKEN_LENGTH,
    SESSION_TOKEN_PREFIX,
    authenticate,
    generate_session_token,
    user_info,
)
from services.errors import InvalidCredentials, NotFound, Throttled, Unavailable
from services.sessions import (
    IssuedSession,
    LoginResult,
    issue_session,
    list_all_sessions,
    list_sessions,
    login,
    logout,
    prune_sessions,
    resolve_session,
    revoke_session,
    revoke_user_sessions,
    rotate_session,
    session_state,
    token_digest,
)
from tests.conftest import DEFAULT_PASSWORD

IDLE = 60 * 60
LIFETIME = 12 * 60 * 60


class StatementLog:
    """Every SQL statement the engine runs, to prove a path writes nothing."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.statements.append(statement.lstrip().split(None, 1)[0].upper())

    @property
    def writes(self) -> list[str]:
        return [s for s in self.statements if s in ("INSERT", "UPDATE", "DELETE")]


@pytest.fixture
def sql_log(engine: Engine) -> Iterator[StatementLog]:
    log = StatementLog()
    event.listen(engine, "before_cursor_execute", log)
    yield log
    event.remove(engine, "before_cursor_execute", log)


@pytest.fixture
def alice(db: Session, make_user: Callable[..., User], clock: Any) -> User:
    return make_user("alice")


def _issue(db: Session, user: User, **kwargs: Any) -> IssuedSession:
    issued = issue_session(db, user.id, **kwargs)
    db.commit()
    return issued


def _row(engine: Engine, session_id: int) -> AuthSession | None:
    with Session(engine) as other:
        return other.get(AuthSession, session_id)


# --- tokens ---------------------------------------------------------------------------


def test_tokens_are_distinct_prefixed_and_carry_256_random_bits() -> None:
    tokens = [generate_session_token() for _ in range(100_000)]
    assert len(set(tokens)) == len(tokens)
    bodies = set()
    for token in tokens:
        assert token.startswith(SESSION_TOKEN_PREFIX)
        assert len(token) == SESSION_TOKEN_LENGTH
        body = token[len(SESSION_TOKEN_PREFIX) :]
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        assert len(raw) >= 32
        bodies.add(raw)
    assert len(bodies) == len(tokens)
    assert token_digest(tokens[0]) != token_digest(tokens[1])


def test_repr_never_shows_the_token(db: Session, alice: User) -> None:
    issued = _issue(db, alice)
    assert issued.token not in repr(issued)
    result = login(db, "alice", DEFAULT_PASSWORD)
    assert result.token not in repr(result)
    assert result.token not in str(result)


# --- issue and resolve ----------------------------------------------------------------


def test_issue_then_resolve_returns_the_authenticate_dict_plus_session(
    db: Session, alice: User, clock: Any
) -> None:
    issued = _issue(db, alice, ip="10.0.0.7", user_agent="Krita/5.2")
    info = resolve_session(db, issued.token)
    assert info is not None
    expected = user_info(alice)
    assert {k: info[k] for k in expected} == expected
    assert info["session_id"] == issued.session_id
    assert info["expires_at"] == issued.expires_at == clock.now + timedelta(hours=12)
    assert info["idle_expires_at"] == clock.now + timedelta(minutes=60)
    assert info["elevated_by"] is None
    assert info["elevated_until"] is None
    row = _row(db.get_bind(), issued.session_id)  # type: ignore[arg-type]
    assert row is not None
    assert (row.client_ip, row.user_agent) == ("10.0.0.7", "Krita/5.2")
    created = db.scalars(select(AuditEvent).where(AuditEvent.event == "session_created")).one()
    assert (created.user_id, created.session_id) == (alice.id, issued.session_id)


def test_issue_refuses_unknown_and_inactive_users(
    db: Session, make_user: Callable[..., User]
) -> None:
    bob = make_user("bob", is_active=False)
    with pytest.raises(NotFound):
        issue_session(db, bob.id)
    with pytest.raises(NotFound):
        issue_session(db, 999_999)
    assert db.scalars(select(AuthSession)).all() == []


def test_user_agent_and_address_are_bounded_and_printable(db: Session, alice: User) -> None:
    issued = _issue(db, alice, ip="1.2.3.4\x00" + "9" * 200, user_agent="A\x00\n" + "b" * 5000)
    row = _row(db.get_bind(), issued.session_id)  # type: ignore[arg-type]
    assert row is not None and row.user_agent is not None and row.client_ip is not None
    assert len(row.user_agent) == 256 and "\x00" not in row.user_agent
    assert row.user_agent.startswith("A\\x00\\x0a")
    assert len(row.client_ip) <= 64 and "\x00" not in row.client_ip


# --- login and logout -----------------------------------------------------------------


def test_login_issues_a_new_committed_token_every_time(
    db: Session, alice: User, engine: Engine
) -> None:
    first = login(db, "Alice", DEFAULT_PASSWORD, ip="10.0.0.1", user_agent="web")
    second = login(db, "alice", DEFAULT_PASSWORD)
    assert isinstance(first, LoginResult)
    assert first.token != second.token
    assert first.session_id != second.session_id
    assert first.user == authenticate(db, "alice", DEFAULT_PASSWORD)
    db.rollback()  # login committed: nothing is lost
    with make_sessionmaker(engine)() as other:
        assert resolve_session(other, first.token) is not None
        assert resolve_session(other, second.token) is not None


def test_login_failure_raises_and_issues_nothing(db: Session, alice: User) -> None:
    with pytest.raises(InvalidCredentials):
        login(db, "alice", "wrong password")
    with pytest.raises(InvalidCredentials):
        login(db, "nobody", DEFAULT_PASSWORD)
    db.rollback()
    assert db.scalars(select(AuthSession)).all() == []


def test_login_lets_throttling_through_and_issues_nothing(
    db: Session, alice: User, settings_env: Callable[..., None]
) -> None:
    settings_env(throttle_free_failures=2)
    for _ in range(3):
        try:
            login(db, "alice", "wrong password", ip="10.9.9.9")
        except (InvalidCredentials, Throttled):
            db.rollback()
    with pytest.raises(Throttled):
        login(db, "alice", DEFAULT_PASSWORD, ip="10.9.9.9")
    db.rollback()
    assert db.scalars(select(AuthSession)).all() == []


def test_resolve_fails_closed_when_the_store_is_broken(
    db: Session, alice: User, engine: Engine
) -> None:
    issued = _issue(db, alice)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE sessions RENAME TO sessions_away"))
    try:
        with pytest.raises(Unavailable) as caught:
            resolve_session(db, issued.token)
        assert issued.token not in str(caught.value)
        db.rollback()
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE sessions_away RENAME TO sessions"))
    assert resolve_session(db, issued.token) is not None


def test_logout_ends_the_session_once(db: Session, alice: User, sql_log: StatementLog) -> None:
    result = login(db, "alice", DEFAULT_PASSWORD)
    assert logout(db, result.token) is True
    assert resolve_session(db, result.token) is None
    sql_log.statements.clear()
    assert logout(db, result.token) is False
    assert logout(db, None) is False
    assert logout(db, "Bearer " + result.token) is False
    assert sql_log.writes == []
    row = _row(db.get_bind(), result.session_id)  # type: ignore[arg-type]
    assert row is not None and row.revoked_reason == "logout"


# --- expiry ---------------------------------------------------------------------------


def test_idle_limit_one_second_either_side(
    db: Session, alice: User, clock: Any, engine: Engine
) -> None:
    issued = _issue(db, alice)
    clock.advance(IDLE - 1)
    assert resolve_session(db, issued.token) is not None
    row = _row(engine, issued.session_id)
    assert row is not None and row.last_seen_at == clock.now  # refreshed
    clock.advance(IDLE - 1)
    assert resolve_session(db, issued.token) is not None  # alive thanks to the refresh
    clock.advance(IDLE + 1)
    assert resolve_session(db, issued.token) is None


def test_idle_limit_is_exclusive(db: Session, alice: User, clock: Any) -> None:
    issued = _issue(db, alice)
    clock.advance(IDLE)
    assert resolve_session(db, issued.token) is None


def test_absolute_lifetime_under_continuous_use(db: Session, alice: User, clock: Any) -> None:
    issued = _issue(db, alice)
    elapsed = 0
    while elapsed + 30 * 60 < LIFETIME - 1:
        clock.advance(30 * 60)
        elapsed += 30 * 60
        assert resolve_session(db, issued.token) is not None
    clock.advance(LIFETIME - 1 - elapsed)
    assert resolve_session(db, issued.token) is not None
    clock.advance(2)
    assert resolve_session(db, issued.token) is None


def test_timeouts_follow_the_settings(
    db: Session, alice: User, clock: Any, settings_env: Callable[..., None]
) -> None:
    settings_env(session_idle_minutes=5, session_lifetime_hours=1)
    issued = _issue(db, alice)
    assert issued.expires_at == clock.now + timedelta(hours=1)
    clock.advance(5 * 60 - 1)
    assert resolve_session(db, issued.token) is not None
    clock.advance(5 * 60 + 1)
    assert resolve_session(db, issued.token) is None


def test_a_shortened_lifetime_applies_to_existing_sessions(
    db: Session, alice: User, clock: Any, settings_env: Callable[..., None]
) -> None:
    issued = _issue(db, alice)  # 12 h
    settings_env(session_lifetime_hours=1)
    clock.advance(59 * 60)
    assert resolve_session(db, issued.token) is not None
    clock.advance(2 * 60)
    assert resolve_session(db, issued.token) is None


def test_last_seen_is_written_at_most_once_a_minute(
    db: Session, alice: User, clock: Any, sql_log: StatementLog, engine: Engine
) -> None:
    issued = _issue(db, alice)
    sql_log.statements.clear()
    for _ in range(5):
        clock.advance(10)
        assert resolve_session(db, issued.token) is not None
    assert sql_log.writes == []  # 50 s after the last touch
    clock.advance(10)
    assert resolve_session(db, issued.token) is not None
    assert sql_log.writes == ["UPDATE"]
    row = _row(engine, issued.session_id)
    assert row is not None and row.last_seen_at == clock.now


def test_touch_is_independent_of_the_callers_transaction(
    db: Session, alice: User, clock: Any, engine: Engine
) -> None:
    issued = _issue(db, alice)
    clock.advance(IDLE - 1)
    with make_sessionmaker(engine)() as reader:
        if engine.dialect.name == "postgresql":
            reader.execute(text("SET TRANSACTION READ ONLY"))
        assert resolve_session(reader, issued.token) is not None
        assert not reader.new and not reader.dirty
        reader.rollback()
    row = _row(engine, issued.session_id)
    assert row is not None and row.last_seen_at == clock.now


# --- invalid input --------------------------------------------------------------------

_GOOD = SESSION_TOKEN_PREFIX + "A" * (SESSION_TOKEN_LENGTH - len(SESSION_TOKEN_PREFIX))

MALFORMED: list[object] = [
    None,
    "",
    " ",
    "x" * 10_000_000,
    "\x00" * SESSION_TOKEN_LENGTH,
    _GOOD[:-1] + "\x00",
    _GOOD[:-1] + "é",
    _GOOD[:-1] + "\ud800",
    _GOOD[:-1],
    _GOOD + "A",
    "Bearer " + _GOOD,
    "bearer " + _GOOD,
    "Bearer  " + _GOOD,
    "Bearer",
    " " + _GOOD[1:],
    "xat_" + _GOOD[4:],
    _GOOD[:-1] + "=",
    _GOOD.encode(),
    bytearray(_GOOD.encode()),
    12345,
    ["sat_"],
    {"token": _GOOD},
]


@pytest.mark.parametrize("token", MALFORMED, ids=lambda t: repr(t)[:24])
def test_malformed_tokens_resolve_to_none_without_touching_the_database(
    db: Session, alice: User, token: object, sql_log: StatementLog
) -> None:
    _issue(db, alice)
    sql_log.statements.clear()
    assert resolve_session(db, token) is None
    assert sql_log.statements == []


def test_wrapped_real_tokens_do_not_resolve(
    db: Session, alice: User, sql_log: StatementLog
) -> None:
    token = _issue(db, alice).token
    sql_log.statements.clear()
    for variant in (
        f"Bearer {token}",
        f"bearer {token}",
        f"{token} ",
        f" {token}",
        f"{token}\n",
        token.upper(),
        token[:-1],
        token + token,
        token.replace("sat_", "SAT_"),
    ):
        assert resolve_session(db, variant) is None
    assert sql_log.writes == []


def test_a_token_never_issued_reads_once_and_writes_nothing(
    db: Session, alice: User, sql_log: StatementLog
) -> None:
    _issue(db, alice)
    sql_log.statements.clear()
    assert resolve_session(db, generate_session_token()) is None
    assert sql_log.statements == ["SELECT"]


def test_expired_and_revoked_tokens_write_nothing(
    db: Session, alice: User, clock: Any, sql_log: StatementLog
) -> None:
    revoked = _issue(db, alice)
    revoke_session(db, revoked.session_id, reason="test")
    db.commit()
    idle = _issue(db, alice)
    clock.advance(IDLE + 1)
    sql_log.statements.clear()
    assert resolve_session(db, revoked.token) is None
    assert resolve_session(db, idle.token) is None
    assert sql_log.writes == []


# --- revocation -----------------------------------------------------------------------


def test_revocation_is_immediate_and_audited(db: Session, alice: User, engine: Engine) -> None:
    issued = _issue(db, alice)
    with make_sessionmaker(engine)() as other:
        assert resolve_session(other, issued.token) is not None
        assert revoke_session(db, issued.session_id, reason="stolen laptop", actor_id=7)
        db.commit()
        assert resolve_session(other, issued.token) is None
    assert revoke_session(db, issued.session_id, reason="again") is False
    assert revoke_session(db, 999_999, reason="nothing") is False
    event_row = db.scalars(select(AuditEvent).where(AuditEvent.event == "session_revoked")).one()
    assert (event_row.session_id, event_row.user_id, event_row.actor_id) == (
        issued.session_id,
        alice.id,
        7,
    )
    assert event_row.detail == {"reason": "stolen laptop"}


def test_revoke_restricted_to_one_user(
    db: Session, alice: User, make_user: Callable[..., User]
) -> None:
    bob = make_user("bob")
    issued = _issue(db, alice)
    assert revoke_session(db, issued.session_id, reason="x", user_id=bob.id) is False
    assert resolve_session(db, issued.token) is not None
    assert revoke_session(db, issued.session_id, reason="x", user_id=alice.id) is True


def test_revoke_needs_a_reason(db: Session, alice: User) -> None:
    issued = _issue(db, alice)
    for reason in ("", "   ", None):
        with pytest.raises(ValueError, match="reason"):
            revoke_session(db, issued.session_id, reason=reason)  # type: ignore[arg-type]


def test_revoke_all_except_the_current_one(
    db: Session, alice: User, make_user: Callable[..., User]
) -> None:
    bob = make_user("bob")
    mine = [_issue(db, alice) for _ in range(3)]
    bobs = _issue(db, bob)
    count = revoke_user_sessions(
        db, alice.id, reason="password_changed", except_session_id=mine[0].session_id
    )
    db.commit()
    assert count == 2
    assert resolve_session(db, mine[0].token) is not None
    assert [resolve_session(db, s.token) for s in mine[1:]] == [None, None]
    assert resolve_session(db, bobs.token) is not None
    assert revoke_user_sessions(db, alice.id, reason="deactivated") == 1
    assert revoke_user_sessions(db, alice.id, reason="deactivated") == 0


def test_concurrent_revocations_of_one_session_succeed_once(
    db: Session, alice: User, engine: Engine
) -> None:
    issued = _issue(db, alice)
    factory = make_sessionmaker(engine)
    results: list[bool] = []
    barrier = threading.Barrier(4)

    def revoke() -> None:
        with factory() as own:
            barrier.wait()
            results.append(revoke_session(own, issued.session_id, reason="race"))
            own.commit()

    threads = [threading.Thread(target=revoke) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == [False, False, False, True]
    with factory() as check:
        events = check.scalars(
            select(AuditEvent).where(AuditEvent.event == "session_revoked")
        ).all()
    assert len(events) == 1


def test_concurrent_resolves_all_succeed(
    db: Session, alice: User, engine: Engine, clock: Any
) -> None:
    issued = _issue(db, alice)
    clock.advance(120)  # every resolver is due to touch; the condition lets one write
    factory = make_sessionmaker(engine)
    results: list[bool] = []
    barrier = threading.Barrier(4)

    def resolve() -> None:
        with factory() as own:
            barrier.wait()
            results.append(resolve_session(own, issued.token) is not None)

    threads = [threading.Thread(target=resolve) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == [True] * 4
    row = _row(engine, issued.session_id)
    assert row is not None and row.last_seen_at == clock.now


def test_rotate_replaces_the_token_and_keeps_the_lifetime(
    db: Session, alice: User, clock: Any
) -> None:
    old = _issue(db, alice, ip="10.1.1.1", user_agent="desk")
    clock.advance(3600 - 10)
    new = rotate_session(db, old.session_id, reason="password_changed")
    db.commit()
    assert new.token != old.token and new.session_id != old.session_id
    assert new.expires_at == old.expires_at
    assert resolve_session(db, old.token) is None
    info = resolve_session(db, new.token)
    assert info is not None and info["id"] == alice.id
    row = _row(db.get_bind(), new.session_id)  # type: ignore[arg-type]
    assert row is not None and (row.client_ip, row.user_agent) == ("10.1.1.1", "desk")
    old_row = _row(db.get_bind(), old.session_id)  # type: ignore[arg-type]
    assert old_row is not None and old_row.revoked_reason == "password_changed"
    with pytest.raises(NotFound):
        rotate_session(db, old.session_id)


def test_rotate_refuses_a_dead_session(db: Session, alice: User, clock: Any) -> None:
    issued = _issue(db, alice)
    clock.advance(IDLE + 1)
    with pytest.raises(NotFound):
        rotate_session(db, issued.session_id)
    with pytest.raises(NotFound):
        rotate_session(db, 999_999)


def test_an_inactive_user_is_refused_without_any_revocation_write(
    db: Session, alice: User, engine: Engine
) -> None:
    issued = _issue(db, alice)
    with engine.begin() as conn:  # as a missed revocation would leave it
        conn.execute(update(User).where(User.id == alice.id).values(is_active=False))
    db.expire_all()
    assert resolve_session(db, issued.token) is None
    row = _row(engine, issued.session_id)
    assert row is not None and row.revoked_at is None
    with engine.begin() as conn:
        conn.execute(update(User).where(User.id == alice.id).values(is_active=True))
    db.expire_all()
    assert resolve_session(db, issued.token) is not None


def test_resolve_reports_the_current_role_and_artist(
    db: Session, alice: User, engine: Engine, make_artist: Callable[..., Any]
) -> None:
    issued = _issue(db, alice)
    artist = make_artist("Mika")
    with engine.begin() as conn:
        conn.execute(
            update(User).where(User.id == alice.id).values(role=Role.ARTIST, artist_id=artist.id)
        )
    db.expire_all()
    info = resolve_session(db, issued.token)
    assert info is not None
    assert (info["role"], info["artist_id"]) == ("artist", artist.id)


SESSION_FIELDS = {"session_id", "expires_at", "idle_expires_at", "elevated_by", "elevated_until"}


def test_resolve_returns_the_authenticate_dict_and_the_session_fields_only(
    db: Session, alice: User
) -> None:
    issued = _issue(db, alice)
    info = resolve_session(db, issued.token)
    assert info is not None
    assert set(info) == set(user_info(alice)) | SESSION_FIELDS
    assert {k: v for k, v in info.items() if k not in SESSION_FIELDS} == user_info(alice)
    assert type(info["role"]) is str


def test_resolve_reads_committed_changes_without_any_expiry_or_cache(
    db: Session, alice: User, engine: Engine, make_artist: Callable[..., Any]
) -> None:
    issued = _issue(db, alice)
    artist = make_artist("Mika")
    assert resolve_session(db, issued.token) is not None
    # Another process changes the account; nothing in this one is expired or reset.
    with engine.begin() as conn:
        conn.execute(
            update(User).where(User.id == alice.id).values(role=Role.ARTIST, artist_id=artist.id)
        )
    info = resolve_session(db, issued.token)
    assert info is not None and (info["role"], info["artist_id"]) == ("artist", artist.id)
    with engine.begin() as conn:
        conn.execute(update(User).where(User.id == alice.id).values(is_active=False))
    assert resolve_session(db, issued.token) is None


def test_resolve_sees_the_callers_unflushed_changes(db: Session, alice: User) -> None:
    issued = _issue(db, alice)
    alice.must_change_password = True
    info = resolve_session(db, issued.token)
    assert info is not None and info["must_change_password"] is True
    alice.is_active = False
    assert resolve_session(db, issued.token) is None
    db.rollback()
    info = resolve_session(db, issued.token)
    assert info is not None and info["must_change_password"] is False


# --- listing and pruning --------------------------------------------------------------


def test_list_sessions(
    db: Session, alice: User, clock: Any, make_user: Callable[..., User]
) -> None:
    bob = make_user("bob")
    first = _issue(db, alice)
    clock.advance(1)
    second = _issue(db, alice)
    clock.advance(1)
    third = _issue(db, alice)
    _issue(db, bob)
    revoke_session(db, third.session_id, reason="x")
    db.commit()
    assert [s.session_id for s in (second, first)] == [s.id for s in list_sessions(db, alice.id)]
    every = list_sessions(db, alice.id, include_inactive=True)
    assert [s.id for s in every] == [third.session_id, second.session_id, first.session_id]
    assert [session_state(s) for s in every] == ["revoked", "active", "active"]
    clock.advance(IDLE + 1)
    assert list_sessions(db, alice.id) == []
    assert session_state(every[1]) == "idle"
    assert len(list_all_sessions(db, include_inactive=True)) == 4
    assert list_all_sessions(db) == []


def test_prune_deletes_dead_rows_only(db: Session, alice: User, clock: Any) -> None:
    revoked = _issue(db, alice)
    revoke_session(db, revoked.session_id, reason="x")
    idle = _issue(db, alice)
    clock.advance(IDLE - 10)
    live = _issue(db, alice)
    clock.advance(20)  # ``idle`` is now dead, ``live`` is not
    db.commit()
    assert prune_sessions(db, older_than=timedelta(days=1)) == 0
    assert prune_sessions(db) == 2
    db.commit()
    assert [s.id for s in list_sessions(db, alice.id, include_inactive=True)] == [live.session_id]
    assert resolve_session(db, live.token) is not None
    clock.advance(LIFETIME)
    assert prune_sessions(db) == 1
    assert idle.session_id != live.session_id


# --- secrecy --------------------------------------------------------------------------


def test_no_raw_token_anywhere_in_the_database_or_the_logs(
    db: Session,
    alice: User,
    make_user: Callable[..., User],
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    make_user("bob")
    caplog.set_level(logging.DEBUG)
    tokens = [login(db, name, DEFAULT_PASSWORD, user_agent="t").token for name in ("alice", "bob")]
    tokens += [login(db, "alice", DEFAULT_PASSWORD).token for _ in range(3)]
    for token in tokens:
        assert resolve_session(db, token) is not None
    rotated = rotate_session(db, login(db, "bob", DEFAULT_PASSWORD).session_id)
    db.commit()
    tokens.append(rotated.token)
    assert logout(db, tokens[0])

    dump: list[str] = []
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                dump.extend(repr(value) for value in row)
    blob = "\n".join(dump)
    digests = 0
    for token in tokens:
        body = token[len(SESSION_TOKEN_PREFIX) :]
        assert body not in blob
        assert body[:16] not in blob
        digests += token_digest(token) in blob
    assert digests == len(tokens)  # the digests are there, so the dump is complete
    logged = caplog.text
    assert all(token[len(SESSION_TOKEN_PREFIX) :][:16] not in logged for token in tokens)
