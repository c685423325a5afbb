"""/users and /audit through an HTTP client, as each role."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from data.models import Artist, User
from services import throttle
from tests.conftest import DEFAULT_PASSWORD, FakeClock
from tests.web.conftest import Account, assert_problem, sign_in

NEW_PASSWORD = "a fresh and unusual passphrase 42"

ADMIN_ROUTES = [
    ("GET", "/users", None),
    ("POST", "/users", {"username": "x1", "password": NEW_PASSWORD, "role": "assistant"}),
    ("GET", "/users/{id}", None),
    ("PATCH", "/users/{id}", {"is_active": False}),
    ("POST", "/users/{id}/password", {"new_password": NEW_PASSWORD}),
    ("POST", "/users/{id}/sessions/revoke", None),
    ("POST", "/users/{id}/unlock", None),
    ("GET", "/audit", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
@pytest.mark.parametrize("role", ["assistant", "artist"])
def test_admin_routes_are_403_for_other_roles(
    client: TestClient,
    account: Callable[..., Account],
    role: str,
    method: str,
    path: str,
    body: object,
) -> None:
    caller = account("caller", role)
    target = account("target", "assistant")
    response = client.request(method, path.format(id=target.id), json=body, headers=caller.headers)
    problem = assert_problem(response, 403, "permission-denied")
    assert problem["action"] in ("staff.manage_users", "audit.view")
    # Nothing happened to the target.
    assert client.get("/auth/me", headers=target.headers).status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
def test_admin_routes_are_401_without_a_token(
    client: TestClient, method: str, path: str, body: object
) -> None:
    response = client.request(method, path.format(id=1), json=body)
    assert_problem(response, 401, "unauthenticated")


def test_admin_creates_lists_gets_and_updates_users(
    client: TestClient, admin: Account, make_artist: Callable[..., Artist]
) -> None:
    artist = make_artist("Kai")
    created = client.post(
        "/users",
        json={
            "username": "kai",
            "password": NEW_PASSWORD,
            "role": "artist",
            "artist_id": artist.id,
        },
        headers=admin.headers,
    )
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["username"] == "kai"
    assert user["role"] == "artist"
    assert user["artist_id"] == artist.id
    assert user["is_active"] is True
    assert "password" not in created.text.lower().replace("password_changed_at", "").replace(
        "must_change_password", ""
    )
    kai = sign_in(client, "kai", NEW_PASSWORD)

    listed = client.get("/users", headers=admin.headers).json()
    assert {u["username"] for u in listed} == {"root", "kai"}
    got = client.get(f"/users/{user['id']}", headers=admin.headers).json()
    assert got["last_login"] is not None
    assert {**got, "last_login": None} == user

    patched = client.patch(
        f"/users/{user['id']}", json={"role": "assistant", "artist_id": None}, headers=admin.headers
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["role"] == "assistant"
    assert patched.json()["artist_id"] is None
    # A role change ends the user's sessions.
    assert_problem(client.get("/auth/me", headers={"Authorization": f"Bearer {kai}"}), 401)

    deactivated = client.patch(
        f"/users/{user['id']}", json={"is_active": False}, headers=admin.headers
    )
    assert deactivated.json()["is_active"] is False
    failed = client.post("/auth/login", json={"username": "kai", "password": NEW_PASSWORD})
    assert_problem(failed, 401, "invalid-credentials")


def _create_assistant(
    client: TestClient, admin: Account, username: str, **fields: object
) -> Response:
    body = {"username": username, "password": NEW_PASSWORD, "role": "assistant", **fields}
    return client.post("/users", json=body, headers=admin.headers)


def test_an_account_an_admin_creates_must_change_its_password_by_default(
    client: TestClient, admin: Account
) -> None:
    created = _create_assistant(client, admin, "desk")
    assert created.status_code == 201, created.text
    assert created.json()["must_change_password"] is True
    token = sign_in(client, "desk", NEW_PASSWORD)
    blocked = client.get("/auth/permissions", headers={"Authorization": f"Bearer {token}"})
    assert_problem(blocked, 403, "password-change-required")
    # The admin opts out explicitly, when the person typed their own password.
    own = _create_assistant(client, admin, "ink", must_change_password=False)
    assert own.json()["must_change_password"] is False
    token = sign_in(client, "ink", NEW_PASSWORD)
    allowed = client.get("/auth/permissions", headers={"Authorization": f"Bearer {token}"})
    assert allowed.status_code == 200


def test_create_user_errors(client: TestClient, admin: Account, assistant: Account) -> None:
    def create(**body: object) -> object:
        return client.post("/users", json=body, headers=admin.headers)

    assert_problem(
        create(username="DESK", password=NEW_PASSWORD, role="assistant"), 409, "user-exists"
    )
    weak = create(username="newbie", password="short", role="assistant")
    assert_problem(weak, 422, "password-rejected")
    assert "short" not in weak.text  # type: ignore[attr-defined]
    assert_problem(
        create(username="newbie", password=NEW_PASSWORD, role="artist"), 422, "invalid-request"
    )
    assert_problem(
        create(username="newbie", password=NEW_PASSWORD, role="artist", artist_id=999),
        404,
        "not-found",
    )
    assert_problem(
        create(username="bad name!", password=NEW_PASSWORD, role="assistant"),
        422,
        "invalid-request",
    )
    bad_role = create(username="newbie", password=NEW_PASSWORD, role="owner")
    assert_problem(bad_role, 422, "validation-error")
    assert NEW_PASSWORD not in bad_role.text  # type: ignore[attr-defined]
    # The schema says a password is not empty (minLength 1).
    empty = create(username="newbie", password="", role="assistant")
    assert_problem(empty, 422, "validation-error")


def test_update_user_errors(client: TestClient, admin: Account, assistant: Account) -> None:
    assert_problem(
        client.patch("/users/9999", json={"is_active": False}, headers=admin.headers),
        404,
        "not-found",
    )
    assert_problem(
        client.patch(f"/users/{admin.id}", json={"role": "assistant"}, headers=admin.headers),
        422,
        "invalid-request",
    )
    # A field may be left out, never null: the schema says so, so validation refuses it.
    for null in ({"role": None}, {"is_active": None}):
        assert_problem(
            client.patch(f"/users/{assistant.id}", json=null, headers=admin.headers),
            422,
            "validation-error",
        )
    assert_problem(
        client.patch(f"/users/{assistant.id}", json={"colour": "red"}, headers=admin.headers),
        422,
        "validation-error",
    )
    assert_problem(client.get("/users/9999", headers=admin.headers), 404, "not-found")
    unchanged = client.patch(f"/users/{assistant.id}", json={}, headers=admin.headers)
    assert unchanged.status_code == 200
    assert client.get("/auth/me", headers=assistant.headers).status_code == 200


def test_reset_password_ends_sessions_and_forces_a_change(
    client: TestClient, admin: Account, assistant: Account
) -> None:
    response = client.post(
        f"/users/{assistant.id}/password",
        json={"new_password": NEW_PASSWORD},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["must_change_password"] is True
    assert_problem(client.get("/auth/me", headers=assistant.headers), 401)
    token = sign_in(client, "desk", NEW_PASSWORD)
    blocked = client.get("/auth/sessions", headers={"Authorization": f"Bearer {token}"})
    assert_problem(blocked, 403, "password-change-required")
    own = client.post(
        f"/users/{admin.id}/password", json={"new_password": NEW_PASSWORD}, headers=admin.headers
    )
    assert_problem(own, 422, "invalid-request")
    weak = client.post(
        f"/users/{assistant.id}/password", json={"new_password": "tiny"}, headers=admin.headers
    )
    assert_problem(weak, 422, "password-rejected")
    missing = client.post(
        "/users/9999/password", json={"new_password": NEW_PASSWORD}, headers=admin.headers
    )
    assert_problem(missing, 404, "not-found")


def test_revoke_user_sessions(client: TestClient, admin: Account, artist: Account) -> None:
    sign_in(client, "rin")
    response = client.post(f"/users/{artist.id}/sessions/revoke", headers=admin.headers)
    assert response.status_code == 200
    assert response.json() == {"revoked": 2}
    assert_problem(client.get("/auth/me", headers=artist.headers), 401)
    missing = client.post("/users/9999/sessions/revoke", headers=admin.headers)
    assert_problem(missing, 404, "not-found")


def test_unlock_clears_a_locked_user(
    client: TestClient,
    admin: Account,
    make_user: Callable[..., User],
    settings_env: Callable[..., None],
    clock: FakeClock,
) -> None:
    settings_env(throttle_free_failures=1, throttle_base_delay_seconds=60)
    user = make_user("ana")
    client.post("/auth/login", json={"username": "ana", "password": "wrong"})
    locked = client.post("/auth/login", json={"username": "ana", "password": DEFAULT_PASSWORD})
    assert_problem(locked, 429, "throttled")
    response = client.post(f"/users/{user.id}/unlock", headers=admin.headers)
    assert response.json() == {"unlocked": True}
    assert sign_in(client, "ana")
    again = client.post(f"/users/{user.id}/unlock", headers=admin.headers)
    assert again.json() == {"unlocked": False}
    assert_problem(client.post("/users/9999/unlock", headers=admin.headers), 404)


def test_audit_lists_events_with_filters(
    client: TestClient, admin: Account, assistant: Account
) -> None:
    client.post("/auth/login", json={"username": "desk", "password": "wrong password!"})
    everything = client.get("/audit", headers=admin.headers)
    assert everything.status_code == 200
    events = everything.json()
    assert events
    assert all(isinstance(e["detail"], dict) for e in events)
    failures = client.get(
        "/audit",
        params={"event": "login", "outcome": "failure", "username": "desk", "limit": 5},
        headers=admin.headers,
    ).json()
    assert len(failures) == 1
    assert failures[0]["user_id"] == assistant.id
    assert "wrong password!" not in everything.text
    mine = client.get("/audit", params={"user_id": admin.id}, headers=admin.headers).json()
    assert {e["user_id"] for e in mine} == {admin.id}
    later = client.get(
        "/audit", params={"since": "2999-01-01T00:00:00+00:00"}, headers=admin.headers
    )
    assert later.json() == []
    for since in ("2000-01-01T00:00:00Z", "2000-01-01t01:00:00.5+01:00"):
        earlier = client.get("/audit", params={"since": since}, headers=admin.headers)
        assert earlier.json() == events


@pytest.mark.parametrize(
    "params",
    [
        {"since": "2026-01-01T00:00:00"},  # naive: which zone?
        {"since": "0.5"},  # seconds since 1970 are not what format: date-time promises
        {"since": "1767600000"},
        {"since": "2026-01-05"},
        {"since": "2026-01-05 09:00:00Z"},
        {"since": "0001-01-01T00:00:00+01:00"},  # before year 1 in UTC
        {"since": "9999-12-31T23:59:59-01:00"},  # after year 9999 in UTC
        {"limit": 0},
        {"limit": 10_001},
        {"event": "LOGIN; drop"},
        {"user_id": 2**40},
    ],
)
def test_audit_rejects_bad_filters(
    client: TestClient, admin: Account, params: dict[str, object]
) -> None:
    response = client.get("/audit", params=params, headers=admin.headers)
    assert_problem(response, 422, "validation-error")


def test_throttle_reflects_reserve(client: TestClient, db: object, assistant: Account) -> None:
    from sqlalchemy.orm import Session

    assert isinstance(db, Session)
    client.post("/auth/login", json={"username": "desk", "password": "nope"})
    counter = throttle.current_counter(db, "desk")
    assert counter is not None and counter.failures == 1


# --- strict JSON types -------------------------------------------------------------------


@pytest.mark.parametrize("value", ["no", "false", 0, 1, "", [], None])
def test_booleans_are_strict(
    client: TestClient, admin: Account, assistant: Account, value: object
) -> None:
    """ "no" or 0 is not false: a 422, and nothing changes."""
    patched = client.patch(
        f"/users/{assistant.id}", json={"is_active": value}, headers=admin.headers
    )
    assert_problem(patched, 422, "validation-error")
    reset = client.post(
        f"/users/{assistant.id}/password",
        json={"new_password": NEW_PASSWORD, "must_change_password": value},
        headers=admin.headers,
    )
    assert_problem(reset, 422, "validation-error")
    created = _create_assistant(client, admin, "newbie", must_change_password=value)
    assert_problem(created, 422, "validation-error")
    assert client.get("/auth/me", headers=assistant.headers).status_code == 200
    assert len(client.get("/users", headers=admin.headers).json()) == 2


@pytest.mark.parametrize("value", [True, "1", 1.5])
def test_ids_in_bodies_are_integers(
    client: TestClient, admin: Account, make_artist: Callable[..., Artist], value: object
) -> None:
    """true is not artist 1, nor is "1"."""
    make_artist("Kai")
    created = client.post(
        "/users",
        json={"username": "kai", "password": NEW_PASSWORD, "role": "artist", "artist_id": value},
        headers=admin.headers,
    )
    assert_problem(created, 422, "validation-error")
