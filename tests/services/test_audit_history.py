"""sign_in_history: the Account page's last sign-ins and the failures since the previous."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from data.models import User
from services import audit, sessions
from services.auth import authenticate
from services.errors import InvalidCredentials
from tests.conftest import DEFAULT_PASSWORD, FakeClock


def _sign_in(db: Session, name: str, password: str = DEFAULT_PASSWORD) -> None:
    sessions.login(db, name, password, ip="192.0.2.7", user_agent="Firefox")


def _fail(db: Session, name: str) -> None:
    with pytest.raises(InvalidCredentials):
        sessions.login(db, name, "wrong password", ip="192.0.2.9")


def test_failures_since_the_previous_sign_in_only(
    db: Session, make_user: Callable[..., User], clock: FakeClock
) -> None:
    user = make_user("ana")
    _fail(db, "ana")  # before the previous sign-in: not shown
    clock.advance(60)
    _sign_in(db, "ana")
    clock.advance(60)
    _fail(db, "ana")
    clock.advance(60)
    _fail(db, "ANA ")  # the same account under another spelling
    clock.advance(60)
    _sign_in(db, "ana")
    history = audit.sign_in_history(db, user.id, "ana")
    assert [e.detail.get("user_agent") for e in history.recent] == ["Firefox", "Firefox"]
    assert len(history.failures) == 2
    assert history.failures[0].at > history.failures[1].at > history.recent[1].at


def test_a_password_check_without_a_client_is_no_sign_in(
    db: Session, make_user: Callable[..., User], clock: FakeClock
) -> None:
    user = make_user("ana")
    _sign_in(db, "ana")
    clock.advance(60)
    assert authenticate(db, "ana", DEFAULT_PASSWORD) is not None  # a library caller
    db.commit()
    history = audit.sign_in_history(db, user.id, "ana")
    assert len(history.recent) == 1
    assert history.recent[0].client_ip == "192.0.2.7"
    assert history.failures == []


def test_list_events_pages_and_bounds(
    db: Session, make_user: Callable[..., User], clock: FakeClock
) -> None:
    make_user("ana")
    start = clock.now
    for _ in range(5):
        clock.advance(60)
        _fail(db, "ana")
    failures = audit.list_events(db, event="login", outcome="failure", limit=2, offset=1)
    everything = audit.list_events(db, event="login", outcome="failure")
    assert [e.id for e in failures] == [e.id for e in everything[1:3]]
    window = audit.list_events(
        db, event="login", since=start + (everything[3].at - start), until=everything[0].at
    )
    assert [e.id for e in window] == [e.id for e in everything[1:4]]
    assert "login" in audit.event_types(db)
