"""Signing in and out of the console, its session cookie, and the forced password change."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from data.models import Role, User
from services import sessions
from services.users import reset_password
from studio_auth.web.console.browser import SESSION_COOKIE
from tests.conftest import DEFAULT_PASSWORD
from tests.web.console.conftest import csrf_of, post_form, sign_in_page

NEW_PASSWORD = "a fresh and unusual passphrase 42"


def test_home_sends_a_stranger_to_sign_in(browser: TestClient) -> None:
    response = browser.get("/")
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in"
    page = browser.get("/sign-in")
    assert page.status_code == 200
    assert '<label for="username">Username</label>' in page.text
    assert '<label for="password">Password</label>' in page.text
    assert ">Sign in</button>" in page.text


def test_sign_in_sets_a_host_only_http_only_secure_cookie(
    browser: TestClient, make_user: Callable[..., User]
) -> None:
    make_user("ana")
    response = browser.post("/sign-in", data={"username": "ana", "password": DEFAULT_PASSWORD})
    assert response.status_code == 303
    assert response.headers["location"] == "/account"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=sat_")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite=lax", "path=/"} <= attributes
    assert not any(a.startswith(("domain", "max-age", "expires")) for a in attributes)
    account = browser.get("/account")
    assert account.status_code == 200
    assert "Signed in as <strong>ana</strong>" in account.text


def test_every_failure_reads_the_same(browser: TestClient, make_user: Callable[..., User]) -> None:
    make_user("ana")
    make_user("gone", is_active=False)
    pages = [
        browser.post("/sign-in", data={"username": name, "password": password})
        for name, password in (
            ("ana", "wrong password"),
            ("nobody", DEFAULT_PASSWORD),
            ("gone", DEFAULT_PASSWORD),
        )
    ]
    assert {page.status_code for page in pages} == {401}
    # The same page but for the name typed, which is kept in its field.
    bodies = {
        re.sub(r'id="username" name="username" type="text" value="[a-z]*"', "", page.text)
        for page in pages
    }
    assert len(bodies) == 1, "the three failures must render the same page"
    assert "The username or password is not right." in pages[0].text
    assert SESSION_COOKIE not in browser.cookies


def test_empty_fields_are_named_beside_the_field(browser: TestClient) -> None:
    page = browser.post("/sign-in", data={"username": " ", "password": ""})
    assert page.status_code == 422
    assert 'href="#username">Enter your username</a>' in page.text
    assert 'href="#password">Enter your password</a>' in page.text
    assert 'aria-invalid="true"' in page.text
    assert "<title>Error: Sign in" in page.text


def test_a_throttled_name_is_told_when_to_come_back(
    browser: TestClient,
    make_user: Callable[..., User],
    clock: object,
    settings_env: Callable[..., None],
) -> None:
    settings_env(throttle_free_failures=2, throttle_base_delay_seconds=180)
    make_user("ana")
    for _ in range(2):
        browser.post("/sign-in", data={"username": "ana", "password": "wrong password"})
    page = browser.post("/sign-in", data={"username": "ana", "password": DEFAULT_PASSWORD})
    assert page.status_code == 429
    # The fake clock stands at 09:00 UTC; the lock lasts three minutes.
    assert "Try again after 09:03 (in 3 minutes)." in page.text


def test_sign_out_ends_the_server_side_session(
    browser: TestClient, make_user: Callable[..., User], db: Session
) -> None:
    make_user("ana")
    sign_in_page(browser, "ana")
    token = browser.cookies.get(SESSION_COOKIE)
    assert sessions.resolve_session(db, token) is not None
    response = post_form(browser, "/sign-out")
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in"
    assert sessions.resolve_session(db, token) is None
    browser.cookies.set(SESSION_COOKIE, token, domain="testserver")  # a copy kept
    assert browser.get("/account").headers["location"] == "/sign-in"
    assert "You have signed out." in browser.get("/sign-in").text


def test_the_cookie_does_not_authenticate_the_api(
    browser: TestClient, make_user: Callable[..., User]
) -> None:
    make_user("ana")
    sign_in_page(browser, "ana")
    assert browser.get("/auth/me").status_code == 401


def test_a_one_time_password_must_be_changed_first(
    browser: TestClient, make_user: Callable[..., User], db: Session
) -> None:
    user = make_user("ana")
    reset_password(db, user.id, "the admin chose this one 7", must_change=True)
    db.commit()
    response = browser.post(
        "/sign-in", data={"username": "ana", "password": "the admin chose this one 7"}
    )
    assert response.headers["location"] == "/required/password"
    for path in ("/account", "/staff", "/audit-trail", "/approvals"):
        response = browser.get(path)
        assert response.headers.get("location") == "/required/password", (
            path,
            response.status_code,
        )
    page = browser.get("/required/password")
    assert '<label for="current_password">Current password</label>' in page.text
    assert '<label for="new_password">New password</label>' in page.text
    weak = browser.post(
        "/required/password",
        data={
            "csrf_token": csrf_of(page.text),
            "current_password": "the admin chose this one 7",
            "new_password": "password",
        },
    )
    assert weak.status_code == 422
    assert 'id="new_password-error"' in weak.text
    old_token = browser.cookies.get(SESSION_COOKIE)
    done = browser.post(
        "/required/password",
        data={
            "csrf_token": csrf_of(page.text),
            "current_password": "the admin chose this one 7",
            "new_password": NEW_PASSWORD,
        },
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/account"
    # The session was rotated: the old token is dead, the cookie holds the new one.
    assert sessions.resolve_session(db, old_token) is None
    assert browser.cookies.get(SESSION_COOKIE) != old_token
    account = browser.get("/account")
    assert account.status_code == 200
    assert "Your password is changed." in account.text
    assert browser.get("/required/password").headers["location"] == "/account"


def test_a_revoked_session_cookie_is_sent_to_sign_in_and_cleared(
    browser: TestClient, make_user: Callable[..., User], db: Session
) -> None:
    user = make_user("ana")
    sign_in_page(browser, "ana")
    sessions.revoke_user_sessions(db, user.id, reason="test")
    db.commit()
    response = browser.get("/account")
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in"
    assert f'{SESSION_COOKIE}=""' in response.headers["set-cookie"]


def test_an_artist_cannot_open_staff_or_audit(
    browser: TestClient, signed_in: Callable[..., User]
) -> None:
    signed_in("rin", Role.ARTIST)
    account = browser.get("/account")
    assert 'href="/staff"' not in account.text
    assert 'href="/audit-trail"' not in account.text
    for path in ("/staff", "/staff/new", "/audit-trail", "/audit-trail/export.csv"):
        page = browser.get(path)
        assert page.status_code == 403, path
        assert "Your role does not give access to this page." in page.text
