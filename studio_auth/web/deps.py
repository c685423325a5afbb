"""Request dependencies: database sessions, the bearer token, the client address, the
authenticated session, permission checks and what a sign-in route needs."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from services import permissions, sessions
from services.errors import Unavailable
from services.sessions import SessionInfo
from studio_auth.settings import Settings
from studio_auth.web.admission import KnownAddresses, PasswordPool
from studio_auth.web.errors import NotAuthenticated, PasswordChangeRequired
from studio_auth.web.pool import BoundedPool

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Documents the scheme in OpenAPI; the header is parsed below. Tokens are read from the
# Authorization header only, never from a query string, where they would end up in
# access logs, browser history and Referer headers.
_bearer = HTTPBearer(auto_error=False, description="The access_token from POST /auth/login")
_MAX_FORWARDED_HOPS = 32


# The dependencies that only read the request or the app's state are async: FastAPI runs
# a plain ``def`` dependency on the thread pool, a hop that costs more than the work.


def _settings(request: Request) -> Settings:
    settings = request.app.state.settings
    assert isinstance(settings, Settings)
    return settings


def _sessionmaker(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    return factory


async def get_session_factory(request: Request) -> sessionmaker[Session]:
    return _sessionmaker(request)


def _password_pool(request: Request) -> PasswordPool:
    pool = request.app.state.password_pool
    assert isinstance(pool, PasswordPool)
    return pool


async def get_password_pool(request: Request) -> PasswordPool:
    return _password_pool(request)


def get_db(request: Request) -> Iterator[Session]:
    """A database session for the request, closed (rolled back unless committed) after."""
    with _sessionmaker(request)() as db:
        yield db


def resolve_client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]
) -> str | None:
    """The client address: the socket peer, unless the peer is a trusted proxy, in which
    case X-Forwarded-For is walked from the right past trusted proxies to the first
    address they did not add themselves. Entries left of it are client-supplied and could
    be forged, so they are never used."""
    address = peer
    if not trusted or peer is None:
        return address
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops[-_MAX_FORWARDED_HOPS:]):
        if not _is_trusted(address, trusted):
            break
        try:
            address = str(ipaddress.ip_address(hop))
        except ValueError:
            break  # garbage from the hop before; keep the last address we can vouch for
    return address


def _is_trusted(address: str | None, trusted: Sequence[Network]) -> bool:
    if address is None:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def _client_address(request: Request) -> str | None:
    peer = request.client.host if request.client else None
    trusted = _settings(request).trusted_proxy_networks
    return resolve_client_address(peer, request.headers.getlist("x-forwarded-for"), trusted)


@dataclass(frozen=True, slots=True)
class SignInContext:
    """What a route that signs someone in needs from the app and the request, resolved
    as one dependency: FastAPI's resolution of each dependency costs the event loop
    more than the work inside it, and a refused sign-in does little else."""

    password_pool: PasswordPool
    throttle_pool: BoundedPool
    known_addresses: KnownAddresses
    session_factory: sessionmaker[Session]
    ip: str | None
    user_agent: str | None


async def sign_in_context(request: Request) -> SignInContext:
    state = request.app.state
    assert isinstance(state.throttle_pool, BoundedPool)
    assert isinstance(state.known_addresses, KnownAddresses)
    return SignInContext(
        password_pool=_password_pool(request),
        throttle_pool=state.throttle_pool,
        known_addresses=state.known_addresses,
        session_factory=_sessionmaker(request),
        ip=_client_address(request),
        user_agent=request.headers.get("user-agent"),
    )


def _resolve(factory: sessionmaker[Session], token: str) -> SessionInfo | None:
    with factory() as db:
        return sessions.resolve_session(db, token)


def _touch(factory: sessionmaker[Session], found: sessions.FoundSession) -> SessionInfo:
    with factory() as db:
        return sessions.touch_session(db, found)


async def resolve_token(request: Request, token: str) -> SessionInfo:
    """The live session of ``token``, however the request carried it (the API's bearer
    header, the console's cookie), even one whose user must change their password.

    Resolved on a short session of its own, so no connection is held afterwards.
    Raises NotAuthenticated, or Unavailable (503) when the session store fails: an
    outage never grants access.
    """
    # A token that cannot be one of ours costs neither a thread nor a database session.
    if sessions.token_digest(token) is None:
        raise NotAuthenticated
    factory = _sessionmaker(request)
    reader: Engine | None = request.app.state.loop_reader
    if reader is not None:
        # SQLite: read on the loop with a connection that never waits for a lock. If it
        # is busy (even connecting can be), or broken, the pool path below waits its turn
        # or reports the failure.
        try:
            with reader.connect() as conn:
                found = sessions.read_session(conn, token)
        except (Unavailable, SQLAlchemyError):
            pass
        else:
            if found is None:
                raise NotAuthenticated
            if not found.touch_due:
                return found.info
            return await run_in_threadpool(_touch, factory, found)  # a write
    # A blocking lookup must not stall the event loop: one thread hop.
    info = await run_in_threadpool(_resolve, factory, token)
    if info is None:
        raise NotAuthenticated
    return info


async def authenticated_session(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> SessionInfo:
    """The live session of the bearer token (user dict plus session fields), even one
    whose user must change their password (see ``resolve_token``)."""
    if credentials is None or not credentials.credentials:
        raise NotAuthenticated
    return await resolve_token(request, credentials.credentials)


async def current_session(
    info: Annotated[SessionInfo, Depends(authenticated_session)],
) -> SessionInfo:
    """The live session, refused (403) while its user must change their password."""
    if info.get("must_change_password"):
        raise PasswordChangeRequired
    return info


def _require(factory: sessionmaker[Session], info: SessionInfo, action: str) -> None:
    with factory() as db:
        permissions.require(db, info, action, session=info)
        db.commit()  # keeps an elevation_used record, if the action was supervised


def require_permission(
    action: str, session: Callable[..., Awaitable[SessionInfo]] = current_session
) -> Callable[..., Awaitable[SessionInfo]]:
    """A dependency that lets the request through only if the policy allows ``action`` to
    the user of ``session`` (a dependency: by default the bearer token's session); a
    denial is audited by the permission service."""

    # A default, not an Annotated hint: ``session`` is local, and FastAPI reads postponed
    # annotations from the module's globals.
    async def check(request: Request, info: SessionInfo = Depends(session)) -> SessionInfo:  # noqa: B008
        # A plain allow needs no database, so no thread hop; a denial (audited) and a
        # supervised action (its approval re-read and its use recorded) do.
        if permissions.decide(info, action, session=info).effect is not permissions.Effect.ALLOW:
            await run_in_threadpool(_require, _sessionmaker(request), info, action)
        return info

    return check


AuthenticatedSession = Annotated[SessionInfo, Depends(authenticated_session)]
CurrentSession = Annotated[SessionInfo, Depends(current_session)]
Db = Annotated[Session, Depends(get_db)]
PasswordPoolDep = Annotated[PasswordPool, Depends(get_password_pool)]
SignIn = Annotated[SignInContext, Depends(sign_in_context)]
SessionFactory = Annotated[sessionmaker[Session], Depends(get_session_factory)]
