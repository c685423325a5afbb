"""How a browser holds a console session, and the checks every form post passes.

The session is the same server-side session as an API bearer token
(``services/sessions.py``: revoked, expired, idle and rotated alike); the browser keeps
its token in an HttpOnly cookie that page scripts cannot read. The API never reads this
cookie, so its routes need no protection against cross-site requests.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.responses import Response

from services import sessions
from services.auth import UserInfo
from services.keys import keyed_digest
from services.sessions import SessionInfo
from studio_auth.web.deps import resolve_token
from studio_auth.web.errors import NotAuthenticated

# ASVS 5.0 3.3.1: the __Host- prefix makes the browser refuse the cookie unless it is
# Secure, for this host only (no Domain) and for every path, so a sibling subdomain or a
# plain-HTTP page cannot plant or overwrite it. Browsers treat http://localhost and
# 127.0.0.1 as secure, so the prefix works there without TLS.
SESSION_COOKIE = "__Host-studio-auth-session"
FLASH_COOKIE = "__Host-studio-auth-flash"
CSRF_FIELD = "csrf_token"
FLASH_SECONDS = 60


class NotSignedIn(Exception):
    """No console cookie, or one naming no live session: the sign-in page is next."""


class StepRequired(Exception):
    """The session's user must finish a required step (``path``) before anything else."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(path)


class CrossSiteRequest(Exception):
    """A form post that did not come from the console's own pages (ASVS 5.0 3.5.1)."""


def set_session_cookie(response: Response, token: str) -> None:
    """Hand ``token`` to the browser: HttpOnly (ASVS 5.0 3.3.4), Secure, SameSite=Lax
    (3.3.2: sent on top-level navigation to the console, never on another site's posts or
    subrequests). No expiry: it ends with the browser, and the server ends the session
    earlier by its own idle and absolute limits."""
    response.set_cookie(SESSION_COOKIE, token, path="/", secure=True, httponly=True, samesite="lax")


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="lax")


def set_flash(response: Response, key: str) -> None:
    """Have the next page say what was just done: ``key`` names one of its fixed
    messages, so nothing a request sends is ever shown."""
    response.set_cookie(
        FLASH_COOKIE,
        key,
        max_age=FLASH_SECONDS,
        path="/",
        secure=True,
        httponly=True,
        samesite="strict",
    )


def clear_flash(response: Response) -> None:
    response.delete_cookie(FLASH_COOKIE, path="/", secure=True, httponly=True, samesite="strict")


def session_token(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or None


async def page_session(request: Request) -> SessionInfo:
    """The live session of the console cookie, even one with a required step pending.
    Raises NotSignedIn, or Unavailable when the session store fails."""
    token = session_token(request)
    if token is None:
        raise NotSignedIn
    try:
        return await resolve_token(request, token)
    except NotAuthenticated:
        raise NotSignedIn from None


async def optional_page_session(request: Request) -> SessionInfo | None:
    """``page_session``, or None when the browser holds no live session."""
    try:
        return await page_session(request)
    except NotSignedIn:
        return None


def required_step(info: UserInfo) -> str | None:
    """The page of the first step the user must finish before anything else, or None:
    a password someone else chose (a one-time password) is replaced first."""
    if info["must_change_password"]:
        return "/required/password"
    return None


async def signed_in(info: Annotated[SessionInfo, Depends(page_session)]) -> SessionInfo:
    """The console cookie's live session, with no required step pending."""
    step = required_step(info)
    if step is not None:
        raise StepRequired(step)
    return info


def csrf_token(request: Request) -> str:
    """The anti-forgery token of the request's console session: a keyed digest of the
    session token's stored digest, so it changes with every session and rotation, needs no
    storage, and cannot be computed from a copy of the database."""
    digest = sessions.token_digest(session_token(request))
    if digest is None:
        raise NotSignedIn
    return keyed_digest("csrf", digest.encode("ascii"))


def check_csrf(request: Request, form: Mapping[str, object]) -> None:
    """Raise CrossSiteRequest unless ``form`` carries this session's token."""
    sent = form.get(CSRF_FIELD)
    if not isinstance(sent, str) or not hmac.compare_digest(
        sent.encode("utf-8", "surrogatepass"), csrf_token(request).encode("ascii")
    ):
        raise CrossSiteRequest


def check_same_origin(request: Request) -> None:
    """Raise CrossSiteRequest unless the browser says the post comes from a page of this
    origin. ``Sec-Fetch-Site`` decides when sent (every current browser sends it): only
    ``same-origin`` passes. Without it, ``Origin`` must name this host. Under the pages'
    ``Referrer-Policy: no-referrer`` a browser sends ``Origin: null`` on its own form
    posts, so ``null`` counts only as absent. Checked before anything else, with or
    without a session."""
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    sent_origin = origin if origin not in (None, "null") else None
    if site is not None and site != "same-origin":
        raise CrossSiteRequest
    if sent_origin is not None and not _is_own_origin(sent_origin, request):
        raise CrossSiteRequest
    if site is None and sent_origin is None:
        raise CrossSiteRequest


def _is_own_origin(origin: str, request: Request) -> bool:
    # The scheme is not compared: behind a TLS proxy the service itself sees plain HTTP.
    parts = urlsplit(origin)
    host = request.headers.get("host")
    return parts.scheme in ("http", "https") and bool(host) and parts.netloc == host


PageSession = Annotated[SessionInfo, Depends(page_session)]
SignedIn = Annotated[SessionInfo, Depends(signed_in)]
