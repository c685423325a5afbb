"""/users: account administration (the ``staff.manage_users`` permission)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, status

from data.db.base import DB_ID_MAX
from data.models import User
from services import sessions, throttle, users
from services.errors import NotFound
from services.sessions import SessionInfo
from studio_auth.web.deps import Db, PasswordPoolDep, SessionFactory, require_permission
from studio_auth.web.errors import problem_responses
from studio_auth.web.json_route import JsonRoute
from studio_auth.web.pool import Priority
from studio_auth.web.schemas import (
    PasswordResetRequest,
    RevokedResponse,
    UnlockResponse,
    UserCreateRequest,
    UserDetail,
    UserUpdateRequest,
)

router = APIRouter(prefix="/users", tags=["users"], route_class=JsonRoute)

Admin = Annotated[SessionInfo, Depends(require_permission("staff.manage_users"))]
UserId = Annotated[int, Path(ge=1, le=DB_ID_MAX)]


def describe_user(user: User) -> UserDetail:
    return UserDetail(
        id=user.id,
        username=user.username,
        role=user.role.value,
        artist_id=user.artist_id,
        must_change_password=user.must_change_password,
        is_active=user.is_active,
        last_login=user.last_login,
        created_at=user.created_at,
        password_changed_at=user.password_changed_at,
    )


def _require_user(db: Any, user_id: int) -> User:
    user = users.get_user(db, user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id}")
    return user


@router.get(
    "",
    response_model=list[UserDetail],
    responses=problem_responses(401, 403, 503),
    summary="Every account, active or not",
)
def list_users(_admin: Admin, db: Db) -> list[UserDetail]:
    return [describe_user(user) for user in users.list_users(db)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=UserDetail,
    responses=problem_responses(401, 403, 404, 409, 413, 422, 503),
    summary="Create an account; by default its first sign-in must change the password",
)
async def create_user(
    body: UserCreateRequest, admin: Admin, pool: PasswordPoolDep, factory: SessionFactory
) -> UserDetail:
    password = body.password.get_secret_value()

    def work() -> UserDetail:
        with factory() as db:
            user = users.create_user(
                db,
                body.username,
                password,
                body.role,
                artist_id=body.artist_id,
                must_change_password=body.must_change_password,
                actor=admin,
            )
            db.commit()
            return describe_user(user)

    return await pool.run(work, Priority.HIGH)  # a signed-in user's work


@router.get(
    "/{user_id}",
    response_model=UserDetail,
    responses=problem_responses(401, 403, 404, 503),
    summary="One account",
)
def get_user(user_id: UserId, _admin: Admin, db: Db) -> UserDetail:
    return describe_user(_require_user(db, user_id))


@router.patch(
    "/{user_id}",
    response_model=UserDetail,
    responses=problem_responses(401, 403, 404, 413, 422, 503),
    summary="Change role, artist link or activation; the user's sessions end",
)
def update_user(user_id: UserId, body: UserUpdateRequest, admin: Admin, db: Db) -> UserDetail:
    # Only the fields sent; the schema refuses null for those that cannot be null.
    changes: dict[str, Any] = {name: getattr(body, name) for name in body.model_fields_set}
    user = users.update_user(db, user_id, actor=admin, **changes)
    db.commit()
    return describe_user(user)


@router.post(
    "/{user_id}/password",
    response_model=UserDetail,
    responses=problem_responses(401, 403, 404, 413, 422, 503),
    summary="Set a user's password; all their sessions end",
)
async def reset_password(
    user_id: UserId,
    body: PasswordResetRequest,
    admin: Admin,
    pool: PasswordPoolDep,
    factory: SessionFactory,
) -> UserDetail:
    password = body.new_password.get_secret_value()

    def work() -> UserDetail:
        with factory() as db:
            user = users.reset_password(
                db, user_id, password, must_change=body.must_change_password, actor=admin
            )
            db.commit()
            return describe_user(user)

    return await pool.run(work, Priority.HIGH)  # a signed-in user's work


@router.post(
    "/{user_id}/sessions/revoke",
    response_model=RevokedResponse,
    responses=problem_responses(401, 403, 404, 503),
    summary="End every session of a user",
)
def revoke_sessions(user_id: UserId, admin: Admin, db: Db) -> RevokedResponse:
    user = _require_user(db, user_id)
    count = sessions.revoke_user_sessions(
        db, user.id, reason="revoked_by_admin", actor_id=admin["id"]
    )
    db.commit()
    return RevokedResponse(revoked=count)


@router.post(
    "/{user_id}/unlock",
    response_model=UnlockResponse,
    responses=problem_responses(401, 403, 404, 503),
    summary="Clear a user's failed sign-in count and lock",
)
def unlock(user_id: UserId, admin: Admin, db: Db) -> UnlockResponse:
    user = _require_user(db, user_id)
    cleared = throttle.unlock(db, user.username, actor_id=admin["id"])
    db.commit()
    return UnlockResponse(unlocked=cleared)
