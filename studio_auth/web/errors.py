"""The one place where errors become HTTP responses: RFC 9457 problem details.

Every response body says ``type`` (a stable URN per kind of problem), ``title``, ``status``
and ``detail``; none ever contains a password, a token or a value the client sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from services.errors import (
    AuthError,
    InvalidCredentials,
    InvalidRequest,
    NotFound,
    PasswordRejected,
    PermissionDenied,
    Throttled,
    Unavailable,
    UserExists,
)

logger = logging.getLogger("studio_auth.web")

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "urn:studio-auth:problem:"
# A database outage usually lasts longer than one retry; a full password-check queue
# clears within about one bcrypt check.
UNAVAILABLE_RETRY_AFTER = 5
OVERLOADED_RETRY_AFTER = 1
BEARER_CHALLENGE = 'Bearer realm="studio-auth"'
# The methods a 405's Allow header may name (RFC 9110 section 9).
_HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class Problem(BaseModel):
    """An RFC 9457 problem details object (documents the error responses)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None


class NotAuthenticated(Exception):
    """No bearer token, a malformed one, or one that names no live session."""


class PasswordChangeRequired(Exception):
    """The session's user must change their password before doing anything else."""


class Overloaded(Exception):
    """A bounded pool has no slot for the job: every worker is busy and the queue is full,
    or only slots reserved for higher priorities are left."""


def problem_body(kind: str, title: str, status: int, detail: str, **extra: Any) -> dict[str, Any]:
    body = {"type": PROBLEM_BASE + kind, "title": title, "status": status, "detail": detail}
    return {**body, **extra}


def problem(
    kind: str,
    title: str,
    status: int,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    return JSONResponse(
        problem_body(kind, title, status, detail, **extra),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def problem_bytes(kind: str, title: str, status: int, detail: str) -> bytes:
    """A problem body for ASGI middleware that answers before the app runs."""
    return json.dumps(problem_body(kind, title, status, detail)).encode()


# One fixed body for every credential failure: unknown user, wrong password and inactive
# account must be indistinguishable (the specification's enumeration warning).
_INVALID_CREDENTIALS = problem_body(
    "invalid-credentials", "Invalid credentials", 401, "invalid username or password"
)


def _invalid_credentials() -> JSONResponse:
    return JSONResponse(
        _INVALID_CREDENTIALS,
        status_code=401,
        headers={"WWW-Authenticate": BEARER_CHALLENGE},
        media_type=PROBLEM_MEDIA_TYPE,
    )


def _unavailable(detail: str) -> JSONResponse:
    return problem(
        "unavailable",
        "Service unavailable",
        503,
        detail,
        headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)},
    )


def auth_error_response(exc: AuthError) -> JSONResponse:
    """The response for one of the services' errors."""
    if isinstance(exc, InvalidCredentials):
        return _invalid_credentials()
    if isinstance(exc, Throttled):
        return problem(
            "throttled",
            "Too many attempts",
            429,
            f"too many failed attempts; retry after {exc.retry_after} s",
            headers={"Retry-After": str(exc.retry_after)},
            retry_after=exc.retry_after,
        )
    if isinstance(exc, PermissionDenied):
        return problem(
            "permission-denied",
            "Permission denied",
            403,
            f"{exc.action}: {exc.reason}",
            action=exc.action,
        )
    if isinstance(exc, PasswordRejected):
        return problem(
            "password-rejected",
            "Password rejected",
            422,
            "the new password breaks the password policy",
            reasons=exc.reasons,
        )
    if isinstance(exc, UserExists):
        return problem("user-exists", "User exists", 409, "that username is taken")
    if isinstance(exc, NotFound):
        return problem("not-found", "Not found", 404, str(exc) or "not found")
    if isinstance(exc, InvalidRequest):
        return problem("invalid-request", "Invalid request", 422, str(exc))
    if isinstance(exc, Unavailable):
        # The service's own message names the failed store, never a value.
        return _unavailable(str(exc) or "a store the decision depends on is unavailable")
    logger.error("unmapped service error %s", type(exc).__name__)
    return problem("internal", "Internal error", 500, "the request could not be completed")


def is_outage(exc: SQLAlchemyError) -> bool:
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


ErrorHandler = Callable[[Request, Exception], Awaitable[JSONResponse]]


async def _on_auth_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthError)
    return auth_error_response(exc)


def _fixed_problem(
    kind: str, title: str, status: int, detail: str, *, headers: dict[str, str] | None = None
) -> ErrorHandler:
    """A handler that answers every exception of its class with the same problem."""

    async def handler(_request: Request, _exc: Exception) -> JSONResponse:
        return problem(kind, title, status, detail, headers=headers)

    return handler


async def _on_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # FastAPI's default echoes the input (a password, in a login body): give only where
    # the problem is and what is expected.
    errors = [
        {"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg"))}
        for error in exc.errors()
    ]
    return problem(
        "validation-error",
        "Invalid request body or parameters",
        422,
        "the request does not match the schema",
        errors=errors,
    )


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 405:
        # The router names only the methods of the first route that matched the path;
        # RFC 9110 section 15.5.6 asks for every method the resource supports.
        headers = {**(headers or {}), "Allow": ", ".join(_methods_of(request))}
    return JSONResponse(
        {"type": "about:blank", "title": str(exc.detail), "status": exc.status_code},
        status_code=exc.status_code,
        headers=headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def _methods_of(request: Request) -> list[str]:
    """Every method some route of the app takes on the request's path."""
    scope = request.scope
    probe = {"type": "http", "path": scope["path"], "root_path": scope.get("root_path", "")}
    return [
        method
        for method in _HTTP_METHODS
        if any(
            route.matches({**probe, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]


async def _on_database_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SQLAlchemyError)
    if is_outage(exc):
        logger.warning("database unavailable: %s", type(exc).__name__)
        return _unavailable("the database is unavailable")
    logger.error("database error", exc_info=exc)
    return problem("internal", "Internal error", 500, "the request could not be completed")


async def _on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled error", exc_info=exc)
    return problem("internal", "Internal error", 500, "the request could not be completed")


# Which handler answers which exception (Starlette picks the nearest class in the MRO).
ERROR_HANDLERS: tuple[tuple[type[Exception], ErrorHandler], ...] = (
    (AuthError, _on_auth_error),
    (
        NotAuthenticated,
        _fixed_problem(
            "unauthenticated",
            "Not authenticated",
            401,
            "a valid bearer token is required",
            headers={"WWW-Authenticate": f'{BEARER_CHALLENGE}, error="invalid_token"'},
        ),
    ),
    (
        PasswordChangeRequired,
        _fixed_problem(
            "password-change-required",
            "Password change required",
            403,
            "change the password (POST /auth/password) before anything else",
        ),
    ),
    (
        Overloaded,
        _fixed_problem(
            "overloaded",
            "Too busy",
            503,
            "every password check worker is busy; retry shortly",
            headers={"Retry-After": str(OVERLOADED_RETRY_AFTER)},
        ),
    ),
    (RequestValidationError, _on_validation),
    (StarletteHTTPException, _on_http_error),
    (SQLAlchemyError, _on_database_error),
    (Exception, _on_unexpected),
)


def install_error_handlers(app: FastAPI) -> None:
    """Register every mapping in ``ERROR_HANDLERS`` on ``app``."""
    for exc_class, handler in ERROR_HANDLERS:
        app.add_exception_handler(exc_class, handler)


_PROBLEM_DESCRIPTIONS = {
    400: "Malformed request body: not UTF-8, or an invalid Content-Length",
    401: "Not authenticated, or invalid credentials",
    403: "Permission denied, or a password change is required first",
    404: "Not found",
    409: "Conflict",
    413: "Request body too large",
    415: "The request body is not JSON",
    422: "Invalid request: it breaks the schema (validation-error) or a rule",
    429: "Throttled (see Retry-After)",
    503: "Unavailable or overloaded (see Retry-After)",
}
# What the body gate (middleware.RequestBodyMiddleware) answers, whatever the route.
_BODY_GATE_STATUSES = (400, 413, 415)
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_FASTAPI_VALIDATION_REF = {"$ref": "#/components/schemas/HTTPValidationError"}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem responses a route can give."""
    return {
        status: {"model": Problem, "description": _PROBLEM_DESCRIPTIONS[status]}
        for status in statuses
    }


def document_problems(openapi: dict[str, Any]) -> dict[str, Any]:
    """``openapi`` (FastAPI's document), changed to say what the service sends: every
    error response is ``application/problem+json``; every operation lists the body
    gate's 400, 413 and 415, and a 422 problem (not FastAPI's own error shape) when it
    takes parameters or a body."""
    for operation in _operations(openapi):
        responses = operation.setdefault("responses", {})
        for status in _BODY_GATE_STATUSES:
            responses.setdefault(str(status), {"description": _PROBLEM_DESCRIPTIONS[status]})
        if operation.get("parameters") or operation.get("requestBody"):
            validation = responses.get("422", {})
            if _schema_of(validation) == _FASTAPI_VALIDATION_REF:
                validation = {}
            responses["422"] = validation or {"description": _PROBLEM_DESCRIPTIONS[422]}
        for status, response in responses.items():
            if status[0] in "45":  # "404", "4XX"
                schema = _schema_of(response) or _PROBLEM_REF
                response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": schema}}
        operation["responses"] = dict(sorted(responses.items()))
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.setdefault("Problem", Problem.model_json_schema())
    return openapi


def _schema_of(response: dict[str, Any]) -> Any:
    """The schema FastAPI put in a response (under the routes' JSON media type)."""
    return response.get("content", {}).get("application/json", {}).get("schema")


def _operations(openapi: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        operation
        for item in openapi.get("paths", {}).values()
        for method, operation in item.items()
        if method in {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
    ]
