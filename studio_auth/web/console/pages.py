"""Rendering the console's pages: one Jinja2 environment, the layout's shared values, and
the route class that turns every failure of a page into a page.

A route gathers what its page shows from ``services/`` and hands it to ``render``; the
templates only loop and test.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services import permissions
from services.errors import InvalidRequest, NotFound, PermissionDenied, Unavailable
from services.sessions import SessionInfo
from studio_auth.clock import now
from studio_auth.settings import Settings
from studio_auth.web.console.browser import (
    FLASH_COOKIE,
    CrossSiteRequest,
    NotSignedIn,
    StepRequired,
    check_same_origin,
    clear_flash,
    clear_session_cookie,
    csrf_token,
)
from studio_auth.web.errors import (
    OVERLOADED_RETRY_AFTER,
    UNAVAILABLE_RETRY_AFTER,
    Overloaded,
    is_outage,
)

logger = logging.getLogger("studio_auth.web")

HERE = Path(__file__).resolve().parent
TEMPLATES = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True),  # every value is escaped (ASVS 5.0 1.2.1)
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

# What the next page says after an action (browser.set_flash); fixed sentences only.
FLASH_MESSAGES: Mapping[str, str] = {
    "signed-out": "You have signed out.",
    "password-changed": "Your password is changed. Your other sessions have ended.",
    "session-ended": "That session has ended.",
    "role-changed": "The role is changed. Their sessions have ended.",
    "deactivated": "The account is deactivated. Its sessions have ended.",
    "activated": "The account is active again. It can sign in.",
    "unlocked": "The account is unlocked. Its failed attempts are cleared.",
    "not-locked": "The account was not locked. Nothing changed.",
    "sessions-ended": "Every session of the account has ended.",
    "no-sessions": "The account had no sessions. Nothing changed.",
    "approved": "Approved. The supervised actions are open on this session.",
    "approval-ended": "The approval has ended.",
}


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str
    current: bool


# Navigation: label, path, and the permission that shows it (None: everyone).
NAVIGATION: tuple[tuple[str, str, str | None], ...] = (
    ("Account", "/account", None),
    ("Staff", "/staff", "staff.manage_users"),
    ("Audit", "/audit-trail", "audit.view"),
)


def supervised_actions(info: SessionInfo) -> list[str]:
    """The actions the policy lets this user take only with an admin's approval."""
    return [
        action
        for action, effect in permissions.effective_permissions(info).items()
        if effect == permissions.Effect.SUPERVISED
    ]


def navigation(info: SessionInfo, path: str) -> list[NavItem]:
    items = [
        NavItem(label, href, path == href or path.startswith(href + "/"))
        for label, href, action in NAVIGATION
        if action is None or permissions.can(info, action, session=info)
    ]
    if supervised_actions(info):
        items.append(NavItem("Approvals", "/approvals", path.startswith("/approvals")))
    return items


def _settings(request: Request) -> Settings:
    settings = request.app.state.settings
    assert isinstance(settings, Settings)
    return settings


def local_time(request: Request, value: datetime | None, fmt: str = "%d %b %Y, %H:%M") -> str:
    """``value`` in the studio's time zone (``STUDIO_AUTH_TIME_ZONE``), as people read
    it; an empty string for None."""
    if value is None:
        return ""
    return value.astimezone(_settings(request).zone).strftime(fmt)


def wait_message(request: Request, seconds: int) -> str:
    """The throttle's wait as a time of day in the studio's time zone and as a span:
    "Try again after 09:17 (in 3 minutes)"."""
    until = local_time(request, now() + timedelta(seconds=seconds), "%H:%M")
    if seconds < 60:
        span = "1 second" if seconds == 1 else f"{seconds} seconds"
    else:
        minutes = -(-seconds // 60)
        span = "1 minute" if minutes == 1 else f"{minutes} minutes"
    return f"Too many failed attempts. Try again after {until} (in {span})."


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    viewer: SessionInfo | None = None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """The page ``template`` with ``context`` and what the layout needs: the studio's
    name, the navigation and the anti-forgery token for ``viewer``, and a message left
    by the previous action (shown once)."""
    settings = _settings(request)
    flash_key = request.cookies.get(FLASH_COOKIE)
    values: dict[str, Any] = {
        "studio_name": settings.studio_name or "studio-auth",
        "viewer": viewer,
        "nav": navigation(viewer, request.url.path) if viewer else [],
        "csrf_token": csrf_token(request) if viewer else "",
        "flash": FLASH_MESSAGES.get(flash_key or ""),
        "errors": {},
        "time": lambda value, fmt="%d %b %Y, %H:%M": local_time(request, value, fmt),
        "zone": settings.time_zone,
        **(context or {}),
    }
    body = TEMPLATES.get_template(template).render(values)
    response = HTMLResponse(body, status_code=status_code, headers=dict(headers or {}))
    if flash_key is not None:
        clear_flash(response)
    return response


def redirect(path: str) -> RedirectResponse:
    """See other: after a post, the browser asks for ``path`` with a GET."""
    return RedirectResponse(path, status_code=303)


def error_page(
    request: Request, status_code: int, title: str, message: str, *, retry_after: int | None = None
) -> HTMLResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return render(
        request,
        "error.html",
        {"title": title, "message": message},
        status_code=status_code,
        headers=headers,
    )


def _not_found(request: Request) -> HTMLResponse:
    return error_page(
        request, 404, "Page not found", "There is no such page. Check the address or go back."
    )


def _busy(request: Request, retry_after: int) -> HTMLResponse:
    return error_page(
        request,
        503,
        "Busy right now",
        "The service is busy or cannot reach its database. Wait a moment and try again.",
        retry_after=retry_after,
    )


def is_page_request(request: Request) -> bool:
    """Whether a failure should be answered with a page: the request was for a console
    page, or for no route at all from a browser (which asks for HTML first)."""
    route = request.scope.get("route")
    if route is not None:
        return isinstance(route, ConsoleRoute)
    return request.headers.get("accept", "").startswith("text/html")


async def page_error(request: Request, exc: Exception) -> Response:
    """The page for a failure raised while serving a console page."""
    if isinstance(exc, NotSignedIn):
        response: Response = redirect("/sign-in")
        clear_session_cookie(response)
        return response
    if isinstance(exc, StepRequired):
        return redirect(exc.path)
    if isinstance(exc, CrossSiteRequest):
        return error_page(
            request,
            403,
            "Request refused",
            "This form was not sent from this site's own page. Open the page again and "
            "send it from there.",
        )
    if isinstance(exc, PermissionDenied):
        return error_page(request, 403, "No access", "Your role does not give access to this page.")
    if isinstance(exc, NotFound | RequestValidationError):
        return _not_found(request)
    if isinstance(exc, StarletteHTTPException):
        if exc.status_code == 404:
            return _not_found(request)
        return error_page(
            request, exc.status_code, "Request refused", "This page cannot answer that request."
        )
    if isinstance(exc, InvalidRequest):
        # A guard's own words ("the last active admin cannot be deactivated").
        return error_page(request, 422, "That cannot be done", str(exc))
    if isinstance(exc, Overloaded):
        return _busy(request, OVERLOADED_RETRY_AFTER)
    if isinstance(exc, Unavailable) or (isinstance(exc, SQLAlchemyError) and is_outage(exc)):
        logger.warning("console page unavailable: %s", type(exc).__name__)
        return _busy(request, UNAVAILABLE_RETRY_AFTER)
    logger.error("console page failed", exc_info=exc)
    return error_page(
        request,
        500,
        "Something went wrong",
        "The page could not be shown. Try again; if it keeps happening, tell the studio's admin.",
    )


class ConsoleRoute(APIRoute):
    """A console page. A form post must come from the console's own origin: checked
    before anything else, signed in or not, so a forged post is refused (403) rather
    than, say, sent to the sign-in page. Failures become pages (``page_error``, installed
    by ``install_console``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            if request.method == "POST":
                check_same_origin(request)
            return await handler(request)

        return console_handler
