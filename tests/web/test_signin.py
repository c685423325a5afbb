"""Signing in through the two pools: counted on the throttle pool, checked on the
password pool at the priority admission gives, refunded when the password pool refuses."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from data.models import User
from studio_auth.settings import Settings
from studio_auth.web.app import create_app
from studio_auth.web.pool import Priority
from tests.conftest import DEFAULT_PASSWORD
from tests.web.conftest import assert_problem, wait_for


def test_a_name_with_recent_failures_gets_no_last_slot_in_the_pool(
    engine: Engine, make_user: Callable[..., User]
) -> None:
    make_user("ana")
    make_user("bea")
    app = create_app(Settings(password_workers=1, password_queue=1), engine=engine)
    pool = app.state.password_pool
    release = threading.Event()
    right = {"username": "bea", "password": DEFAULT_PASSWORD}
    with TestClient(app) as client:
        assert client.post("/auth/login", json=right).status_code == 200  # a known address
        wrong = client.post("/auth/login", json={"username": "ana", "password": "not it"})
        assert wrong.status_code == 401
        busy = pool.submit(release.wait, Priority.HIGH)  # one of two slots taken
        try:
            response = client.post(
                "/auth/login", json={"username": "ana", "password": DEFAULT_PASSWORD}
            )
            assert_problem(response, 503, "overloaded")
            # A clean name from a known address still gets the last slot (it waits).
            clean = ThreadPoolExecutor(1).submit(client.post, "/auth/login", json=right)
            wait_for(lambda: pool.admitted == 2)
        finally:
            release.set()
            busy.result(timeout=10)
        assert clean.result(timeout=30).status_code == 200
        again = client.post("/auth/login", json={"username": "ana", "password": DEFAULT_PASSWORD})
        assert again.status_code == 200


def test_an_address_with_many_failures_gets_no_last_slot_in_the_pool(
    engine: Engine, make_user: Callable[..., User], settings_env: Callable[..., None]
) -> None:
    settings_env(throttle_free_failures=3)
    make_user("bea")
    make_user("cat")
    settings = Settings(password_workers=1, password_queue=1, trusted_proxies="127.0.0.1/32")
    app = create_app(settings, engine=engine)
    pool = app.state.password_pool
    release = threading.Event()

    def sign_in(name: str, password: str, address: str) -> Any:
        headers = {"X-Forwarded-For": address}
        body = {"username": name, "password": password}
        return client.post("/auth/login", json=body, headers=headers)

    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        # Both addresses are known: someone signed in from each.
        assert sign_in("bea", DEFAULT_PASSWORD, "198.51.100.7").status_code == 200
        assert sign_in("cat", DEFAULT_PASSWORD, "192.0.2.1").status_code == 200
        for name in ("cy", "di", "ed"):  # one failure each, all from one address
            assert sign_in(name, "not it", "198.51.100.7").status_code == 401
        busy = pool.submit(release.wait, Priority.HIGH)  # one of two slots taken
        try:
            # bea has no failures, but her attempt comes from that address.
            assert_problem(sign_in("bea", DEFAULT_PASSWORD, "198.51.100.7"), 503, "overloaded")
            clean = ThreadPoolExecutor(1).submit(sign_in, "cat", DEFAULT_PASSWORD, "192.0.2.1")
            wait_for(lambda: pool.admitted == 2)
        finally:
            release.set()
            busy.result(timeout=10)
        assert clean.result(timeout=30).status_code == 200
        assert sign_in("bea", DEFAULT_PASSWORD, "198.51.100.7").status_code == 200


def test_refusals_for_want_of_a_slot_never_lock_the_name_out(
    engine: Engine, make_user: Callable[..., User], db: Any
) -> None:
    from services import throttle

    make_user("ana")
    make_user("bea")
    app = create_app(Settings(password_workers=1, password_queue=1), engine=engine)
    release = threading.Event()
    ana = {"username": "ana", "password": DEFAULT_PASSWORD}
    with TestClient(app) as client:
        assert client.post("/auth/login", json={**ana, "username": "bea"}).status_code == 200
        assert client.post("/auth/login", json={**ana, "password": "not it"}).status_code == 401
        busy = app.state.password_pool.submit(release.wait, Priority.HIGH)
        try:
            # Counted from a known address, then LOW (the name's failure): no slot.
            for _ in range(10):
                assert_problem(client.post("/auth/login", json=ana), 503, "overloaded")
        finally:
            release.set()
            busy.result(timeout=10)
        counter = throttle.current_counter(db, "ana")
        assert counter is not None and counter.failures == 1
        assert client.post("/auth/login", json=ana).status_code == 200


def test_a_known_address_gets_the_last_slot_and_a_new_one_does_not(
    engine: Engine, make_user: Callable[..., User]
) -> None:
    # A spray of guesses from fresh addresses can fill every slot a new sign-in may
    # take; staff signing in from their usual address still get one, and go first.
    make_user("bea")
    settings = Settings(password_workers=1, password_queue=2, trusted_proxies="127.0.0.1/32")
    app = create_app(settings, engine=engine)
    pool = app.state.password_pool
    assert pool.reserved_above_normal == 1
    release = threading.Event()
    started: list[str] = []

    def sign_in(address: str) -> int:
        headers = {"X-Forwarded-For": address}
        body = {"username": "bea", "password": DEFAULT_PASSWORD}
        return client.post("/auth/login", json=body, headers=headers).status_code

    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        assert sign_in("192.0.2.1") == 200
        busy = pool.submit(release.wait, Priority.HIGH)
        queued = pool.submit(lambda: started.append("new"), Priority.NORMAL)
        try:
            assert sign_in("198.51.100.9") == 503  # normal: only the reserved slot is left
            known = ThreadPoolExecutor(1).submit(sign_in, "192.0.2.1")
            wait_for(lambda: pool.admitted == 3)
        finally:
            release.set()
            busy.result(timeout=10)
        assert known.result(timeout=30) == 200
        queued.result(timeout=10)
        assert started == ["new"]
        assert sign_in("198.51.100.9") == 200  # with room, a new address signs in
        assert "198.51.100.9" in app.state.known_addresses


def test_full_password_pool_gives_503_to_logins_but_me_still_answers(
    engine: Engine, make_user: Callable[..., User]
) -> None:
    make_user("ana")
    app = create_app(Settings(password_workers=1, password_queue=0), engine=engine)
    release = threading.Event()
    with TestClient(app) as client:
        token = client.post(
            "/auth/login", json={"username": "ana", "password": DEFAULT_PASSWORD}
        ).json()["access_token"]
        busy = app.state.password_pool.submit(release.wait, Priority.HIGH)
        try:
            response = client.post(
                "/auth/login", json={"username": "ana", "password": DEFAULT_PASSWORD}
            )
            assert_problem(response, 503, "overloaded")
            assert response.headers["retry-after"] == "1"
            changed = client.post(
                "/auth/password",
                json={"current_password": DEFAULT_PASSWORD, "new_password": "x" * 20},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert_problem(changed, 503, "overloaded")
            me = client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200
        finally:
            release.set()
            busy.result(timeout=10)
        again = client.post("/auth/login", json={"username": "ana", "password": DEFAULT_PASSWORD})
        assert again.status_code == 200


def test_throttled_logins_never_enter_the_password_pool(
    engine: Engine,
    make_user: Callable[..., User],
    settings_env: Callable[..., None],
    clock: object,
    checkpw_counter: Any,
) -> None:
    settings_env(throttle_free_failures=1, throttle_base_delay_seconds=60)
    make_user("ana")
    app = create_app(Settings(password_workers=1, password_queue=0), engine=engine)
    with TestClient(app) as client:
        wrong = {"username": "ana", "password": "not the password"}
        assert client.post("/auth/login", json=wrong).status_code == 401
        pool = app.state.password_pool
        submitted: list[object] = []
        original = pool.submit

        def spy(work: Any, *args: Any, **kw: Any) -> Any:
            submitted.append(work)
            return original(work, *args, **kw)

        pool.submit = spy
        checkpw_counter.calls = 0
        for _ in range(5):
            assert_problem(client.post("/auth/login", json=wrong), 429, "throttled")
        assert submitted == []
        assert checkpw_counter.calls == 0


@pytest.mark.parametrize(
    ("pool", "sizes"),
    [
        ("password_pool", {"password_workers": 1, "password_queue": 0}),
        ("throttle_pool", {"throttle_workers": 1, "throttle_queue": 0}),
    ],
)
def test_a_full_pool_refuses_at_once_before_the_attempt_is_counted(
    engine: Engine, make_user: Callable[..., User], db: Any, pool: str, sizes: dict[str, int]
) -> None:
    from data.models import ThrottleCounter

    make_user("ana")
    app = create_app(Settings(**sizes), engine=engine)
    release = threading.Event()
    right = {"username": "ana", "password": DEFAULT_PASSWORD}
    with TestClient(app) as client:
        busy = getattr(app.state, pool).submit(release.wait, Priority.HIGH)
        try:
            for _ in range(10):
                response = client.post("/auth/login", json=right)
                assert_problem(response, 503, "overloaded")
                assert response.headers["retry-after"] == "1"
        finally:
            release.set()
            busy.result(timeout=10)
        assert db.query(ThrottleCounter).count() == 0
        assert client.post("/auth/login", json=right).status_code == 200


def test_attempts_are_counted_on_the_throttle_pool_not_the_shared_one(
    engine: Engine, make_user: Callable[..., User], monkeypatch: pytest.MonkeyPatch
) -> None:
    import studio_auth.web.signin as signin

    make_user("ana")
    threads: list[str] = []
    original = signin.check_throttle

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(signin, "check_throttle", spy)
    with TestClient(create_app(Settings(), engine=engine)) as client:
        wrong = {"username": "ana", "password": "not the password"}
        assert client.post("/auth/login", json=wrong).status_code == 401
        right = {"username": "ana", "password": DEFAULT_PASSWORD}
        assert client.post("/auth/login", json=right).status_code == 200
    assert len(threads) == 2
    assert all(name.startswith("throttle") for name in threads), threads
