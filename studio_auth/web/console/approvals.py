"""Supervised actions: what an assistant may do only with an admin's approval, and the
admin approving on the assistant's own screen with their password
(``permissions.grant_elevation``, through the password pool like every password check)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services import permissions
from services.errors import InvalidCredentials, PermissionDenied, Throttled
from services.sessions import SessionInfo
from studio_auth.clock import now
from studio_auth.web import signin
from studio_auth.web.console.browser import SignedIn, set_flash
from studio_auth.web.console.forms import Form, read_checked_form
from studio_auth.web.console.pages import (
    ConsoleRoute,
    redirect,
    render,
    supervised_actions,
    wait_message,
)
from studio_auth.web.deps import SessionFactory, SignIn
from studio_auth.web.errors import Overloaded

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def _approvals_page(
    request: Request, info: SessionInfo, form: Form | None = None, status_code: int = 200
) -> Response:
    until = info["elevated_until"]
    return render(
        request,
        "approvals.html",
        {
            "actions": supervised_actions(info),
            "approved_until": until if until is not None and until > now() else None,
            "username": form.text("username") if form else "",
            "errors": form.errors if form else {},
        },
        viewer=info,
        status_code=status_code,
    )


@router.get("/approvals")
async def approvals(request: Request, info: SignedIn) -> Response:
    return _approvals_page(request, info)


@router.post("/approvals")
async def approve(request: Request, info: SignedIn, ctx: SignIn) -> Response:
    form = await read_checked_form(request)
    username = form.require("username", "Enter the admin's username")
    password = form.require("password", "Enter the admin's password", strip=False)
    if not supervised_actions(info):
        form.fail("username", "Nothing you do needs an admin's approval")
    if form.errors:
        return _approvals_page(request, info, form, 422)
    try:
        await signin.grant_elevation(ctx, info["session_id"], username, password, None)
    except InvalidCredentials:
        form.fail("username", "The username or password is not right.")
        return _approvals_page(request, info, form, 401)
    except PermissionDenied:
        form.fail("username", "Only an admin can approve.")
        return _approvals_page(request, info, form, 403)
    except Throttled as exc:
        form.fail("username", wait_message(request, exc.retry_after))
        return _approvals_page(request, info, form, 429)
    except Overloaded:
        form.fail("username", "The service is busy. Wait a moment, then try again.")
        return _approvals_page(request, info, form, 503)
    response = redirect("/approvals")
    set_flash(response, "approved")
    return response


@router.post("/approvals/end")
async def end_approval(request: Request, info: SignedIn, factory: SessionFactory) -> Response:
    await read_checked_form(request)
    with factory() as db:
        permissions.end_elevation(db, info["session_id"], actor_id=info["id"])
        db.commit()
    response = redirect("/approvals")
    set_flash(response, "approval-ended")
    return response
