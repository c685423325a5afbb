"""Two ``studio-auth serve`` processes on one PostgreSQL database behave as one service:
the throttle, sign-out, role changes, deactivation and elevation are all read from the
database on every request, so whatever one instance does the other sees at once.

Needs ``TEST_DATABASE_URL`` (skipped on SQLite-only runs). The processes listen on free
127.0.0.1 ports, share a database of their own (``<db>_instances``, dropped afterwards),
and are always stopped.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, make_url, text

from data.db.session import make_engine, make_sessionmaker
from data.migrations import upgrade
from data.models import Role, User
from services import passwords
from tests.conftest import DEFAULT_PASSWORD, PG_URL
from tests.web.processes import serve

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (TEST_DATABASE_URL)"),
]

REQUEST_TIMEOUT = 15.0


@dataclass
class Instances:
    a: httpx.Client
    b: httpx.Client
    engine: Engine

    def make_user(self, username: str, role: Role = Role.ASSISTANT) -> int:
        with make_sessionmaker(self.engine)() as db:
            user = User(
                username=username,
                password_hash=passwords.hash_password(DEFAULT_PASSWORD),
                role=role,
            )
            db.add(user)
            db.commit()
            return user.id

    @staticmethod
    def login(client: httpx.Client, username: str, password: str = DEFAULT_PASSWORD) -> str:
        response = client.post("/auth/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        assert isinstance(token, str)
        return token


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextlib.contextmanager
def _own_database() -> Iterator[str]:
    base = make_url(PG_URL)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    name = f"{base.database}_instances" + (f"_{worker}" if worker else "")
    admin = make_engine(base.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(scope="module")
def instances(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instances]:
    logs = tmp_path_factory.mktemp("instances")
    with _own_database() as url:
        engine = make_engine(url)
        try:
            # Migrated and given an admin before either process starts, so neither
            # creates the one-time first admin.
            upgrade(engine)
            with (
                serve({"DATABASE_URL": url, "STUDIO_AUTH_ENV": "test"}, logs / "a.log") as (
                    url_a,
                    _,
                ),
                serve({"DATABASE_URL": url, "STUDIO_AUTH_ENV": "test"}, logs / "b.log") as (
                    url_b,
                    _,
                ),
                httpx.Client(base_url=url_a, timeout=REQUEST_TIMEOUT) as a,
                httpx.Client(base_url=url_b, timeout=REQUEST_TIMEOUT) as b,
            ):
                yield Instances(a, b, engine)
        finally:
            engine.dispose()


def test_failures_through_both_count_toward_one_throttle(instances: Instances) -> None:
    instances.make_user("throttled")
    wrong = {"username": "throttled", "password": "not the password at all"}
    # Five failures are free (the default allowance); neither instance alone sees five.
    for client in (instances.a, instances.b, instances.a, instances.b):
        assert client.post("/auth/login", json=wrong).status_code == 401
    assert instances.a.post("/auth/login", json=wrong).status_code == 401  # the fifth locks
    right = {"username": "throttled", "password": DEFAULT_PASSWORD}
    for client in (instances.b, instances.a):
        refused = client.post("/auth/login", json=right)
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["retry-after"]) >= 1


def test_sign_out_through_one_is_refused_by_the_other_at_once(instances: Instances) -> None:
    instances.make_user("leaver")
    token = instances.login(instances.a, "leaver")
    assert instances.b.get("/auth/me", headers=_bearer(token)).status_code == 200
    assert instances.a.post("/auth/logout", headers=_bearer(token)).status_code == 204
    assert instances.b.get("/auth/me", headers=_bearer(token)).status_code == 401
    assert instances.a.get("/auth/me", headers=_bearer(token)).status_code == 401


def test_role_change_and_deactivation_apply_on_the_next_request(instances: Instances) -> None:
    instances.make_user("boss", Role.ADMIN)
    user_id = instances.make_user("promoted")
    admin = _bearer(instances.login(instances.a, "boss"))
    token = instances.login(instances.b, "promoted")
    assert instances.b.get("/users", headers=_bearer(token)).status_code == 403

    # A role change ends the user's sessions (services/users.py): the old token is
    # refused by B on its next request, and a new sign-in through B has the new role.
    changed = instances.a.patch(f"/users/{user_id}", json={"role": "admin"}, headers=admin)
    assert changed.status_code == 200, changed.text
    assert instances.b.get("/auth/me", headers=_bearer(token)).status_code == 401
    token = instances.login(instances.b, "promoted")
    me: dict[str, Any] = instances.b.get("/auth/me", headers=_bearer(token)).json()
    assert me["user"]["role"] == "admin"
    assert instances.b.get("/users", headers=_bearer(token)).status_code == 200

    gone = instances.a.patch(f"/users/{user_id}", json={"is_active": False}, headers=admin)
    assert gone.status_code == 200, gone.text
    assert instances.b.get("/auth/me", headers=_bearer(token)).status_code == 401
    refused = instances.b.post(
        "/auth/login", json={"username": "promoted", "password": DEFAULT_PASSWORD}
    )
    assert refused.status_code == 401


def test_elevation_granted_through_one_holds_on_the_other(instances: Instances) -> None:
    admin_id = instances.make_user("approver", Role.ADMIN)
    instances.make_user("helper")
    token = instances.login(instances.b, "helper")
    before = instances.b.get("/auth/permissions", headers=_bearer(token)).json()
    assert before["permissions"]["clients.edit"] == "supervised"

    granted = instances.a.post(
        "/auth/elevate",
        json={"username": "approver", "password": DEFAULT_PASSWORD},
        headers=_bearer(token),
    )
    assert granted.status_code == 200, granted.text

    session = instances.b.get("/auth/me", headers=_bearer(token)).json()["session"]
    assert session["elevated_by"] == admin_id
    assert session["elevated_until"] is not None
    after = instances.b.get("/auth/permissions", headers=_bearer(token)).json()
    assert after["permissions"]["clients.edit"] == "allow"
