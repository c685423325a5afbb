"""Brute-force protection inside authenticate()/check_credentials(), on SQLite and
PostgreSQL, with a fake clock for the delays."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from data.db.session import make_engine, make_sessionmaker
from data.models import Artist, AuditEvent, ThrottleCounter
from services import throttle
from services.auth import authenticate, check_credentials
from services.errors import InvalidCredentials, Throttled, Unavailable
from studio_auth.settings import get_settings
from tests.conftest import DEFAULT_PASSWORD as PASSWORD

WRONG = "not the password at all"


def fresh(engine: Engine) -> Session:
    return make_sessionmaker(engine)()


def failures(engine: Engine, username: object) -> int:
    with fresh(engine) as s:
        row = throttle.current_counter(s, username)
        return 0 if row is None else row.failures


def outcome(db: Session, username: object, password: str, **kw: Any) -> str | float:
    """'ok', 'invalid' or the retry_after of a Throttled error."""
    try:
        check_credentials(db, username, password, **kw)  # type: ignore[arg-type]
    except Throttled as exc:
        return float(exc.retry_after)
    except InvalidCredentials:
        return "invalid"
    finally:
        db.rollback()
    return "ok"


def fail_times(db: Session, username: object, n: int, **kw: Any) -> None:
    for _ in range(n):
        assert outcome(db, username, WRONG, **kw) == "invalid"


def test_delays_double_from_the_base_to_the_cap() -> None:
    delays, previous = [], None
    for _ in range(12):
        previous = throttle.next_delay(previous)
        delays.append(previous.total_seconds())
    assert delays == [2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]
    assert throttle.next_delay(timedelta(days=30)).total_seconds() == 900


def test_five_failures_are_free_then_a_correct_password_waits(db, make_user, clock) -> None:
    make_user("alice")
    fail_times(db, "alice", 5)
    assert outcome(db, "alice", PASSWORD) == 2
    clock.advance(1.5)
    assert outcome(db, "ALICE", PASSWORD) == 1  # the same key, rounded up
    clock.advance(0.5)
    assert outcome(db, "alice", PASSWORD) == "ok"


def test_each_further_failure_doubles_the_delay_up_to_the_cap(db, make_user, clock) -> None:
    make_user("alice")
    fail_times(db, "alice", 5)
    waits = []
    for _ in range(12):
        wait = outcome(db, "alice", WRONG)
        assert isinstance(wait, float)
        waits.append(wait)
        clock.advance(wait)
        assert outcome(db, "alice", WRONG) == "invalid"
    assert waits == [2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]


def test_success_resets_the_count(db, make_user, clock, engine) -> None:
    make_user("alice")
    fail_times(db, "alice", 4)
    assert outcome(db, "alice", PASSWORD) == "ok"
    assert failures(engine, "alice") == 0
    fail_times(db, "alice", 4)  # four more are free again
    assert failures(engine, "alice") == 4


def test_a_committed_sign_in_clears_the_count_without_a_write_of_its_own(
    engine, make_user, clock
) -> None:
    make_user("alice")
    for _ in range(4):
        with fresh(engine) as s:
            assert authenticate(s, "alice", WRONG) is None
    with fresh(engine) as s:
        assert authenticate(s, "alice", PASSWORD) is not None
        s.commit()
    with fresh(engine) as s:
        # The row is as the sign-in's own count left it, but it no longer counts ...
        assert s.get(ThrottleCounter, throttle.user_key("alice")).failures == 5
    assert failures(engine, "alice") == 0
    for _ in range(4):  # ... and the next attempts start afresh: four are free again
        with fresh(engine) as s:
            assert authenticate(s, "alice", WRONG) is None
    assert failures(engine, "alice") == 4


@pytest.mark.parametrize("ending", ["rollback", "close", "savepoint, then rollback"])
def test_a_correct_password_clears_the_count_even_if_never_committed(
    engine, make_user, clock, ending
) -> None:
    # The specification's own example reads the result and never commits.
    make_user("alice")
    for _ in range(4):
        with fresh(engine) as s:
            assert authenticate(s, "alice", WRONG) is None
    s = fresh(engine)
    if ending.startswith("savepoint"):
        s.execute(text("SELECT 1"))
        with s.begin_nested():  # a savepoint's commit is not the transaction's
            assert authenticate(s, "alice", PASSWORD) is not None
    else:
        assert authenticate(s, "alice", PASSWORD) is not None
    getattr(s, ending.split()[-1])()
    s.close()
    assert failures(engine, "alice") == 0
    with fresh(engine) as s:
        assert s.get(ThrottleCounter, throttle.user_key("alice")) is None


def test_a_refused_sign_in_keeps_the_count(engine, make_user, clock) -> None:
    user = make_user("alice")
    for _ in range(3):
        with fresh(engine) as s:
            assert authenticate(s, "alice", WRONG) is None
    with fresh(engine) as s:
        s.execute(text("SELECT 1"))
        s.get(type(user), user.id).is_active = False
        s.flush()
        assert authenticate(s, "alice", PASSWORD) is None
        s.rollback()
    assert failures(engine, "alice") == 4


def test_two_sign_ins_in_one_open_transaction(engine, make_user, clock) -> None:
    # The second count must not wait on anything the first sign-in holds.
    make_user("alice")
    with fresh(engine) as s:
        assert authenticate(s, "alice", PASSWORD) is not None
        assert authenticate(s, "alice", PASSWORD) is not None
        s.commit()
    assert failures(engine, "alice") == 0


def test_throttled_attempts_do_no_bcrypt_work_and_never_extend_the_lock(
    db, make_user, clock, engine, checkpw_counter
) -> None:
    make_user("alice")
    fail_times(db, "alice", 5)
    with fresh(engine) as s:
        locked_until = s.get(ThrottleCounter, "user:alice").blocked_until  # type: ignore[union-attr]
    checkpw_counter.calls = 0
    for _ in range(30):
        assert authenticate(db, "alice", PASSWORD) is None
        clock.advance(0.05)
    assert checkpw_counter.calls == 0
    with fresh(engine) as s:
        row = s.get(ThrottleCounter, "user:alice")
        assert row is not None
        assert row.failures == 35  # refused attempts are counted...
        assert row.blocked_until == locked_until  # ...but do not move the lock
    clock.advance(0.5)
    assert authenticate(db, "alice", PASSWORD) is not None
    assert checkpw_counter.calls == 1


def test_refused_attempts_cannot_hold_a_name_past_the_cap(db, make_user, clock) -> None:
    make_user("alice")
    fail_times(db, "alice", 5)
    # An attacker hammering a locked name for twenty minutes, once a second.
    results = []
    for _ in range(1200):
        clock.advance(1)
        results.append(outcome(db, "alice", WRONG))
    # Let through only when each doubling lock ran out (at 2, 6, 14, ... 1022 s).
    assert results.count("invalid") == 9
    # Each lock is at most the cap after the last attempt that was let through.
    clock.advance(get_settings().throttle_max_delay_seconds)
    assert outcome(db, "alice", PASSWORD) == "ok"


def _trace(db: Session, username: object, clock: Any, counter: Any) -> list[tuple[Any, int]]:
    steps = []
    for step in range(9):
        counter.calls = 0
        result = outcome(db, username, WRONG)
        steps.append((result, counter.calls))
        if step == 6:
            clock.advance(2)
    return steps


@pytest.mark.parametrize("other", ["nobody", "in\x00valid", "x" * 5000, None])
def test_unknown_and_invalid_names_are_throttled_exactly_like_a_real_one(
    db, make_user, clock, checkpw_counter, other
) -> None:
    make_user("alice")
    real = _trace(db, "alice", clock, checkpw_counter)
    clock.advance(3600)
    fake = _trace(db, other, clock, checkpw_counter)
    assert fake == real
    assert [r for r, _ in real] == ["invalid"] * 5 + [2.0, 2.0, "invalid", 4.0]


def test_counts_survive_a_caller_that_never_commits(engine, make_user, clock) -> None:
    make_user("alice")
    for _ in range(5):
        with fresh(engine) as s:  # closed without commit: rolled back
            assert authenticate(s, "alice", WRONG) is None
    assert failures(engine, "alice") == 5
    with fresh(engine) as s:
        assert authenticate(s, "alice", PASSWORD) is None


@pytest.mark.parametrize("ending", ["rollback", "close"])
def test_counts_survive_a_rollback_of_a_session_holding_writes(
    engine, make_user, clock, ending
) -> None:
    make_user("alice")
    with fresh(engine) as s:
        s.add(Artist(name="uncommitted"))
        s.flush()  # on SQLite this session now holds the only write lock
        fail_times_no_rollback = [authenticate(s, "alice", WRONG) for _ in range(3)]
        assert fail_times_no_rollback == [None, None, None]
        getattr(s, ending)()
    assert failures(engine, "alice") == 3
    with fresh(engine) as s:
        assert s.scalar(select(func.count()).select_from(Artist)) == 0
        n = s.scalar(
            select(func.count()).where(AuditEvent.event == "login", AuditEvent.outcome == "failure")
        )
        assert n == 3


def test_unlock_clears_the_lock_and_is_audited(db, make_user, clock, engine) -> None:
    admin = make_user("boss", role="admin")
    make_user("alice")
    fail_times(db, "alice", 5)
    assert outcome(db, "alice", WRONG) == 2
    assert outcome(db, "alice", PASSWORD) == 2
    assert throttle.unlock(db, "Alice", actor_id=admin.id) is True
    db.commit()
    assert outcome(db, "alice", PASSWORD) == "ok"
    assert throttle.unlock(db, "alice") is False
    db.commit()
    events = db.scalars(select(AuditEvent).where(AuditEvent.event == "unlock")).all()
    assert [(e.outcome, e.actor_id, e.username) for e in events] == [
        ("success", admin.id, "alice"),
        ("noop", None, "alice"),
    ]
    assert events[0].detail == {"failures": 7}


def test_unlock_works_for_names_without_an_account(db, clock) -> None:
    fail_times(db, "ghost", 5)
    assert outcome(db, "ghost", WRONG) == 2
    assert throttle.unlock(db, "ghost") is True
    db.commit()
    assert throttle.current_counter(db, "ghost") is None


def test_address_limit_spans_usernames_and_lifts_when_the_window_moves(
    db, make_user, clock, settings_env
) -> None:
    settings_env(throttle_ip_max_failures=10, throttle_ip_window_seconds=600)
    make_user("alice")
    for i in range(10):
        assert outcome(db, f"user{i}", WRONG, ip="203.0.113.9") == "invalid"
    clock.advance(100)
    assert outcome(db, "alice", PASSWORD, ip="203.0.113.9") == 500
    assert outcome(db, "alice", PASSWORD, ip="203.0.113.10") == "ok"
    clock.advance(500)
    assert outcome(db, "alice", PASSWORD, ip="203.0.113.9") == "ok"


def test_successes_do_not_use_up_the_address_allowance(db, make_user, clock, settings_env) -> None:
    settings_env(throttle_ip_max_failures=3)
    make_user("alice")
    for _ in range(10):
        assert outcome(db, "alice", PASSWORD, ip="198.51.100.7") == "ok"
    fail_times(db, "bob", 3, ip="198.51.100.7")
    assert isinstance(outcome(db, "alice", PASSWORD, ip="198.51.100.7"), float)


def _has_recent_failures(engine: Engine, username: str, ip: str | None = None) -> bool:
    """Whether an attempt for ``username`` (from ``ip``) has recent failures now. The probe
    then gives back what a correct password would, and clears the name's count."""
    with fresh(engine) as s:
        attempt = throttle.count_attempt(s, username, ip=ip)
        assert attempt.allowed
        throttle.refund_address(s, attempt)
        s.connection()  # a transaction that ends without a commit clears the name
        throttle.forget_failures(s, attempt)
        s.rollback()
    return attempt.has_recent_failures


def test_an_attempt_has_recent_failures_until_a_sign_in(db, make_user, clock, engine) -> None:
    make_user("alice")
    assert not _has_recent_failures(engine, "alice")
    fail_times(db, "alice", 1)
    assert not _has_recent_failures(engine, "bob")  # another name is not
    assert _has_recent_failures(engine, "alice")
    fail_times(db, "alice", 1)
    assert outcome(db, "alice", PASSWORD) == "ok"
    db.commit()
    assert failures(engine, "alice") == 0
    assert not _has_recent_failures(engine, "alice")


def test_an_attempt_from_an_address_with_many_failures_has_recent_failures(
    db, make_user, clock, engine, settings_env
) -> None:
    settings_env(throttle_free_failures=3, throttle_ip_window_seconds=600)
    make_user("alice")
    for i in range(2):
        fail_times(db, f"user{i}", 1, ip="203.0.113.9")
    assert not _has_recent_failures(engine, "alice", ip="203.0.113.9")  # two failures: not yet
    fail_times(db, "user2", 1, ip="203.0.113.9")
    assert _has_recent_failures(engine, "alice", ip="203.0.113.9")
    assert _has_recent_failures(engine, "nobody", ip="203.0.113.9")  # whatever the name
    assert not _has_recent_failures(engine, "alice", ip="203.0.113.10")
    clock.advance(601)  # the address's window has moved on
    assert not _has_recent_failures(engine, "alice", ip="203.0.113.9")


def test_an_attempt_not_checked_gives_back_its_counts(
    db, make_user, clock, engine, settings_env
) -> None:
    settings_env(throttle_ip_max_failures=3)
    make_user("alice")
    fail_times(db, "alice", 2, ip="198.51.100.7")
    for _ in range(10):  # e.g. refused ten times for want of a place, after counting
        with fresh(engine) as s:
            attempt = throttle.count_attempt(s, "alice", ip="198.51.100.7")
            assert attempt.allowed
            throttle.refund_attempt(s, attempt)
    assert failures(engine, "alice") == 2  # as before those attempts
    assert outcome(db, "alice", WRONG, ip="198.51.100.7") == "invalid"  # the third
    assert isinstance(outcome(db, "bob", WRONG, ip="198.51.100.7"), float)  # address full


def test_giving_back_never_goes_below_zero_nor_lifts_a_lock(db, make_user, clock, engine) -> None:
    make_user("alice")
    with fresh(engine) as s:
        attempt = throttle.count_attempt(s, "alice")
    with fresh(engine) as s:
        throttle.refund_attempt(s, attempt)
        throttle.refund_attempt(s, attempt)
    assert failures(engine, "alice") == 0
    fail_times(db, "alice", 4)
    with fresh(engine) as s:
        fifth = throttle.count_attempt(s, "alice")  # reaches the allowance: locks in advance
        throttle.refund_attempt(s, fifth)
    assert failures(engine, "alice") == 4
    assert isinstance(outcome(db, "alice", PASSWORD), float)  # the lock stays


def test_ipv6_addresses_count_per_64_block(db, clock, settings_env) -> None:
    settings_env(throttle_ip_max_failures=2)
    fail_times(db, "a", 1, ip="2001:db8:1:2::1")
    fail_times(db, "b", 1, ip="2001:db8:1:2:ffff::9")
    assert isinstance(outcome(db, "c", WRONG, ip="2001:db8:1:2::abcd"), float)
    assert outcome(db, "c", WRONG, ip="2001:db8:1:3::1") == "invalid"
    assert throttle.ip_key("::ffff:192.0.2.1") == "ip:192.0.2.1"
    assert throttle.ip_key("not an address").startswith("ip#")


def test_throttled_login_is_audited_without_the_password(db, make_user, clock, caplog) -> None:
    make_user("alice")
    fail_times(db, "alice", 5, ip="192.0.2.1")
    caplog.clear()
    with caplog.at_level("INFO", logger="studio_auth.audit"):
        assert authenticate(db, "alice", PASSWORD, ip="192.0.2.1", user_agent="ua/1") is None
    db.rollback()
    event = db.scalars(select(AuditEvent).where(AuditEvent.outcome == "throttled")).one()
    assert (event.event, event.username, event.client_ip) == ("login", "alice", "192.0.2.1")
    assert event.detail == {"retry_after": 2.0, "limited_by": "user", "user_agent": "ua/1"}
    assert len(caplog.records) == 1
    assert caplog.records[0].levelname == "WARNING"
    assert PASSWORD not in caplog.text


@pytest.fixture
def throttle_table_gone(engine: Engine) -> Iterator[None]:
    """The throttle store failing: its table renamed away, and restored afterwards."""
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE throttle_counters RENAME TO throttle_counters_off"))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE throttle_counters_off RENAME TO throttle_counters"))


def test_a_failed_throttle_store_refuses_sign_in(
    db, make_user, checkpw_counter, throttle_table_gone
) -> None:
    make_user("alice")
    checkpw_counter.calls = 0
    for call in (authenticate, check_credentials):
        with pytest.raises(Unavailable, match="throttle store failed"):
            call(db, "alice", PASSWORD)
        db.rollback()
    assert checkpw_counter.calls == 0


@pytest.fixture
def roomy_engine(engine: Engine) -> Iterator[Engine]:
    """The test database through a pool big enough for one connection per thread."""
    eng = make_engine(engine.url.render_as_string(hide_password=False), pool_size=55)
    if eng.dialect.name == "sqlite":
        eng.dispose()
        eng = make_engine(engine.url.render_as_string(hide_password=False))
    yield eng
    eng.dispose()


def _parallel(engine: Engine, n: int, attempt: Callable[[Session], object]) -> list[object]:
    start = threading.Barrier(n)
    sessions = make_sessionmaker(engine)

    def run(_: int) -> object:
        with sessions() as s:
            start.wait(timeout=30)
            return attempt(s)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def test_fifty_parallel_wrong_passwords_are_counted_exactly_and_bounded(
    make_user, clock, checkpw_counter, roomy_engine, engine
) -> None:
    make_user("alice")
    checkpw_counter.calls = 0
    results = _parallel(roomy_engine, 50, lambda s: authenticate(s, "alice", WRONG))
    assert results == [None] * 50
    assert failures(engine, "alice") == 50
    free = get_settings().throttle_free_failures
    assert checkpw_counter.calls == free
    with fresh(engine) as s:
        outcomes = s.scalars(select(AuditEvent.outcome).where(AuditEvent.event == "login")).all()
    assert sorted(outcomes) == ["failure"] * free + ["throttled"] * (50 - free)
    with fresh(engine) as s, pytest.raises(Throttled):
        check_credentials(s, "alice", PASSWORD)


def test_parallel_committed_sign_ins_are_each_counted_and_clear_the_name(
    make_user, clock, roomy_engine, engine, settings_env
) -> None:
    # Attempts in flight count until they end, so this many at once need a roomier
    # allowance (the next test shows what happens past it).
    settings_env(throttle_free_failures=100)
    user = make_user("alice")
    fail_before = 3
    for _ in range(fail_before):
        with fresh(engine) as s:
            assert authenticate(s, "alice", WRONG) is None

    def sign_in(s: Session) -> object:
        info = authenticate(s, "alice", PASSWORD)
        s.commit()
        return info is not None

    n = 20
    assert _parallel(roomy_engine, n, sign_in) == [True] * n
    with fresh(engine) as s:
        assert s.get(type(user), user.id).sign_in_count == n
        logins = s.scalars(select(AuditEvent.outcome).where(AuditEvent.event == "login")).all()
    assert sorted(logins) == ["failure"] * fail_before + ["success"] * n
    assert failures(engine, "alice") == 0


def test_parallel_correct_passwords_after_the_allowance_all_wait(
    make_user, clock, checkpw_counter, roomy_engine, engine
) -> None:
    make_user("alice")
    with fresh(engine) as s:
        fail_times(s, "alice", 5)
    checkpw_counter.calls = 0
    results = _parallel(roomy_engine, 20, lambda s: authenticate(s, "alice", PASSWORD))
    assert results == [None] * 20
    assert checkpw_counter.calls == 0


def test_of_two_attempts_racing_for_the_lock_only_one_goes_on(
    engine, make_user, clock, monkeypatch
) -> None:
    # Both attempts count themselves past the allowance; the second takes the lock
    # between the first one's count and its own lock. The first must then be refused.
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite counts and locks in one write transaction: no rival fits between")
    make_user("alice")
    with fresh(engine) as s:
        fail_times(s, "alice", get_settings().throttle_free_failures - 1)
    real_next_delay = throttle.next_delay
    seen: list[throttle.Attempt] = []

    def next_delay_with_a_rival(previous, settings=None):  # type: ignore[no-untyped-def]
        if not seen:
            seen.append(throttle.Attempt("", None, None, True))  # only the first time
            with fresh(engine) as rival:
                seen.append(throttle.count_attempt(rival, "alice"))
        return real_next_delay(previous, settings)

    monkeypatch.setattr(throttle, "next_delay", next_delay_with_a_rival)
    with fresh(engine) as s:
        first = throttle.count_attempt(s, "alice")
    assert seen[1].allowed is True
    assert first.allowed is False and first.limited_by == "user"
    assert first.retry_after == pytest.approx(get_settings().throttle_base_delay_seconds)
    assert failures(engine, "alice") == get_settings().throttle_free_failures + 1


def test_counter_writes_leave_the_connection_fully_durable(engine, clock) -> None:
    # On PostgreSQL a counter statement skips the WAL-flush wait for its own transaction
    # only; the pooled connection it ran on must be back to the full guarantee (on
    # SQLite, to the configured synchronous=NORMAL).
    with fresh(engine) as s:
        attempt = throttle.count_attempt(s, "alice", ip="192.0.2.1")
        throttle.refund_address(s, attempt)
    query, expected = ("SHOW synchronous_commit", "on")
    if engine.dialect.name == "sqlite":
        query, expected = ("PRAGMA synchronous", 1)
    for _ in range(engine.pool.size()):
        with engine.connect() as conn:
            assert conn.scalar(text(query)) == expected


def test_parallel_attempts_across_names_and_addresses_count_exactly(
    clock, roomy_engine, engine, settings_env
) -> None:
    # Crossing name and address pairs in parallel must neither deadlock nor lose a count.
    settings_env(throttle_free_failures=1000, throttle_ip_max_failures=1000)
    pairs = [(name, ip) for name in ("alice", "bob") for ip in ("10.0.0.1", "10.0.0.2")] * 10

    def attempt(s: Session) -> object:
        name, ip = pairs.pop()
        return throttle.count_attempt(s, name, ip=ip).allowed

    assert _parallel(roomy_engine, len(pairs), attempt) == [True] * 40
    assert failures(engine, "alice") == failures(engine, "bob") == 20
    with fresh(engine) as s:
        for ip in ("10.0.0.1", "10.0.0.2"):
            row = s.get(ThrottleCounter, throttle.ip_key(ip))
            assert row is not None and row.failures == 20
