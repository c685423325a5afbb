"""The app as a whole: health, headers, body limit, client addresses, the sign-in pools' sizes,
the interpreter settings of a running service and framework telemetry."""

from __future__ import annotations

import gc
import ipaddress
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.telemetry import get_telemetry_data
from fastapi.testclient import TestClient
from opentelemetry import trace
from sqlalchemy import Engine

from data.db.session import make_engine
from data.models import User
from studio_auth.settings import Settings
from studio_auth.web.app import GIL_SWITCH_SECONDS, create_app, create_served_app
from studio_auth.web.deps import resolve_client_address
from tests.conftest import DEFAULT_PASSWORD
from tests.web.conftest import Account, assert_problem

SECRET = "hunter2-very-secret"


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}


def test_readyz_is_503_when_migrations_are_not_current(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with TestClient(create_app(Settings(), engine=engine)) as client:
            assert client.get("/healthz").status_code == 200
            response = client.get("/readyz")
            assert_problem(response, 503, "not-ready")
            assert response.headers["retry-after"]
    finally:
        engine.dispose()


def test_the_running_service_shortens_the_interpreter_switch_interval(engine: Engine) -> None:
    before = sys.getswitchinterval()
    with TestClient(create_app(engine=engine)):
        assert sys.getswitchinterval() == min(before, GIL_SWITCH_SECONDS)
    assert sys.getswitchinterval() == before


def test_security_headers_on_every_response(client: TestClient, assistant: Account) -> None:
    for response in [
        client.get("/healthz"),
        client.get("/auth/me", headers=assistant.headers),
        client.get("/auth/me"),
        client.get("/no/such/route"),
    ]:
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "default-src 'none'" in response.headers["content-security-policy"]


def test_unknown_route_and_method_are_problems(client: TestClient) -> None:
    assert client.get("/no/such/route").status_code == 404
    assert client.get("/no/such/route").headers["content-type"] == "application/problem+json"
    assert client.get("/auth/login").status_code == 405


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/users", "GET, POST"),
        ("PUT", "/users/1", "GET, PATCH"),
        ("GET", "/auth/login", "POST"),
        ("PUT", "/auth/sessions/1", "DELETE"),
    ],
)
def test_405_allows_every_method_of_the_path(
    client: TestClient, method: str, path: str, allowed: str
) -> None:
    response = client.request(method, path)
    assert_problem(response, 405)
    assert response.headers["allow"] == allowed


def test_405_allows_every_method_behind_a_path_prefix(app: FastAPI) -> None:
    """Behind a proxy's prefix, the request's path carries the root_path, as uvicorn
    sends it with --root-path."""
    with TestClient(app, root_path="/auth-api") as client:
        response = client.request("OPTIONS", "/auth-api/users")
    assert_problem(response, 405)
    assert response.headers["allow"] == "GET, POST"


def test_openapi_is_served_and_docs_pages_are_not(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "/auth/login" in schema["paths"]
    assert client.get("/docs").status_code == 404


def _operations(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def test_openapi_documents_every_error_as_a_problem(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    problem = {"$ref": "#/components/schemas/Problem"}
    for name, operation in _operations(schema):
        responses = operation["responses"]
        # The body gate answers these on every route.
        assert {"400", "413", "415"} <= set(responses), name
        if operation.get("parameters") or operation.get("requestBody"):
            assert "422" in responses, name
        for status, response in responses.items():
            if int(status) >= 400:
                assert response["content"] == {"application/problem+json": {"schema": problem}}, (
                    name,
                    status,
                )


def _keys(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _keys(value)
    elif isinstance(node, list):
        for value in node:
            yield from _keys(value)


def test_openapi_bounds_are_json_schema_keywords(client: TestClient) -> None:
    """pydantic writes a bound it cannot place as "ge" or "le", which no validator reads."""
    schema = client.get("/openapi.json").json()
    assert not {"ge", "gt", "le", "lt"} & set(_keys(schema))
    elevate = schema["components"]["schemas"]["ElevateRequest"]["properties"]["minutes"]
    assert {"type": "integer", "minimum": 1, "maximum": 30} in elevate["anyOf"]


# --- the request body gate ------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "json"]
)
def test_a_body_that_is_not_json_is_415(client: TestClient, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    body = b'{"username": "ana", "password": "' + SECRET.encode() + b'"}'
    response = client.post("/auth/login", content=body, headers=headers)
    problem = assert_problem(response, 415, "unsupported-media-type")
    assert "application/json" in str(problem["detail"])
    assert SECRET not in response.text


@pytest.mark.parametrize(
    "body",
    [
        b'{"username": "ana", "password": "\xff\xfe"}',  # not UTF-8 at all
        '{"username": "ana", "password": "é"}'.encode("latin-1"),
        '{"username": "ana", "password": "x"}'.encode("utf-16"),  # with a byte order mark
        '{"username": "ana", "password": "x"}'.encode("utf-16-le"),  # ASCII and NULs
        '{"username": "ana", "password": "x"}'.encode("utf-32-be"),
        b'{"username": "ana", "password": "\xed\xa0\x80"}',  # an encoded lone surrogate
    ],
)
def test_a_json_body_that_is_not_utf8_is_400(client: TestClient, body: bytes) -> None:
    response = client.post(
        "/auth/login", content=body, headers={"content-type": "application/json"}
    )
    problem = assert_problem(response, 400, "malformed-body")
    assert "UTF-8" in str(problem["detail"])


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "APPLICATION/JSON", "application/merge-patch+json"],
)
def test_json_media_types_pass_the_gate(
    client: TestClient, make_user: Callable[..., User], content_type: str
) -> None:
    make_user("ana")
    body = b'{"username": "ana", "password": "' + DEFAULT_PASSWORD.encode() + b'"}'
    response = client.post("/auth/login", content=body, headers={"content-type": content_type})
    assert response.status_code == 200, response.text


def test_the_gate_checks_a_body_on_any_route(client: TestClient) -> None:
    assert_problem(
        client.post("/auth/logout", content=b"x", headers={"content-type": "text/plain"}),
        415,
        "unsupported-media-type",
    )
    # No body, no media type needed.
    assert_problem(client.post("/auth/logout"), 401, "unauthenticated")


def test_body_over_the_limit_is_413(client: TestClient) -> None:
    big = b'{"username": "ana", "password": "' + b"x" * 70_000 + b'"}'
    response = client.post("/auth/login", content=big, headers={"content-type": "application/json"})
    assert_problem(response, 413, "body-too-large")
    assert response.headers["cache-control"] == "no-store"


def test_chunked_body_over_the_limit_is_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"username": "ana", "password": "'
        for _ in range(20):
            yield b"x" * 4096
        yield b'"}'

    response = client.post(
        "/auth/login", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, "body-too-large")


def test_body_under_the_limit_passes(client: TestClient, make_user: Callable[..., User]) -> None:
    make_user("ana")
    body = b'{"username": "ana", "password": "' + DEFAULT_PASSWORD.encode() + b'"}'
    padded = body + b" " * 60_000
    response = client.post(
        "/auth/login", content=padded, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200


def test_limit_is_configurable(engine: Engine) -> None:
    app = create_app(Settings(max_body_bytes=1024), engine=engine)
    with TestClient(app) as client:
        response = client.post("/auth/login", json={"username": "a" * 2000, "password": "x"})
        assert_problem(response, 413, "body-too-large")


# --- client address ------------------------------------------------------------------

PROXIES = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128")]


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.7", ["198.51.100.1"], "203.0.113.7"),  # untrusted peer: header ignored
        ("10.0.0.2", ["198.51.100.1"], "198.51.100.1"),
        ("10.0.0.2", ["6.6.6.6, 198.51.100.1, 10.0.0.5"], "198.51.100.1"),
        ("10.0.0.2", ["6.6.6.6", "198.51.100.1"], "198.51.100.1"),
        ("10.0.0.2", ["not-an-ip"], "10.0.0.2"),
        ("10.0.0.2", [], "10.0.0.2"),
        ("::1", ["2001:db8::1"], "2001:db8::1"),
        (None, ["198.51.100.1"], None),
    ],
)
def test_forwarded_for_is_honoured_only_from_trusted_proxies(
    peer: str | None, forwarded: list[str], expected: str | None
) -> None:
    assert resolve_client_address(peer, forwarded, PROXIES) == expected


def test_forwarded_for_ignored_without_trusted_proxies() -> None:
    assert resolve_client_address("10.0.0.2", ["198.51.100.1"], []) == "10.0.0.2"


def test_session_records_the_forwarded_client(
    engine: Engine, make_user: Callable[..., User]
) -> None:
    make_user("ana")
    app = create_app(Settings(trusted_proxies="10.0.0.0/8"), engine=engine)
    with TestClient(app, client=("10.1.2.3", 4000)) as client:
        login = client.post(
            "/auth/login",
            json={"username": "ana", "password": DEFAULT_PASSWORD},
            headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.9"},
        )
        token = login.json()["access_token"]
        rows = client.get("/auth/sessions", headers={"Authorization": f"Bearer {token}"}).json()
    assert rows[0]["client_ip"] == "198.51.100.9"

    untrusted = create_app(Settings(), engine=engine)
    with TestClient(untrusted, client=("203.0.113.7", 4000)) as client:
        login = client.post(
            "/auth/login",
            json={"username": "ana", "password": DEFAULT_PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.9"},
        )
        token = login.json()["access_token"]
        rows = client.get("/auth/sessions", headers={"Authorization": f"Bearer {token}"}).json()
    assert {row["client_ip"] for row in rows} == {"198.51.100.9", "203.0.113.7"}


def test_bad_trusted_proxies_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="not an address"):
        Settings(trusted_proxies="10.0.0.0/8, example.com")


def test_throttle_pool_size_follows_the_database(engine: Engine) -> None:
    default = create_app(Settings(), engine=engine).state.throttle_pool
    # SQLite takes one writer at a time: more threads would only wait for its lock.
    assert default.workers == (1 if engine.dialect.name == "sqlite" else 4)
    assert default.capacity == default.workers + Settings().throttle_queue
    chosen = create_app(Settings(throttle_workers=3, throttle_queue=0), engine=engine)
    assert (chosen.state.throttle_pool.workers, chosen.state.throttle_pool.capacity) == (3, 3)


def test_the_served_app_keeps_its_start_up_heap_out_of_full_collections() -> None:
    # A full collection runs on whichever thread allocates, usually the event loop: with
    # the framework's objects in view, each paused every waiting request under a login
    # flood (docs/performance.md).
    frozen_before = gc.get_freeze_count()
    try:
        app = create_served_app()
        frozen = gc.get_freeze_count() - frozen_before
        tracked = len(gc.get_objects())
    finally:
        gc.unfreeze()  # this test process keeps its own collector as it was
    assert frozen > 10_000
    assert tracked < frozen / 10
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("value", [0, 65])
def test_throttle_workers_out_of_range_are_refused(value: int) -> None:
    with pytest.raises(ValueError, match="throttle_workers"):
        Settings(throttle_workers=value)


# --- framework telemetry ---------------------------------------------------------------


class _ConfiguredTracerProvider(trace.TracerProvider):
    """Stands for an OpenTelemetry SDK set up by the application around the service."""

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return trace.NoOpTracer()


def _body_seen_by_telemetry(app: FastAPI) -> object:
    seen: list[object] = []

    @app.post("/telemetry-probe")
    async def probe(body: dict[str, str]) -> dict[str, str]:
        data = get_telemetry_data()
        seen.append(None if data is None else data.body)
        return {}

    with TestClient(app) as client:
        assert (
            client.post("/telemetry-probe", json={"password": "hunter2 hunter2"}).status_code == 200
        )
    return seen[0]


def test_framework_telemetry_never_holds_request_bodies(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trace, "get_tracer_provider", _ConfiguredTracerProvider)
    # The check can fail: a plain FastAPI app hands the body to the telemetry context.
    assert _body_seen_by_telemetry(FastAPI()) == {"password": "hunter2 hunter2"}
    assert _body_seen_by_telemetry(create_app(engine=engine)) is None


def test_every_api_operation_refuses_a_body_that_is_not_json(client: TestClient) -> None:
    """The console's pages take form posts; every operation the API documents takes JSON
    only, and says so before authentication or validation."""
    paths = client.get("/openapi.json").json()["paths"]
    for path, operations in paths.items():
        url = path.replace("{user_id}", "1").replace("{session_id}", "1")
        url = url.replace("{artist_id}", "1")
        for method in operations:
            response = client.request(
                method, url, content=b"a=1", headers={"content-type": "text/plain"}
            )
            assert response.status_code == 415, (method, path, response.status_code)
