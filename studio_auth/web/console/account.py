"""The Account page: one's own password, sessions and sign-in history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from data.db.base import DB_ID_MAX
from services import audit, sessions
from services.errors import (
    InvalidCredentials,
    InvalidRequest,
    NotFound,
    PasswordRejected,
    Throttled,
)
from services.sessions import SessionInfo
from studio_auth.web import signin
from studio_auth.web.console.browser import SignedIn, set_flash, set_session_cookie
from studio_auth.web.console.forms import Form, read_checked_form
from studio_auth.web.console.pages import ConsoleRoute, redirect, render, wait_message
from studio_auth.web.deps import PasswordPoolDep, SessionFactory
from studio_auth.web.errors import Overloaded

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

SessionId = Annotated[int, Path(ge=1, le=DB_ID_MAX)]


def account_page(
    request: Request,
    factory: SessionFactory,
    info: SessionInfo,
    form: Form | None = None,
    status_code: int = 200,
) -> Response:
    with factory() as db:
        live = sessions.list_sessions(db, info["id"])
        history = audit.sign_in_history(db, info["id"], info["username"])
    return render(
        request,
        "account.html",
        {
            "sessions": live,
            "current_session": info["session_id"],
            "history": history,
            "errors": form.errors if form else {},
        },
        viewer=info,
        status_code=status_code,
    )


@router.get("/account")
async def account(request: Request, info: SignedIn, factory: SessionFactory) -> Response:
    return account_page(request, factory, info)


async def change_password_page(
    request: Request,
    info: SessionInfo,
    form: Form,
    template: str,
    pool: PasswordPoolDep,
    factory: SessionFactory,
) -> Response:
    """Change the viewer's own password from ``form`` (the account page's, or the
    required step's ``template``): on success the session is rotated and its new token
    replaces the cookie; otherwise ``template`` again, with the errors beside the fields."""
    current = form.require("current_password", "Enter your current password", strip=False)
    new = form.require("new_password", "Enter a new password", strip=False)
    status_code = 422
    if not form.errors:
        try:
            issued, _user = await signin.change_password(
                pool,
                factory,
                user_id=info["id"],
                session_id=info["session_id"],
                current=current,
                new=new,
            )
        except InvalidCredentials:
            form.fail("current_password", "The current password is not right")
        except Throttled as exc:
            form.fail("current_password", wait_message(request, exc.retry_after))
            status_code = 429
        except PasswordRejected as exc:
            form.fail("new_password", " ".join(exc.reasons))
        except Overloaded:
            form.fail("current_password", "The service is busy. Wait a moment, then try again.")
            status_code = 503
        else:
            response = redirect("/account")
            set_session_cookie(response, issued.token)
            set_flash(response, "password-changed")
            return response
    if template == "account.html":
        return account_page(request, factory, info, form, status_code)
    return render(request, template, {"errors": form.errors}, viewer=info, status_code=status_code)


@router.post("/account/password")
async def change_password(
    request: Request, info: SignedIn, pool: PasswordPoolDep, factory: SessionFactory
) -> Response:
    form = await read_checked_form(request)
    return await change_password_page(request, info, form, "account.html", pool, factory)


@router.post("/account/sessions/{session_id}/end")
async def end_session(
    request: Request, session_id: SessionId, info: SignedIn, factory: SessionFactory
) -> Response:
    await read_checked_form(request)
    if session_id == info["session_id"]:
        raise InvalidRequest("this is the session you are using: sign out to end it")
    with factory() as db:
        ended = sessions.revoke_session(
            db, session_id, reason="revoked_by_user", actor_id=info["id"], user_id=info["id"]
        )
        if not ended:
            raise NotFound("no live session of yours with that id")
        db.commit()
    response = redirect("/account")
    set_flash(response, "session-ended")
    return response
