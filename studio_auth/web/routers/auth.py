"""/auth: sign in and out, the current user and session, own sessions, own password,
effective permissions and supervised elevation."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response, status

from data.db.base import DB_ID_MAX
from data.models import User
from services import permissions, sessions, throttle, users
from services.auth import UserInfo, check_throttle, user_info
from services.errors import NotFound, Unavailable
from services.throttle import Attempt
from studio_auth.web.admission import priority_of_address, priority_of_attempt
from studio_auth.web.deps import (
    AuthenticatedSession,
    CurrentSession,
    Db,
    PasswordPoolDep,
    SessionFactory,
    SignIn,
)
from studio_auth.web.errors import Overloaded, problem_responses
from studio_auth.web.pool import Priority
from studio_auth.web.schemas import (
    ElevateRequest,
    ElevationResponse,
    LoginRequest,
    MeResponse,
    PasswordChangeRequest,
    PermissionsResponse,
    SessionListItem,
    TokenResponse,
    UserOut,
)

router = APIRouter(prefix="/auth", tags=["auth"])

_AUTHED = (401, 503)


def _token_response(token: str, expires_at: Any, user: UserInfo) -> TokenResponse:
    return TokenResponse(access_token=token, expires_at=expires_at, user=UserOut(**user))


@router.post(
    "/login",
    response_model=TokenResponse,
    responses=problem_responses(401, 413, 422, 429, 503),
    summary="Sign in with a username and password",
)
async def login(body: LoginRequest, ctx: SignIn) -> TokenResponse:
    username, password = body.username, body.password.get_secret_value()
    pool, factory, ip, agent = ctx.password_pool, ctx.session_factory, ctx.ip, ctx.user_agent

    def admit() -> Attempt:
        with factory() as db:
            return check_throttle(db, username, ip=ip, user_agent=agent)

    # A pool too full for this address's priority (see admission) refuses before
    # anything is counted, so a 503 never costs the user an attempt (a race with another
    # request, or a count that lowers the priority, can still end in 503). Then the
    # throttle decides on its own small pool, off the password pool: a flood of throttled
    # attempts costs no bcrypt and takes no slot that a legitimate sign-in could have had.
    address_priority = priority_of_address(ctx.known_addresses, ip)
    pool.check_capacity(address_priority)
    # Every attempt is counted, and every refund made, at one priority: in order of arrival.
    attempt = await ctx.throttle_pool.run(admit, Priority.NORMAL)

    def work() -> sessions.LoginResult:
        with factory() as db:
            return sessions.login(db, username, password, ip=ip, user_agent=agent, attempt=attempt)

    def give_back() -> None:
        with factory() as db:
            throttle.refund_attempt(db, attempt)

    try:
        result = await pool.run(work, priority_of_attempt(attempt, address_priority))
    except Overloaded:
        # Counted, but no password was checked: give back what the count took, so that
        # retries refused for want of a slot cannot lock the name out. If even that finds
        # no slot, the count stays (counting too much is the safe side).
        with contextlib.suppress(Overloaded, Unavailable):
            await ctx.throttle_pool.run(give_back, Priority.NORMAL)
        raise
    ctx.known_addresses.add(ip)
    return _token_response(result.token, result.expires_at, result.user)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(*_AUTHED),
    summary="End the current session",
)
def logout(info: AuthenticatedSession, db: Db) -> Response:
    sessions.revoke_session(db, info["session_id"], reason="logout", user_id=info["id"])
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/me",
    response_model=MeResponse,
    responses=problem_responses(*_AUTHED),
    summary="The current user and session",
)
async def me(info: AuthenticatedSession) -> dict[str, Any]:
    # Everything comes from the one query that resolved the token: no bcrypt, no
    # further reads, and never a wait behind password checks. Async, so building and
    # checking the response costs no thread hop; a plain dict, which FastAPI validates
    # against MeResponse once (a model instance would be dumped and validated again).
    return {
        "user": info,
        "session": {
            "id": info["session_id"],
            "expires_at": info["expires_at"],
            "idle_expires_at": info["idle_expires_at"],
            "elevated_by": info["elevated_by"],
            "elevated_until": info["elevated_until"],
        },
    }


@router.get(
    "/sessions",
    response_model=list[SessionListItem],
    responses=problem_responses(401, 403, 503),
    summary="The current user's live sessions, newest first",
)
def list_own_sessions(info: CurrentSession, db: Db) -> list[SessionListItem]:
    return [
        SessionListItem(
            id=row.id,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            expires_at=row.expires_at,
            client_ip=row.client_ip,
            user_agent=row.user_agent,
            elevated_until=row.elevated_until,
            current=row.id == info["session_id"],
        )
        for row in sessions.list_sessions(db, info["id"])
    ]


@router.delete(
    "/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 503),
    summary="End one of the current user's sessions",
)
def revoke_own_session(
    session_id: Annotated[int, Path(ge=1, le=DB_ID_MAX)], info: CurrentSession, db: Db
) -> Response:
    revoked = sessions.revoke_session(
        db, session_id, reason="revoked_by_user", actor_id=info["id"], user_id=info["id"]
    )
    if not revoked:
        # Another user's session is "not found" too: its existence is not the caller's
        # business.
        raise NotFound("no live session of yours with that id")
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/password",
    response_model=TokenResponse,
    responses=problem_responses(401, 413, 422, 429, 503),
    summary="Change the current user's password; other sessions end",
)
async def change_own_password(
    body: PasswordChangeRequest,
    info: AuthenticatedSession,
    pool: PasswordPoolDep,
    factory: SessionFactory,
) -> TokenResponse:
    current = body.current_password.get_secret_value()
    new = body.new_password.get_secret_value()

    def work() -> TokenResponse:
        with factory() as db:
            issued = users.change_password(
                db, info["id"], current, new, session_id=info["session_id"]
            )
            assert issued is not None  # a session id was given, so a new session exists
            user = db.get(User, info["id"])
            assert user is not None
            fresh = user_info(user)
            db.commit()
        return _token_response(issued.token, issued.expires_at, fresh)

    return await pool.run(work, Priority.HIGH)  # a signed-in user's work


@router.get(
    "/permissions",
    response_model=PermissionsResponse,
    responses=problem_responses(401, 403, 503),
    summary="What the current user may do",
)
async def effective_permissions(info: CurrentSession) -> PermissionsResponse:
    granted = permissions.effective_permissions(info, session=info)
    return PermissionsResponse(
        role=info["role"],
        permissions=granted,
        elevated_until=info["elevated_until"],
    )


@router.post(
    "/elevate",
    response_model=ElevationResponse,
    responses=problem_responses(401, 403, 404, 413, 422, 429, 503),
    summary="An admin approves supervised actions on the current (assistant's) session",
)
async def elevate(body: ElevateRequest, info: CurrentSession, ctx: SignIn) -> ElevationResponse:
    username, password = body.username, body.password.get_secret_value()
    session_id = info["session_id"]
    ip, agent = ctx.ip, ctx.user_agent

    def work() -> ElevationResponse:
        with ctx.session_factory() as db:
            until = permissions.grant_elevation(
                db,
                session_id,
                username,
                password,
                minutes=body.minutes,
                ip=ip,
                user_agent=agent,
            )
            db.commit()
        return ElevationResponse(session_id=session_id, elevated_until=until)

    return await ctx.password_pool.run(work, Priority.HIGH)  # a signed-in user's work
