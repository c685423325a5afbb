"""/auth: sign in and out, the current user and session, own sessions, own password,
effective permissions and supervised elevation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response, status

from data.db.base import DB_ID_MAX
from services import permissions, sessions
from services.auth import UserInfo
from services.errors import NotFound
from studio_auth.web import signin
from studio_auth.web.deps import (
    AuthenticatedSession,
    CurrentSession,
    Db,
    PasswordPoolDep,
    SessionFactory,
    SignIn,
)
from studio_auth.web.errors import problem_responses
from studio_auth.web.json_route import JsonRoute
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

router = APIRouter(prefix="/auth", tags=["auth"], route_class=JsonRoute)

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
    result = await signin.sign_in(ctx, body.username, body.password.get_secret_value())
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
    issued, user = await signin.change_password(
        pool,
        factory,
        user_id=info["id"],
        session_id=info["session_id"],
        current=body.current_password.get_secret_value(),
        new=body.new_password.get_secret_value(),
    )
    return _token_response(issued.token, issued.expires_at, user)


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
    session_id = info["session_id"]
    until = await signin.grant_elevation(
        ctx, session_id, body.username, body.password.get_secret_value(), body.minutes
    )
    return ElevationResponse(session_id=session_id, elevated_until=until)
