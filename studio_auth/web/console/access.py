"""Signing in and out of the console, and the steps required before anything else.

Sign-in goes through the same orchestration as ``POST /auth/login``
(``studio_auth.web.signin.sign_in``: the throttle pool, the password pool, refunds), so a
browser is throttled, admitted and audited exactly like an API client.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services import sessions
from services.errors import InvalidCredentials, Throttled
from studio_auth.web import signin
from studio_auth.web.console.account import change_password_page
from studio_auth.web.console.browser import (
    PageSession,
    clear_session_cookie,
    optional_page_session,
    required_step,
    set_flash,
    set_session_cookie,
)
from studio_auth.web.console.forms import Form, read_checked_form, read_form
from studio_auth.web.console.pages import ConsoleRoute, redirect, render, wait_message
from studio_auth.web.deps import PasswordPoolDep, SessionFactory, SignIn
from studio_auth.web.errors import Overloaded

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

# One sentence for every credential failure: unknown name, wrong password, deactivated
# account (ASVS 5.0 6.3.8; the specification's enumeration warning).
SIGN_IN_FAILED = "The username or password is not right."
BUSY = "The service is busy. Wait a moment, then sign in again."


def _sign_in_page(request: Request, form: Form | None, status_code: int = 200) -> HTMLResponse:
    username = form.text("username") if form else ""
    return render(
        request,
        "sign_in.html",
        {"username": username, "errors": form.errors if form else {}},
        status_code=status_code,
    )


@router.get("/")
async def home(request: Request) -> Response:
    info = await optional_page_session(request)
    return redirect("/account" if info else "/sign-in")


@router.get("/sign-in")
async def sign_in_form(request: Request) -> Response:
    if await optional_page_session(request) is not None:
        return redirect("/account")
    return _sign_in_page(request, None)


@router.post("/sign-in")
async def sign_in(request: Request, ctx: SignIn) -> Response:
    form = await read_form(request)
    username = form.require("username", "Enter your username")
    password = form.require("password", "Enter your password", strip=False)
    if form.errors:
        return _sign_in_page(request, form, 422)
    try:
        result = await signin.sign_in(ctx, username, password)
    except InvalidCredentials:
        form.fail("username", SIGN_IN_FAILED)
        return _sign_in_page(request, form, 401)
    except Throttled as exc:
        form.fail("username", wait_message(request, exc.retry_after))
        return _sign_in_page(request, form, 429)
    except Overloaded:
        form.fail("username", BUSY)
        return _sign_in_page(request, form, 503)
    response = redirect(required_step(result.user) or "/account")
    set_session_cookie(response, result.token)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, factory: SessionFactory) -> Response:
    """End the server-side session, not only the cookie; a browser without a live session
    is simply sent to the sign-in page."""
    info = await optional_page_session(request)
    if info is not None:
        await read_checked_form(request)
        with factory() as db:
            sessions.revoke_session(db, info["session_id"], reason="logout", user_id=info["id"])
            db.commit()
    response = redirect("/sign-in")
    clear_session_cookie(response)
    if info is not None:
        set_flash(response, "signed-out")
    return response


@router.get("/required/password")
async def required_password_form(request: Request, info: PageSession) -> Response:
    if required_step(info) != "/required/password":
        return redirect("/account")
    return render(request, "required_password.html", viewer=info)


@router.post("/required/password")
async def required_password(
    request: Request, info: PageSession, pool: PasswordPoolDep, factory: SessionFactory
) -> Response:
    if required_step(info) != "/required/password":
        return redirect("/account")
    form = await read_checked_form(request)
    return await change_password_page(request, info, form, "required_password.html", pool, factory)
