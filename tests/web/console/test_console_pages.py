"""The console's pages through TestClient: forgery checks, headers, Staff actions, the
audit trail (escaped text, pages, CSV) and approvals."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from data.models import Role, User
from services import audit, sessions
from services.auth import check_credentials
from services.errors import InvalidCredentials
from studio_auth.web.console.browser import SESSION_COOKIE
from tests.conftest import DEFAULT_PASSWORD
from tests.web.console.conftest import ORIGIN, csrf_of, post_form


def test_a_post_from_another_origin_is_refused_before_anything_else(
    browser: TestClient, as_admin: User, make_user: Callable[..., User]
) -> None:
    target = make_user("ana")
    token = csrf_of(browser.get("/account").text)
    forged = [
        {"Origin": "https://evil.example"},
        {"Origin": "https://testserver.evil.example"},
        {"Origin": "null"},  # and no Sec-Fetch-Site
        {"Origin": ORIGIN, "Sec-Fetch-Site": "same-site"},
        {"Origin": ORIGIN, "Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin"},
    ]
    for headers in forged:
        response = browser.post(
            f"/staff/{target.id}/deactivate", data={"csrf_token": token}, headers=headers
        )
        assert response.status_code == 403, headers
        assert "Request refused" in response.text
    # Signed out, the same: refused, not sent to the sign-in page.
    response = browser.post("/sign-in", data={"username": "a", "password": "b"}, headers=forged[0])
    assert response.status_code == 403
    # Under no-referrer a browser sends Origin: null with Sec-Fetch-Site: same-origin.
    allowed = browser.post(
        f"/staff/{target.id}/deactivate",
        data={"csrf_token": token},
        headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"},
    )
    assert allowed.status_code == 303


def test_a_post_without_this_sessions_token_is_refused(
    browser: TestClient, as_admin: User, make_user: Callable[..., User]
) -> None:
    target = make_user("ana")
    for data in ({}, {"csrf_token": "0" * 64}, {"csrf_token": "\x00"}):
        response = browser.post(f"/staff/{target.id}/deactivate", data=data)
        assert response.status_code == 403
    assert "tag-deactivated" not in browser.get(f"/staff/{target.id}").text


def test_the_token_changes_with_the_session(
    browser: TestClient, make_user: Callable[..., User]
) -> None:
    make_user("ana")
    tokens = []
    for _ in range(2):
        browser.post("/sign-in", data={"username": "ana", "password": DEFAULT_PASSWORD})
        tokens.append(csrf_of(browser.get("/account").text))
    assert tokens[0] != tokens[1]


def test_pages_carry_the_page_policy_and_the_api_keeps_its_own(
    browser: TestClient, as_admin: User
) -> None:
    page = browser.get("/account")
    policy = page.headers["content-security-policy"]
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    for part in (
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ):
        assert part in policy
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "<script" not in page.text and "style=" not in page.text
    css = browser.get("/static/console.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    api = browser.get("/healthz")
    assert api.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_unknown_pages_are_pages_for_browsers_and_problems_for_the_api(
    browser: TestClient,
) -> None:
    page = browser.get("/no-such-page", headers={"Accept": "text/html,*/*"})
    assert page.status_code == 404
    assert "Page not found" in page.text
    api = browser.get("/no-such-page")
    assert api.status_code == 404
    assert api.headers["content-type"].startswith("application/problem+json")


def test_staff_lists_filters_and_shows_state(
    browser: TestClient,
    as_admin: User,
    make_user: Callable[..., User],
    db: Session,
) -> None:
    make_user("ana")
    make_user("rin", role=Role.ARTIST)
    make_user("gone", is_active=False)
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            check_credentials(db, "ana", "wrong password")
    page = browser.get("/staff")
    assert "4 of 4 accounts." in page.text
    assert "Locked" in page.text
    assert "1 of 4" in browser.get("/staff?role=artist").text
    locked = browser.get("/staff?state=locked").text
    assert "1 of 4" in locked and ">ana</a>" in locked
    assert ">gone</a>" in browser.get("/staff?state=deactivated").text
    assert "1 of 4" in browser.get("/staff?q=AN").text
    assert "4 of 4" in browser.get("/staff?role=%00&state=nonsense").text


def test_adding_a_member_shows_the_password_once(
    browser: TestClient, as_admin: User, db: Session
) -> None:
    token = csrf_of(browser.get("/staff/new").text)
    taken = browser.post(
        "/staff/new", data={"csrf_token": token, "username": "root", "role": "assistant"}
    )
    assert taken.status_code == 422
    assert "That username is taken" in taken.text
    artist = browser.post(
        "/staff/new", data={"csrf_token": token, "username": "rin", "role": "artist"}
    )
    assert "Choose the artist this account belongs to" in artist.text
    made = browser.post(
        "/staff/new", data={"csrf_token": token, "username": "mara", "role": "assistant"}
    )
    assert made.status_code == 200
    password = made.text.split('<code id="one-time-password">')[1].split("<")[0]
    assert made.headers["cache-control"] == "no-store"
    user = check_credentials(db, "mara", password)
    assert user["must_change_password"] is True


def test_staff_actions_confirm_then_say_what_they_did(
    browser: TestClient,
    as_admin: User,
    make_user: Callable[..., User],
    db: Session,
) -> None:
    target = make_user("ana")
    other = TestClient(browser.app, base_url=ORIGIN, headers={"Origin": ORIGIN})
    other.post("/sign-in", data={"username": "ana", "password": DEFAULT_PASSWORD})
    ana_token = other.cookies.get(SESSION_COOKIE)

    confirm = browser.get(f"/staff/{target.id}/end-sessions")
    assert "End all of ana&#39;s sessions?" in confirm.text
    assert sessions.resolve_session(db, ana_token) is not None  # nothing done yet
    done = post_form(browser, f"/staff/{target.id}/end-sessions", page=f"/staff/{target.id}")
    assert done.headers["location"] == f"/staff/{target.id}"
    assert sessions.resolve_session(db, ana_token) is None
    assert "Every session of the account has ended." in browser.get(f"/staff/{target.id}").text

    done = post_form(browser, f"/staff/{target.id}/unlock", page=f"/staff/{target.id}")
    assert "The account was not locked." in browser.get(done.headers["location"]).text

    role = post_form(
        browser, f"/staff/{target.id}/role", {"role": "admin"}, page=f"/staff/{target.id}"
    )
    assert role.status_code == 200 and "Change ana's role?" in role.text
    db.expire_all()
    assert db.get(User, target.id).role is Role.ASSISTANT
    post_form(
        browser,
        f"/staff/{target.id}/role",
        {"role": "admin", "confirmed": "yes"},
        page=f"/staff/{target.id}",
    )
    db.expire_all()
    assert db.get(User, target.id).role is Role.ADMIN

    reset = post_form(browser, f"/staff/{target.id}/reset-password", page=f"/staff/{target.id}")
    assert "password is reset" in reset.text
    assert browser.get(f"/staff/{target.id}/explode").status_code == 404


def test_an_admin_cannot_deactivate_themselves_and_is_told_why(
    browser: TestClient, as_admin: User
) -> None:
    me = as_admin
    response = post_form(browser, f"/staff/{me.id}/deactivate", page="/staff")
    assert response.status_code == 422
    assert "nobody can deactivate their own account" in response.text


def test_the_audit_trail_escapes_pages_and_exports(
    browser: TestClient, as_admin: User, db: Session
) -> None:
    for i in range(55):
        audit.add_event(db, "test_event", username=f"<script>alert({i})</script>")
    audit.add_event(db, "test_event", username="=HYPERLINK(1)", detail={"note": "+cmd"})
    db.commit()
    page = browser.get("/audit-trail?event=test_event")
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(54)&lt;/script&gt;" in page.text
    assert 'rel="next"' in page.text and 'rel="prev"' not in page.text
    second = browser.get("/audit-trail?event=test_event&page=2")
    assert second.text.count("<td>test_event</td>") == 6
    assert 'rel="prev"' in second.text
    bad = browser.get("/audit-trail?from=yesterday")
    assert bad.status_code == 422 and 'href="#from"' in bad.text
    future = browser.get("/audit-trail?from=2999-01-01")
    assert "No event matches these filters." in future.text

    export = browser.get("/audit-trail/export.csv?event=test_event")
    assert export.headers["content-type"].startswith("text/csv")
    assert "attachment" in export.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(export.text)))
    assert rows[0][:3] == ["id", "at", "event"]
    assert len(rows) == 57
    assert rows[1][5] == "'=hyperlink(1)"  # a spreadsheet shows it as text
    assert "'{" not in rows[1][9]


def test_account_shows_sessions_and_failures_since_the_previous_sign_in(
    browser: TestClient, make_user: Callable[..., User], db: Session
) -> None:
    make_user("ana")
    browser.post("/sign-in", data={"username": "ana", "password": DEFAULT_PASSWORD})
    other = sessions.login(db, "ana", DEFAULT_PASSWORD, ip="192.0.2.1", user_agent="Phone")
    for _ in range(2):
        browser.post("/sign-in", data={"username": "ana", "password": "wrong password"})
    browser.post("/sign-in", data={"username": "ana", "password": DEFAULT_PASSWORD})
    page = browser.get("/account")
    assert "2 failed sign-in attempts" in page.text
    assert "This session" in page.text
    ended = post_form(browser, f"/account/sessions/{other.session_id}/end")
    assert ended.headers["location"] == "/account"
    assert sessions.resolve_session(db, other.token) is None
    mine = browser.get("/account").text
    assert "That session has ended." in mine
    current = post_form(browser, "/account/sessions/999999/end")
    assert current.status_code == 404


def test_an_admin_approves_on_the_assistants_screen(
    browser: TestClient, signed_in: Callable[..., User], make_user: Callable[..., User]
) -> None:
    signed_in("desk", Role.ASSISTANT)
    make_user("root", role=Role.ADMIN)
    make_user("rin", role=Role.ARTIST)
    page = browser.get("/approvals")
    assert "transactions.refund" in page.text
    token = csrf_of(page.text)
    wrong = browser.post(
        "/approvals", data={"csrf_token": token, "username": "root", "password": "nope"}
    )
    assert wrong.status_code == 401 and "The username or password is not right." in wrong.text
    not_admin = browser.post(
        "/approvals", data={"csrf_token": token, "username": "rin", "password": DEFAULT_PASSWORD}
    )
    assert not_admin.status_code == 403 and "Only an admin can approve." in not_admin.text
    done = browser.post(
        "/approvals", data={"csrf_token": token, "username": "root", "password": DEFAULT_PASSWORD}
    )
    assert done.headers["location"] == "/approvals"
    assert "Approved until" in browser.get("/approvals").text
    post_form(browser, "/approvals/end", page="/approvals")
    assert "Ask an admin to approve" in browser.get("/approvals").text


def test_huge_and_odd_input_gets_a_page_not_a_crash(browser: TestClient, as_admin: User) -> None:
    token = csrf_of(browser.get("/staff/new").text)
    for username in ("\x00", "a" * 5000, "é" * 200):
        response = browser.post(
            "/staff/new", data={"csrf_token": token, "username": username, "role": "admin"}
        )
        assert response.status_code == 422, username
    raw = f"csrf_token={token}&username=%ED%B3%BF%FF&role=admin".encode()
    odd = browser.post(
        "/staff/new", content=raw, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert odd.status_code == 422
    assert browser.get("/staff/99999999999999999999").status_code == 404
    assert browser.get("/audit-trail?page=999999999").status_code == 200
    big = browser.post(
        "/sign-in",
        content=b"username=" + b"a" * 70_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert big.status_code == 413
