"""Schemathesis against the service's own OpenAPI, in process (no network): generated
requests, valid and invalid, as an admin, must never get a server error. Bounded in
examples per operation and in time per example, so it runs in CI. Each operation gets
a fresh database of each backend (PostgreSQL refuses some inputs SQLite takes, such as
NUL characters, so both matter)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from sqlalchemy import Engine

from data.db.session import make_sessionmaker
from data.models import Role, User
from studio_auth.settings import Settings
from studio_auth.web.app import create_app
from tests.web.conftest import sign_in

warnings.filterwarnings("ignore", message=".*httpx2.*")
from fastapi.testclient import TestClient  # noqa: E402

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 30


# The schema is read from an app built at import; each test points that app at its own
# database (the routes find the engine and session factory on app.state).
APP = create_app(Settings())
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture
def admin_token(engine: Engine, make_user: Callable[..., User]) -> Iterator[str]:
    original = APP.state.engine, APP.state.sessionmaker
    APP.state.engine, APP.state.sessionmaker = engine, make_sessionmaker(engine)
    make_user("root", role=Role.ADMIN)
    make_user("desk", role=Role.ASSISTANT)
    make_user("rin", role=Role.ARTIST)
    try:
        with TestClient(APP) as client:
            yield sign_in(client, "root")
    finally:
        APP.state.engine, APP.state.sessionmaker = original


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=5000,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case: Any, admin_token: str) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {admin_token}"}, checks=[not_a_server_error]
    )
