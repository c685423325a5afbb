"""User administration: permissions, guards, session endings, passwords, races."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from data.db.session import make_sessionmaker
from data.models import AuditEvent, AuthSession, Role, User
from services.auth import authenticate, user_info
from services.errors import (
    InvalidCredentials,
    InvalidRequest,
    NotFound,
    PasswordRejected,
    PermissionDenied,
    UserExists,
)
from services.sessions import issue_session, resolve_session
from services.users import (
    activate,
    change_password,
    create_user,
    deactivate,
    get_user,
    link_artist,
    reset_password,
    set_role,
    update_user,
)
from tests.conftest import DEFAULT_PASSWORD

NEW_PASSWORD = "velvet thunder over the harbour"
THREADS = 20


def _events(engine, name: str) -> list[AuditEvent]:
    with Session(engine) as other:
        return list(other.scalars(select(AuditEvent).where(AuditEvent.event == name)))


def _live_sessions(db, user_id: int) -> int:
    return db.scalar(
        select(func.count())
        .select_from(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
    )


@pytest.fixture
def boss(make_user):
    return make_user("boss", role=Role.ADMIN)


# -- permissions -----------------------------------------------------------------------


def test_admin_creates_and_it_is_audited(db, engine, boss):
    user = create_user(db, "Desk.One", NEW_PASSWORD, "assistant", actor=user_info(boss))
    db.commit()
    assert user.role is Role.ASSISTANT
    (event,) = _events(engine, "user_created")
    assert (event.user_id, event.actor_id) == (user.id, boss.id)
    assert authenticate(db, "desk.one", NEW_PASSWORD)


@pytest.mark.parametrize("role", [Role.ASSISTANT, Role.ARTIST])
def test_only_admins_administer(db, engine, make_user, role):
    actor = user_info(make_user("someone", role=role))
    target = make_user("target")
    calls = [
        lambda: create_user(db, "newbie", NEW_PASSWORD, "assistant", actor=actor),
        lambda: set_role(db, target.id, "admin", actor=actor),
        lambda: deactivate(db, target.id, actor=actor),
        lambda: activate(db, target.id, actor=actor),
        lambda: reset_password(db, target.id, NEW_PASSWORD, actor=actor),
        lambda: update_user(db, target.id, is_active=False, actor=actor),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied, match=r"staff\.manage_users"):
            call()
    db.rollback()
    assert len(_events(engine, "permission_denied")) == len(calls)
    assert db.get(User, target.id).is_active


# -- creation guards -------------------------------------------------------------------


def test_artist_account_needs_an_existing_artist(db, make_artist):
    with pytest.raises(InvalidRequest, match="needs an artist"):
        create_user(db, "ink", NEW_PASSWORD, "artist")
    with pytest.raises(NotFound, match="no artist"):
        create_user(db, "ink", NEW_PASSWORD, "artist", artist_id=4242)
    with pytest.raises(InvalidRequest, match="only artist accounts"):
        create_user(db, "desk", NEW_PASSWORD, "assistant", artist_id=make_artist().id)
    artist = make_artist("Rin")
    assert create_user(db, "ink", NEW_PASSWORD, "artist", artist_id=artist.id).artist_id


def test_new_password_follows_the_policy(db):
    with pytest.raises(PasswordRejected, match="at least 12"):
        create_user(db, "desk", "short", "assistant")
    with pytest.raises(PasswordRejected, match="username"):
        create_user(db, "deskdesk", "DeskDesk2026!", "assistant")


def test_duplicate_name_after_normalization(db, make_user):
    make_user("Alice")
    with pytest.raises(UserExists, match="already exists"):
        create_user(db, " ALICE ", NEW_PASSWORD, "assistant")


def test_parallel_creation_of_one_name(engine):
    factory = make_sessionmaker(engine)
    barrier = threading.Barrier(THREADS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        with factory() as db:
            barrier.wait()
            try:
                create_user(db, "Popular", NEW_PASSWORD, "assistant")
                db.commit()
                result = "created"
            except UserExists as exc:
                result = "exists" if "already exists" in str(exc) else repr(exc)
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert Counter(outcomes) == {"created": 1, "exists": THREADS - 1}
    with factory() as db:
        assert db.scalar(select(func.count()).select_from(User)) == 1


# -- the last admin and oneself ---------------------------------------------------------


def test_last_active_admin_cannot_be_deactivated_or_demoted(db, boss, make_user):
    for change in (
        lambda: deactivate(db, boss.id),
        lambda: set_role(db, boss.id, "assistant"),
        lambda: update_user(db, boss.id, role="assistant", is_active=False),
    ):
        with pytest.raises(InvalidRequest, match="last active admin"):
            change()
        db.rollback()
    make_user("former", role=Role.ADMIN, is_active=False)  # an inactive admin does not count
    with pytest.raises(InvalidRequest, match="last active admin"):
        deactivate(db, boss.id)
    db.rollback()
    second = make_user("second", role=Role.ADMIN)
    assert set_role(db, boss.id, "assistant").role is Role.ASSISTANT
    db.commit()
    with pytest.raises(InvalidRequest, match="last active admin"):
        deactivate(db, second.id)


def test_parallel_demotions_leave_one_admin(engine, db, make_user):
    admins = [make_user(f"admin{i}", role=Role.ADMIN) for i in range(2)]
    ids = [a.id for a in admins]
    factory = make_sessionmaker(engine)
    barrier = threading.Barrier(len(ids))
    outcomes: list[str] = []
    lock = threading.Lock()

    def demote(user_id: int, actor_id: int) -> None:
        with factory() as own:
            actor = user_info(own.get(User, actor_id))
            barrier.wait()
            try:
                set_role(own, user_id, "assistant", actor=actor)
                own.commit()
                result = "demoted"
            except InvalidRequest:
                own.rollback()
                result = "refused"
        with lock:
            outcomes.append(result)

    # Each admin demotes the other at the same moment.
    threads = [
        threading.Thread(target=demote, args=(ids[0], ids[1])),
        threading.Thread(target=demote, args=(ids[1], ids[0])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert Counter(outcomes) == {"demoted": 1, "refused": 1}
    with factory() as check:
        count = check.scalar(
            select(func.count()).where(User.role == Role.ADMIN, User.is_active.is_(True))
        )
    assert count == 1


def test_parallel_deactivations_leave_one_admin(engine, make_user):
    ids = [make_user(f"admin{i}", role=Role.ADMIN).id for i in range(4)]
    factory = make_sessionmaker(engine)
    barrier = threading.Barrier(len(ids))
    results: list[bool] = []
    lock = threading.Lock()

    def attempt(user_id: int) -> None:
        with factory() as own:
            barrier.wait()
            try:
                deactivate(own, user_id)
                own.commit()
                ok = True
            except InvalidRequest:
                own.rollback()
                ok = False
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results.count(True) == 3
    with factory() as check:
        active = check.scalar(
            select(func.count()).where(User.role == Role.ADMIN, User.is_active.is_(True))
        )
    assert active == 1


def test_nobody_changes_their_own_role_or_deactivates_themselves(db, boss, make_user):
    make_user("second", role=Role.ADMIN)
    me = user_info(boss)
    with pytest.raises(InvalidRequest, match="own role"):
        set_role(db, boss.id, "assistant", actor=me)
    with pytest.raises(InvalidRequest, match="own account"):
        deactivate(db, boss.id, actor=me)
    with pytest.raises(InvalidRequest, match="current one"):
        reset_password(db, boss.id, NEW_PASSWORD, actor=me)
    # Setting one's own role to what it already is changes nothing.
    assert set_role(db, boss.id, "admin", actor=me).role is Role.ADMIN


# -- changes end sessions ---------------------------------------------------------------


def test_role_artist_and_activation_changes_end_all_sessions(db, engine, boss, make_user):
    actor = user_info(boss)
    user = make_user("desk")
    for change in (
        lambda: set_role(db, user.id, "artist", artist_id=_artist(db), actor=actor),
        lambda: link_artist(db, user.id, _artist(db), actor=actor),
        lambda: deactivate(db, user.id, actor=actor),
    ):
        tokens = [issue_session(db, user.id).token for _ in range(2)]
        db.commit()
        change()
        db.commit()
        assert _live_sessions(db, user.id) == 0
        assert all(resolve_session(db, t) is None for t in tokens)
        if get_user(db, user.id).is_active is False:
            break
    reasons = [e.detail["reason"] for e in _events(engine, "session_revoked")]
    assert reasons == ["role_changed"] * 2 + ["artist_changed"] * 2 + ["deactivated"] * 2
    assert authenticate(db, "desk", DEFAULT_PASSWORD) is None
    activate(db, user.id, actor=actor)
    db.commit()
    assert authenticate(db, "desk", DEFAULT_PASSWORD)
    kinds = [e.event for e in _events_all(engine) if e.event.startswith("user_")]
    assert kinds == [
        "user_role_changed",
        "user_artist_linked",
        "user_artist_linked",
        "user_deactivated",
        "user_activated",
    ]


def _artist(db) -> int:
    from services.artists import create_artist

    return create_artist(db, "Rin").id


def _events_all(engine) -> list[AuditEvent]:
    with Session(engine) as other:
        return list(other.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def test_update_user_rules(db, make_user, make_artist):
    artist_user = make_user("ink", role=Role.ARTIST)
    with pytest.raises(InvalidRequest, match="only artist accounts"):
        update_user(db, artist_user.id, role="assistant", artist_id=make_artist().id)
    user = update_user(db, artist_user.id, role="assistant")
    assert (user.role, user.artist_id) == (Role.ASSISTANT, None)
    with pytest.raises(InvalidRequest, match="needs an artist"):
        update_user(db, user.id, role="artist")
    with pytest.raises(InvalidRequest, match="is_active"):
        update_user(db, user.id, is_active="no")
    with pytest.raises(InvalidRequest, match="unknown role"):
        update_user(db, user.id, role="owner")
    with pytest.raises(InvalidRequest, match="only artist accounts"):
        link_artist(db, user.id, make_artist().id)
    with pytest.raises(NotFound):
        update_user(db, user.id, role="artist", artist_id=987654)
    with pytest.raises(NotFound):
        deactivate(db, 987654)


@pytest.mark.parametrize("user_id", [None, 0, -1, True, "1", 2**40, 1.0])
def test_get_user_bad_ids(db, make_user, user_id):
    make_user("alice")
    assert get_user(db, user_id) is None


# -- passwords --------------------------------------------------------------------------


def test_reset_password_ends_sessions_and_requires_a_change(db, engine, boss, make_user):
    user = make_user("desk")
    token = issue_session(db, user.id).token
    db.commit()
    with pytest.raises(PasswordRejected):
        reset_password(db, user.id, "password1234", actor=user_info(boss))
    reset_password(db, user.id, NEW_PASSWORD, actor=user_info(boss))
    db.commit()
    assert resolve_session(db, token) is None
    info = authenticate(db, "desk", NEW_PASSWORD)
    assert info is not None
    assert info["must_change_password"] is True
    (event,) = _events(engine, "password_reset")
    assert event.actor_id == boss.id
    reset_password(db, user.id, "another long passphrase here", must_change=False)
    assert get_user(db, user.id).must_change_password is False


def test_change_password_rotates_the_current_session(db, engine, clock, make_user):
    user = make_user("desk")
    user.must_change_password = True
    db.commit()
    current = issue_session(db, user.id)
    other = issue_session(db, user.id)
    db.commit()
    before = get_user(db, user.id).password_changed_at
    clock.advance(60)
    fresh = change_password(
        db, user.id, DEFAULT_PASSWORD, NEW_PASSWORD, session_id=current.session_id
    )
    db.commit()
    assert fresh is not None
    assert fresh.session_id != current.session_id
    assert resolve_session(db, current.token) is None
    assert resolve_session(db, other.token) is None
    assert resolve_session(db, fresh.token)["id"] == user.id
    changed = get_user(db, user.id)
    assert changed.must_change_password is False
    assert changed.password_changed_at - before == timedelta(seconds=60)
    assert authenticate(db, "desk", NEW_PASSWORD)
    assert authenticate(db, "desk", DEFAULT_PASSWORD) is None
    assert len(_events(engine, "password_changed")) == 1


def test_change_password_without_a_session_ends_them_all(db, make_user):
    user = make_user("desk")
    token = issue_session(db, user.id).token
    db.commit()
    assert change_password(db, user.id, DEFAULT_PASSWORD, NEW_PASSWORD) is None
    db.commit()
    assert resolve_session(db, token) is None


def test_change_password_guards(db, engine, make_user):
    user = make_user("desk")
    stranger = make_user("stranger")
    theirs = issue_session(db, stranger.id)
    db.commit()
    with pytest.raises(InvalidCredentials):
        change_password(db, user.id, "not my password at all", NEW_PASSWORD)
    db.rollback()
    assert [e.outcome for e in _events(engine, "login")] == ["failure"]
    with pytest.raises(PasswordRejected, match="differ"):
        change_password(db, user.id, DEFAULT_PASSWORD, DEFAULT_PASSWORD)
    db.rollback()
    with pytest.raises(PasswordRejected, match="username"):
        change_password(db, user.id, DEFAULT_PASSWORD, "desk1234567890")
    db.rollback()
    with pytest.raises(InvalidRequest, match="session"):
        change_password(db, user.id, DEFAULT_PASSWORD, NEW_PASSWORD, session_id=theirs.session_id)
    db.rollback()
    assert resolve_session(db, theirs.token) is not None
    with pytest.raises(NotFound):
        change_password(db, 987654, DEFAULT_PASSWORD, NEW_PASSWORD)
