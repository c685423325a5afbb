"""The audit trail: durability, what is stored and logged, listing and pruning."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from data.db.session import make_sessionmaker
from data.models import Artist, AuditEvent
from services.audit import (
    REDACTED,
    USERNAME_MAX_LENGTH,
    _escape_each,
    add_event,
    attempted_username,
    commit_event,
    escape_text,
    list_events,
    prune_events,
)
from services.auth import authenticate
from services.errors import InvalidRequest
from tests.conftest import DEFAULT_PASSWORD as PASSWORD


def stored(engine: Engine) -> list[AuditEvent]:
    with make_sessionmaker(engine)() as s:
        return list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def test_record_commits_and_rolls_back_with_the_caller(db, engine) -> None:
    add_event(db, "user_updated", user_id=1)
    db.rollback()
    assert stored(engine) == []
    add_event(db, "user_updated", user_id=1)
    db.commit()
    assert [e.event for e in stored(engine)] == ["user_updated"]


def test_record_now_is_kept_whatever_the_caller_does(db, engine) -> None:
    db.add(Artist(name="pending"))
    db.flush()  # on SQLite the caller now holds the write lock
    commit_event(db, "login", "failure", username="mallory")
    db.rollback()
    commit_event(db, "login", "failure", username="eve")
    db.close()  # never committed
    assert [e.username for e in stored(engine)] == ["mallory", "eve"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Alice ", "alice"),
        ("ＡＤＭＩＮ", "admin"),
        ("evil\nuser", "evil\\x0auser"),
        ("a\x00b", "a\\x00b"),
        ("\ud800x", "\\ud800x"),
        ("\x1b[31mred", "\\x1b[31mred"),
        (None, None),
        (42, None),
    ],
)
def test_attempted_usernames_are_normalized_or_escaped(raw, expected) -> None:
    assert attempted_username(raw) == expected


def test_huge_attempted_usernames_are_truncated(db, engine) -> None:
    commit_event(db, "login", "failure", username="\n" * 100_000)
    (event,) = stored(engine)
    assert event.username is not None
    assert len(event.username) <= USERNAME_MAX_LENGTH
    assert "\n" not in event.username
    assert escape_text("x" * 500) == "x" * USERNAME_MAX_LENGTH


@pytest.mark.parametrize("code", range(128))
def test_every_ascii_character_is_escaped_as_before_on_the_fast_path(code: int) -> None:
    text = f"ana{chr(code)}bel"
    assert escape_text(text) == _escape_each(text, USERNAME_MAX_LENGTH)


@settings(max_examples=300)
@given(st.text(), st.integers(min_value=0, max_value=300))
def test_escaped_text_does_not_depend_on_which_path_ran(text: str, limit: int) -> None:
    escaped = escape_text(text, limit)
    assert escaped == _escape_each(text, limit)
    assert len(escaped) <= limit
    assert not any(
        ord(c) < 0x20 or ord(c) == 0x7F or 0x80 <= ord(c) < 0xA0 or 0xD800 <= ord(c) < 0xE000
        for c in escaped
    )


def test_secret_looking_detail_is_redacted_and_bounded(db, engine) -> None:
    add_event(
        db,
        "password_changed",
        user_id=1,
        detail={
            "new_password": PASSWORD,
            "token": "sat_abc",
            "Client_Secret": "s3",
            "note": "line1\nline2" + "y" * 1000,
            "nested": {"refresh_token": "t", "ok": [1, "two\r"]},
            **{f"k{i}": i for i in range(40)},
        },
    )
    db.commit()
    (event,) = stored(engine)
    detail = event.detail
    assert detail["new_password"] == detail["token"] == detail["Client_Secret"] == REDACTED
    assert detail["nested"] == {"refresh_token": REDACTED, "ok": [1, "two\\x0d"]}
    assert detail["note"].startswith("line1\\x0aline2")
    assert len(detail["note"]) <= 256
    assert len(detail) <= 16
    assert PASSWORD not in json.dumps(detail)


def test_each_event_is_one_structured_log_line(db, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="studio_auth.audit"):
        add_event(db, "user_created", user_id=3, username="Rin", detail={"role": "artist"})
        commit_event(db, "login", "failure", username="bad\nname", ip="10.0.0.9")
    first, second = caplog.records
    assert first.levelno == logging.INFO
    assert second.levelno == logging.WARNING
    for rec in (first, second):
        message = rec.getMessage()
        assert "\n" not in message
        payload = json.loads(message.removeprefix("audit "))
        assert {"at", "event", "outcome", "user_id", "username", "ip", "detail"} <= set(payload)
    assert json.loads(second.getMessage()[6:])["username"] == "bad\\x0aname"


def test_sign_ins_are_audited_without_passwords(db, make_user, engine, clock, caplog) -> None:
    alice = make_user("Alice")
    with caplog.at_level(logging.DEBUG):
        assert authenticate(db, "ALICE", PASSWORD, ip="192.0.2.4", user_agent="Krita/5") is not None
        db.commit()
        assert authenticate(db, "alice", "wrong " + PASSWORD) is None
        assert authenticate(db, "nobody", PASSWORD) is None
        db.rollback()
    events = [(e.event, e.outcome, e.user_id, e.username) for e in stored(engine)]
    assert events == [
        ("login", "success", alice.id, "alice"),
        ("login", "failure", alice.id, "alice"),
        ("login", "failure", None, "nobody"),
    ]
    assert stored(engine)[0].client_ip == "192.0.2.4"
    assert stored(engine)[0].detail == {"user_agent": "Krita/5"}
    everything = caplog.text + json.dumps([e.detail for e in stored(engine)])
    assert PASSWORD not in everything


def _seed(db: Session, clock) -> None:
    add_event(db, "user_created", user_id=1, username="alice")
    clock.advance(hours=1)
    add_event(db, "login", "failure", user_id=1, username="alice")
    clock.advance(hours=1)
    add_event(db, "login", "failure", username="ghost")
    add_event(db, "login", "success", user_id=2, username="bob")
    db.commit()


def test_list_events_filters_and_orders_newest_first(db, make_user, clock) -> None:
    make_user("alice")  # id 1
    _seed(db, clock)
    assert [e.username for e in list_events(db)] == ["bob", "ghost", "alice", "alice"]
    assert [e.event for e in list_events(db, user_id=1)] == ["login", "user_created"]
    assert len(list_events(db, username="ALICE")) == 2
    assert [e.username for e in list_events(db, username="ghost")] == ["ghost"]
    assert [e.username for e in list_events(db, event="login", outcome="failure")] == [
        "ghost",
        "alice",
    ]
    since = clock.now - timedelta(minutes=90)
    assert [e.username for e in list_events(db, since=since)] == ["bob", "ghost", "alice"]
    assert [e.username for e in list_events(db, limit=1)] == ["bob"]
    with pytest.raises(InvalidRequest):
        list_events(db, limit=0)


def test_prune_deletes_only_old_events_and_records_itself(db, clock) -> None:
    _seed(db, clock)
    clock.advance(hours=47.5)  # the cutoff falls between the first two and the rest
    add_event(db, "logout", user_id=2)
    db.commit()
    assert prune_events(db, older_than=timedelta(days=2)) == 2
    db.commit()
    left = [(e.event, e.outcome) for e in list_events(db)]
    assert left == [
        ("audit_pruned", "success"),
        ("logout", "success"),
        ("login", "success"),
        ("login", "failure"),
    ]
    assert list_events(db, event="audit_pruned")[0].detail["deleted"] == 2


@pytest.mark.parametrize("older_than", [timedelta(0), timedelta(hours=23), timedelta(days=-5)])
def test_prune_refuses_to_erase_the_recent_trail(db, older_than) -> None:
    with pytest.raises(InvalidRequest):
        prune_events(db, older_than=older_than)
