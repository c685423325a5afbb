"""The FastAPI application factory. Nothing is built at import: ``create_app()`` makes the
engine, the sign-in pools and the app, so tests and each uvicorn worker build
their own."""

from __future__ import annotations

import gc
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from sqlalchemy import Engine

from data.db.session import make_engine, make_sessionmaker
from studio_auth.settings import Settings, get_settings
from studio_auth.web.admission import KnownAddresses, PasswordPool
from studio_auth.web.console import install_console
from studio_auth.web.errors import document_problems, install_error_handlers
from studio_auth.web.middleware import RequestBodyMiddleware, SecurityHeadersMiddleware
from studio_auth.web.pool import BoundedPool
from studio_auth.web.routers import artists, audit, auth, health, users

API_DESCRIPTION = """\
Sign-in, sessions, permissions and account administration for a studio. The staff's web
console is served by the same app at `/` (its pages are not part of this schema).

Send the `access_token` from `POST /auth/login` as `Authorization: Bearer <token>`.
Errors are RFC 9457 problem details (`application/problem+json`).
"""


# While the service runs, a thread running Python (counting a throttled sign-in, say)
# hands the interpreter lock back to the event loop after this long, not after Python's
# default 5 ms, which a token check would otherwise wait each time the loop gives up the
# lock for a socket call (docs/performance.md).
GIL_SWITCH_SECONDS = 0.0005

# FastAPI's built-in OpenTelemetry hooks keep each request's body and validated values
# (a password, on sign-in) where the processors of any configured OpenTelemetry SDK can
# read them, and look the providers up on every request. The service records what
# happens in its own audit trail and logs instead.
TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}

# Threads that count sign-in attempts on a database that takes concurrent writers; SQLite
# takes one writer at a time, so it gets one thread.
THROTTLE_WORKERS = 4


class StudioAuthAPI(FastAPI):
    """FastAPI, with an OpenAPI document that says what the service sends (errors as
    problem details, and the answers every route can give: ``document_problems``)."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = document_problems(super().openapi())
        return self.openapi_schema


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """A new application on ``engine`` (default: one made for ``settings.database_url``).

    ``settings`` (default: the process settings) sets the web layer's knobs: body limit,
    trusted proxies and the sign-in pools. The services read the process settings.
    An engine passed in belongs to the caller and is not disposed at shutdown.
    """
    settings = settings or get_settings()
    bound = engine if engine is not None else make_engine(settings.database_url)
    password_pool = PasswordPool(settings.password_workers, settings.password_queue)
    throttle_pool = _make_throttle_pool(settings, bound)
    loop_reader = _make_loop_reader(bound)
    disposes = [loop_reader] if loop_reader is not None else []
    if engine is None:
        disposes.append(bound)

    app = StudioAuthAPI(
        title="studio-auth",
        version="0.1.0",
        description=API_DESCRIPTION,
        lifespan=_lifespan(stops=(password_pool, throttle_pool), disposes=tuple(disposes)),
        # The API serves JSON only; the schema stays at /openapi.json. The interactive
        # pages would need scripts from elsewhere and a looser content security policy.
        docs_url=None,
        redoc_url=None,
        telemetry=TELEMETRY_OFF,
    )
    app.state.settings = settings
    app.state.engine = bound
    app.state.sessionmaker = make_sessionmaker(bound)
    app.state.loop_reader = loop_reader
    app.state.password_pool = password_pool
    app.state.throttle_pool = throttle_pool
    app.state.known_addresses = KnownAddresses()

    install_error_handlers(app)
    _add_middleware(app, settings)
    _include_routers(app)
    install_console(app)
    return app


def _lifespan(
    *, stops: tuple[BoundedPool, ...], disposes: tuple[Engine, ...]
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """While the app runs, a short interpreter switch interval; when it stops, the pools
    in ``stops`` are shut down and the engines in ``disposes`` disposed."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        previous = sys.getswitchinterval()
        sys.setswitchinterval(min(previous, GIL_SWITCH_SECONDS))
        try:
            yield
        finally:
            sys.setswitchinterval(previous)
            for pool in stops:
                pool.shutdown()
            for engine in disposes:
                engine.dispose()

    return lifespan


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    # Added last runs first: the headers wrap every response, including a 413.
    app.add_middleware(RequestBodyMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeadersMiddleware)


def _include_routers(app: FastAPI) -> None:
    app.include_router(auth.router)
    app.include_router(users.router)
    app.include_router(artists.router)
    app.include_router(audit.router)
    app.include_router(health.router)


def create_served_app() -> FastAPI:
    """``create_app()`` for ``studio-auth serve``, which owns its process (each worker
    process calls it): once the app is built, what is alive is collected once and then
    frozen out of the cyclic garbage collector's sight (``gc.freeze``).

    A full collection runs on whichever thread happens to allocate, usually the event
    loop, and scans every tracked object: with the whole framework in the heap, a long
    pause for every request waiting on the loop (docs/performance.md). Frozen, the
    modules, routes and schemas built at start are no longer scanned; what requests
    create still is, and is still freed. Not done by ``create_app``: an app embedded in
    another process leaves that process's collector alone.
    """
    app = create_app()
    gc.collect()
    gc.freeze()
    return app


def _make_throttle_pool(settings: Settings, engine: Engine) -> BoundedPool:
    """The small pool that counts sign-in attempts, apart from the framework's shared
    thread pool: under a flood of throttled attempts a few threads take the writes in
    turn instead of dozens contending for the interpreter lock and the database's write
    lock."""
    default_workers = 1 if engine.dialect.name == "sqlite" else THROTTLE_WORKERS
    return BoundedPool(
        settings.throttle_workers or default_workers, settings.throttle_queue, name="throttle"
    )


def _make_loop_reader(engine: Engine) -> Engine | None:
    """For a SQLite file, a second engine whose one connection reads sessions on the event
    loop, never waiting for a lock (busy timeout 0: a busy database fails at once and the
    request takes the thread pool instead). In WAL mode a read does not wait for writers,
    so a token check costs no thread hop. None for other databases, whose reads are
    network round trips and stay off the loop."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return make_engine(
        url.render_as_string(hide_password=False),
        busy_timeout_ms=0,
        pool_size=1,
        max_overflow=0,
    )
