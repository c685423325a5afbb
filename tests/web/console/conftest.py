"""A browser-like client for the console's pages: HTTPS base URL (the session cookie is
Secure), the console's own Origin on every request, and helpers to read a page's
anti-forgery token and sign in through the form."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from data.models import Role, User
from studio_auth.web.console.browser import SESSION_COOKIE
from tests.conftest import DEFAULT_PASSWORD

ORIGIN = "https://testserver"
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


@pytest.fixture
def browser(app: FastAPI) -> Iterator[TestClient]:
    """A client that behaves like a browser on the console's own pages."""
    with TestClient(
        app, base_url=ORIGIN, headers={"Origin": ORIGIN}, follow_redirects=False
    ) as client:
        yield client


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no anti-forgery token"
    return found.group(1)


def sign_in_page(client: TestClient, username: str, password: str = DEFAULT_PASSWORD) -> None:
    """Sign in through the form; the session cookie is then in the client's jar."""
    response = client.post("/sign-in", data={"username": username, "password": password})
    assert response.status_code == 303, response.text
    assert client.cookies.get(SESSION_COOKIE)


def post_form(
    client: TestClient, path: str, data: dict[str, str] | None = None, *, page: str = "/account"
) -> object:
    """Post ``data`` to ``path`` with the anti-forgery token of ``page``."""
    token = csrf_of(client.get(page).text)
    return client.post(path, data={**(data or {}), "csrf_token": token})


@pytest.fixture
def signed_in(browser: TestClient, make_user: Callable[..., User]) -> Callable[..., User]:
    """``signed_in("ana", Role.ADMIN)``: a user of that role, signed in on ``browser``."""

    def make(username: str, role: Role | str = Role.ASSISTANT, **kwargs: object) -> User:
        user = make_user(username, role=role, **kwargs)
        sign_in_page(browser, username)
        return user

    return make


@pytest.fixture
def as_admin(signed_in: Callable[..., User]) -> User:
    """An admin, ``root``, signed in on ``browser``."""
    return signed_in("root", Role.ADMIN)
