"""/auth through an HTTP client, as each role."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import anyio.to_thread
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from data.models import Role, User
from services import sessions
from services.auth import generate_session_token
from studio_auth.settings import get_settings
from tests.conftest import DEFAULT_PASSWORD, FakeClock
from tests.web.conftest import Account, assert_problem, bearer, sign_in

NEW_PASSWORD = "a fresh and unusual passphrase 42"
SECRET = "do-not-echo-this-secret-value"


def _login(client: TestClient, username: object, password: object) -> object:
    return client.post("/auth/login", json={"username": username, "password": password})


# --- login ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_login_returns_token_and_user_for_each_role(
    client: TestClient, make_user: Callable[..., User], role: Role
) -> None:
    user = make_user("pat", role=role)
    response = client.post("/auth/login", json={"username": "PAT", "password": DEFAULT_PASSWORD})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["access_token"].startswith("sat_")
    assert body["expires_at"]
    assert body["user"] == {
        "id": user.id,
        "username": "pat",
        "role": role.value,
        "artist_id": user.artist_id,
        "must_change_password": False,
    }


def test_every_credential_failure_is_the_same_401(
    client: TestClient, make_user: Callable[..., User]
) -> None:
    make_user("ana")
    make_user("old", is_active=False)
    answers = [
        client.post("/auth/login", json={"username": "nobody", "password": DEFAULT_PASSWORD}),
        client.post("/auth/login", json={"username": "ana", "password": "wrong password"}),
        client.post("/auth/login", json={"username": "old", "password": DEFAULT_PASSWORD}),
        client.post("/auth/login", json={"username": "", "password": ""}),
        client.post("/auth/login", json={"username": "a\x00b", "password": "x"}),
    ]
    first = answers[0]
    assert_problem(first, 401, "invalid-credentials")
    for response in answers:
        assert response.status_code == 401
        assert response.content == first.content
        assert response.headers["www-authenticate"] == first.headers["www-authenticate"]
        assert response.headers["cache-control"] == "no-store"


def test_throttled_login_is_429_with_retry_after(
    client: TestClient,
    make_user: Callable[..., User],
    settings_env: Callable[..., None],
    clock: FakeClock,
) -> None:
    settings_env(throttle_free_failures=1, throttle_base_delay_seconds=30)
    make_user("ana")
    assert _login(client, "ana", "wrong one").status_code == 401  # type: ignore[attr-defined]
    response = _login(client, "ana", DEFAULT_PASSWORD)
    body = assert_problem(response, 429, "throttled")
    assert int(response.headers["retry-after"]) == body["retry_after"]  # type: ignore[attr-defined]
    assert 1 <= int(response.headers["retry-after"]) <= 30  # type: ignore[attr-defined]
    clock.advance(31)
    assert _login(client, "ana", DEFAULT_PASSWORD).status_code == 200  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "payload",
    [
        {"username": "ana"},
        {"password": SECRET},
        {"username": ["ana"], "password": SECRET},
        {"username": "ana", "password": SECRET, "extra": SECRET},
        {"username": 5, "password": {"nested": SECRET}},
        [SECRET],
    ],
)
def test_malformed_login_is_422_without_echoing_the_input(
    client: TestClient, payload: object
) -> None:
    response = client.post("/auth/login", json=payload)
    body = assert_problem(response, 422, "validation-error")
    assert SECRET not in response.text
    assert body["errors"]


def test_non_json_login_is_422_without_echo(client: TestClient) -> None:
    response = client.post(
        "/auth/login", content=f"password={SECRET}", headers={"content-type": "application/json"}
    )
    assert_problem(response, 422, "validation-error")
    assert SECRET not in response.text


# --- bearer tokens ---------------------------------------------------------------------


def test_me_returns_user_and_session(client: TestClient, artist: Account) -> None:
    response = client.get("/auth/me", headers=artist.headers)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["user"]["id"] == artist.id
    assert body["user"]["role"] == "artist"
    assert body["user"]["artist_id"] == artist.user.artist_id
    assert body["session"]["id"] > 0
    assert body["session"]["elevated_until"] is None


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer sat_not-a-real-token"},
        {"Authorization": "Basic YWRtaW46cGFzc3dvcmQ="},
        {"Authorization": "Token sat_x"},
    ],
)
def test_me_without_a_valid_bearer_token_is_401(
    client: TestClient, headers: dict[str, str]
) -> None:
    response = client.get("/auth/me", headers=headers)
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")


class ThreadHops:
    """Counts calls handed to the thread pool, and SQL statements run."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real = real
        self.calls = 0
        self.statements = 0

    async def __call__(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return await self.real(func, *args, **kwargs)

    def on_execute(self, *_args: Any) -> None:
        self.statements += 1


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadHops]:
    counter = ThreadHops(anyio.to_thread.run_sync)
    monkeypatch.setattr(anyio.to_thread, "run_sync", counter)
    # Every engine, the app's event-loop reader included.
    event.listen(Engine, "before_cursor_execute", counter.on_execute)
    yield counter
    event.remove(Engine, "before_cursor_execute", counter.on_execute)


def _lookup_hops(engine: Engine) -> int:
    """Thread hops of one token lookup: none on SQLite (read on the event loop, where a
    WAL read never waits for a writer), one on PostgreSQL (a network round trip)."""
    return 0 if engine.dialect.name == "sqlite" else 1


def test_me_costs_at_most_one_thread_hop_and_one_statement(
    client: TestClient, assistant: Account, hops: ThreadHops, engine: Engine
) -> None:
    assert client.get("/auth/me", headers=assistant.headers).status_code == 200
    assert (hops.calls, hops.statements) == (_lookup_hops(engine), 1)


def test_a_due_last_seen_write_takes_the_thread_pool(
    clock: FakeClock, client: TestClient, assistant: Account, hops: ThreadHops, engine: Engine
) -> None:
    clock.advance(get_settings().session_touch_seconds + 1)
    assert client.get("/auth/me", headers=assistant.headers).status_code == 200
    # the read, then the UPDATE off the loop (PostgreSQL: both in one hop)
    assert (hops.calls, hops.statements) == (1, 2)
    hops.calls = hops.statements = 0
    assert client.get("/auth/me", headers=assistant.headers).status_code == 200
    assert (hops.calls, hops.statements) == (_lookup_hops(engine), 1)


def test_a_busy_sqlite_database_sends_the_lookup_to_the_thread_pool(
    client: TestClient, assistant: Account, hops: ThreadHops, engine: Engine
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL lookups always take the thread pool")
    with engine.connect() as conn:
        # An exclusive-mode writer: in WAL mode, the one lock that makes readers wait.
        conn.exec_driver_sql("PRAGMA locking_mode=EXCLUSIVE")
        conn.exec_driver_sql("BEGIN EXCLUSIVE")
        conn.exec_driver_sql("UPDATE users SET username = username")

        def release() -> None:
            conn.rollback()
            conn.exec_driver_sql("PRAGMA locking_mode=NORMAL")
            conn.exec_driver_sql("SELECT 1 FROM users")  # the change takes effect on use
            conn.rollback()

        waiting = threading.Timer(0.2, release)
        waiting.start()
        try:
            response = client.get("/auth/me", headers=assistant.headers)
        finally:
            waiting.join()
    assert response.status_code == 200
    assert hops.calls == 1  # the loop did not wait: the pool did


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer sat_not-a-real-token"}, {"Authorization": "Basic eDp5"}],
)
def test_a_missing_or_malformed_token_costs_no_thread_and_no_sql(
    client: TestClient, hops: ThreadHops, headers: dict[str, str]
) -> None:
    assert_problem(client.get("/auth/me", headers=headers), 401, "unauthenticated")
    assert (hops.calls, hops.statements) == (0, 0)


def test_a_well_formed_unknown_token_is_one_lookup(
    client: TestClient, hops: ThreadHops, engine: Engine
) -> None:
    token = generate_session_token()
    assert_problem(client.get("/auth/me", headers=bearer(token)), 401, "unauthenticated")
    assert (hops.calls, hops.statements) == (_lookup_hops(engine), 1)


def test_token_in_the_url_is_never_read(client: TestClient, assistant: Account) -> None:
    for name in ("access_token", "token"):
        response = client.get("/auth/me", params={name: assistant.token})
        assert_problem(response, 401, "unauthenticated")


def test_lowercase_bearer_scheme_is_accepted(client: TestClient, assistant: Account) -> None:
    response = client.get("/auth/me", headers={"Authorization": f"bearer {assistant.token}"})
    assert response.status_code == 200


def test_logout_ends_the_session(client: TestClient, assistant: Account) -> None:
    response = client.post("/auth/logout", headers=assistant.headers)
    assert response.status_code == 204
    assert response.headers["cache-control"] == "no-store"
    assert_problem(client.get("/auth/me", headers=assistant.headers), 401)
    assert_problem(client.post("/auth/logout", headers=assistant.headers), 401)


def test_logout_without_token_is_401(client: TestClient) -> None:
    assert_problem(client.post("/auth/logout"), 401, "unauthenticated")


def test_expired_session_is_401(client: TestClient, clock: FakeClock, artist: Account) -> None:
    clock.advance(hours=13)
    assert_problem(client.get("/auth/me", headers=artist.headers), 401, "unauthenticated")


# --- own sessions ----------------------------------------------------------------------


def test_list_and_revoke_own_sessions(
    client: TestClient, assistant: Account, admin: Account
) -> None:
    second = sign_in(client, "desk")
    listed = client.get("/auth/sessions", headers=assistant.headers)
    assert listed.status_code == 200
    rows = listed.json()
    assert len(rows) == 2
    assert [row["current"] for row in rows].count(True) == 1
    other = next(row["id"] for row in rows if not row["current"])

    admin_sessions = client.get("/auth/sessions", headers=admin.headers).json()
    assert len(admin_sessions) == 1
    # Another user's session is not found, and stays alive.
    response = client.delete(f"/auth/sessions/{admin_sessions[0]['id']}", headers=assistant.headers)
    assert_problem(response, 404, "not-found")
    assert client.get("/auth/me", headers=admin.headers).status_code == 200

    assert client.delete(f"/auth/sessions/{other}", headers=assistant.headers).status_code == 204
    assert_problem(client.get("/auth/me", headers=bearer(second)), 401)
    assert client.get("/auth/me", headers=assistant.headers).status_code == 200
    assert_problem(client.delete(f"/auth/sessions/{other}", headers=assistant.headers), 404)


@pytest.mark.parametrize("bad", ["0", "-1", "abc", str(2**31), str(2**70)])
def test_revoke_session_with_bad_id_is_422(
    client: TestClient, assistant: Account, bad: str
) -> None:
    response = client.delete(f"/auth/sessions/{bad}", headers=assistant.headers)
    assert_problem(response, 422, "validation-error")


def test_sessions_need_a_token(client: TestClient) -> None:
    assert_problem(client.get("/auth/sessions"), 401)
    assert_problem(client.delete("/auth/sessions/1"), 401)


# --- own password ----------------------------------------------------------------------


def test_password_change_issues_a_fresh_token_and_ends_other_sessions(
    client: TestClient, artist: Account
) -> None:
    other = sign_in(client, "rin")
    response = client.post(
        "/auth/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        headers=artist.headers,
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["user"]["id"] == artist.id
    fresh = body["access_token"]
    assert fresh not in (artist.token, other)
    assert client.get("/auth/me", headers=bearer(fresh)).status_code == 200
    assert_problem(client.get("/auth/me", headers=artist.headers), 401)
    assert_problem(client.get("/auth/me", headers=bearer(other)), 401)
    assert sign_in(client, "rin", NEW_PASSWORD)


def test_password_change_with_wrong_current_password_is_401(
    client: TestClient, assistant: Account
) -> None:
    response = client.post(
        "/auth/password",
        json={"current_password": "not it at all", "new_password": NEW_PASSWORD},
        headers=assistant.headers,
    )
    assert_problem(response, 401, "invalid-credentials")
    assert client.get("/auth/me", headers=assistant.headers).status_code == 200


def test_weak_new_password_is_422_with_reasons(client: TestClient, assistant: Account) -> None:
    response = client.post(
        "/auth/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": "Zq9!xk"},
        headers=assistant.headers,
    )
    body = assert_problem(response, 422, "password-rejected")
    assert body["reasons"]
    assert "Zq9!xk" not in response.text
    assert client.get("/auth/me", headers=assistant.headers).status_code == 200


def test_password_change_needs_a_token(client: TestClient) -> None:
    response = client.post(
        "/auth/password", json={"current_password": "a", "new_password": NEW_PASSWORD}
    )
    assert_problem(response, 401, "unauthenticated")


def test_must_change_password_allows_only_me_password_logout(
    client: TestClient, db: Session, make_user: Callable[..., User]
) -> None:
    user = make_user("first", role=Role.ADMIN)
    user.must_change_password = True
    db.commit()
    login = client.post("/auth/login", json={"username": "first", "password": DEFAULT_PASSWORD})
    assert login.json()["user"]["must_change_password"] is True
    headers = bearer(login.json()["access_token"])
    assert client.get("/auth/me", headers=headers).status_code == 200
    for method, path in [
        ("GET", "/auth/permissions"),
        ("GET", "/auth/sessions"),
        ("GET", "/users"),
        ("GET", "/audit"),
        ("POST", f"/users/{user.id}/unlock"),
    ]:
        response = client.request(method, path, headers=headers)
        assert_problem(response, 403, "password-change-required")
    changed = client.post(
        "/auth/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        headers=headers,
    )
    assert changed.status_code == 200
    assert changed.json()["user"]["must_change_password"] is False
    fresh = bearer(changed.json()["access_token"])
    assert client.get("/users", headers=fresh).status_code == 200


# --- permissions and elevation ------------------------------------------------------------


def test_effective_permissions_per_role(
    client: TestClient, admin: Account, assistant: Account, artist: Account
) -> None:
    admin_view = client.get("/auth/permissions", headers=admin.headers).json()
    assert admin_view["role"] == "admin"
    assert admin_view["permissions"]["staff.manage_users"] == "allow"
    desk = client.get("/auth/permissions", headers=assistant.headers).json()
    assert "staff.manage_users" not in desk["permissions"]
    assert desk["permissions"]["clients.edit"] == "supervised"
    rin = client.get("/auth/permissions", headers=artist.headers).json()
    assert rin["permissions"]["appointments.view"] == "own"
    assert "audit.view" not in rin["permissions"]
    assert_problem(client.get("/auth/permissions"), 401)


def test_admin_approval_elevates_an_assistant_session(
    client: TestClient, admin: Account, assistant: Account
) -> None:
    response = client.post(
        "/auth/elevate",
        json={"username": "root", "password": DEFAULT_PASSWORD, "minutes": 3},
        headers=assistant.headers,
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    until = response.json()["elevated_until"]
    perms = client.get("/auth/permissions", headers=assistant.headers).json()
    assert perms["permissions"]["clients.edit"] == "allow"
    assert perms["elevated_until"] == until
    me = client.get("/auth/me", headers=assistant.headers).json()
    assert me["session"]["elevated_by"] == admin.id


def test_elevation_errors(
    client: TestClient, admin: Account, assistant: Account, artist: Account
) -> None:
    wrong = client.post(
        "/auth/elevate", json={"username": "root", "password": "nope"}, headers=assistant.headers
    )
    assert_problem(wrong, 401, "invalid-credentials")
    not_admin = client.post(
        "/auth/elevate",
        json={"username": "rin", "password": DEFAULT_PASSWORD},
        headers=assistant.headers,
    )
    assert_problem(not_admin, 403, "permission-denied")
    on_artist = client.post(
        "/auth/elevate",
        json={"username": "root", "password": DEFAULT_PASSWORD},
        headers=artist.headers,
    )
    assert_problem(on_artist, 422, "invalid-request")
    too_long = client.post(
        "/auth/elevate",
        json={"username": "root", "password": DEFAULT_PASSWORD, "minutes": 31},
        headers=assistant.headers,
    )
    assert_problem(too_long, 422, "validation-error")
    assert DEFAULT_PASSWORD not in too_long.text
    anonymous = client.post("/auth/elevate", json={"username": "root", "password": "x"})
    assert_problem(anonymous, 401, "unauthenticated")


def test_me_is_one_cheap_lookup(
    client: TestClient, assistant: Account, checkpw_counter: object, db: Session
) -> None:
    from tests.conftest import CountingCheckpw

    assert isinstance(checkpw_counter, CountingCheckpw)
    for _ in range(3):
        assert client.get("/auth/me", headers=assistant.headers).status_code == 200
    assert checkpw_counter.calls == 0
    assert sessions.resolve_session(db, assistant.token) is not None
