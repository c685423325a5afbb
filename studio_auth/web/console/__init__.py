"""The studio console: server-rendered pages for staff and admins, served by the API's
own app at ``/`` (the API keeps its paths). ``install_console`` adds them to an app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from studio_auth.web.console import access, account, approvals, audit_trail, staff
from studio_auth.web.console.browser import CrossSiteRequest, NotSignedIn, StepRequired
from studio_auth.web.console.pages import HERE, is_page_request, page_error
from studio_auth.web.errors import ERROR_HANDLERS, ErrorHandler

STATIC_PATH = "/static"

Handler = Callable[[Request, Exception], Awaitable[Response]]


def _page_or(api_handler: ErrorHandler) -> Handler:
    """A failure becomes a page for a console page, and stays a problem for the API."""

    async def handler(request: Request, exc: Exception) -> Response:
        if is_page_request(request):
            return await page_error(request, exc)
        return await api_handler(request, exc)

    return handler


def install_console(app: FastAPI) -> None:
    """Add the console's pages, its static files and its error pages to ``app`` (after
    ``install_error_handlers``, whose mappings it wraps)."""
    for exc_class, api_handler in ERROR_HANDLERS:
        app.add_exception_handler(exc_class, _page_or(api_handler))
    for exc_class in (NotSignedIn, StepRequired, CrossSiteRequest):
        app.add_exception_handler(exc_class, page_error)
    for module in (access, account, staff, audit_trail, approvals):
        app.include_router(module.router)
    app.mount(STATIC_PATH, StaticFiles(directory=HERE / "static"), name="console-static")
