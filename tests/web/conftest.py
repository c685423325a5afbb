"""An app and an HTTP client on the ``engine`` fixture (SQLite, and PostgreSQL when
``TEST_DATABASE_URL`` is set), and sign-in helpers per role."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from data.models import Role, User
from tests.conftest import DEFAULT_PASSWORD

# Starlette 1.x asks for "httpx2" in its TestClient; httpx is what the project pins.
warnings.filterwarnings("ignore", message=".*httpx2.*")

from fastapi.testclient import TestClient  # noqa: E402

from studio_auth.settings import Settings  # noqa: E402
from studio_auth.web.app import create_app  # noqa: E402


@pytest.fixture
def app(engine: Engine) -> FastAPI:
    return create_app(Settings(), engine=engine)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Account:
    user: User
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)

    @property
    def id(self) -> int:
        return self.user.id


def sign_in(client: TestClient, username: str, password: str = DEFAULT_PASSWORD) -> str:
    response = client.post("/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert isinstance(token, str)
    return token


@pytest.fixture
def account(client: TestClient, make_user: Callable[..., User]) -> Callable[..., Account]:
    """``account("ana", "admin")``: a user of that role, signed in."""

    def make(username: str, role: Role | str = Role.ASSISTANT, **kwargs: object) -> Account:
        user = make_user(username, role=role, **kwargs)
        return Account(user, DEFAULT_PASSWORD, sign_in(client, username))

    return make


@pytest.fixture
def admin(account: Callable[..., Account]) -> Account:
    return account("root", Role.ADMIN)


@pytest.fixture
def assistant(account: Callable[..., Account]) -> Account:
    return account("desk", Role.ASSISTANT)


@pytest.fixture
def artist(account: Callable[..., Account]) -> Account:
    return account("rin", Role.ARTIST)


def assert_problem(response: object, status: int, kind: str | None = None) -> dict[str, object]:
    """The response is an RFC 9457 problem of ``status`` (and type ``kind``)."""
    from httpx import Response

    assert isinstance(response, Response)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["title"], str)
    if kind is not None:
        assert body["type"] == f"urn:studio-auth:problem:{kind}"
    assert isinstance(body, dict)
    return body


def wait_for(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` until it holds (a thread's progress, never a clock's)."""
    for _ in range(1000):
        if condition():
            return
        threading.Event().wait(0.01)
    raise AssertionError("timed out")
