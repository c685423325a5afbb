"""What every command shares: a database session, error mapping, output."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NoReturn, ParamSpec, TypeVar

import click
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

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

P = ParamSpec("P")
R = TypeVar("R")

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_DENIED = 5
EXIT_THROTTLED = 6
EXIT_UNAVAILABLE = 7

_EXIT_CODES: list[tuple[type[AuthError], int]] = [
    (InvalidRequest, EXIT_BAD_INPUT),
    (PasswordRejected, EXIT_BAD_INPUT),
    (NotFound, EXIT_NOT_FOUND),
    (UserExists, EXIT_CONFLICT),
    (PermissionDenied, EXIT_DENIED),
    (InvalidCredentials, EXIT_DENIED),
    (Throttled, EXIT_THROTTLED),
    (Unavailable, EXIT_UNAVAILABLE),
]


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the project's errors into one line on stderr and a distinct exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except AuthError as exc:
            code = next((c for kind, c in _EXIT_CODES if isinstance(exc, kind)), EXIT_FAILURE)
            fail(str(exc), code)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ValidationError):
                fail(f"invalid configuration: {exc.errors()[0]['msg']}", EXIT_BAD_INPUT)
            fail(str(exc), EXIT_BAD_INPUT)
        except OperationalError as exc:
            fail(f"database unavailable: {exc.orig.__class__.__name__}", EXIT_UNAVAILABLE)
        except SQLAlchemyError as exc:
            fail(f"database error: {exc.__class__.__name__}", EXIT_UNAVAILABLE)

    return wrapper


@contextmanager
def db_session() -> Iterator[Session]:
    """A session on ``DATABASE_URL``; rolled back unless the command commits."""
    from data.db.session import SessionLocal

    with SessionLocal() as db:
        yield db


def read_password(password_stdin: bool, prompt: str = "Password") -> str:
    """A new password: one line from stdin (without its newline), or typed twice."""
    if password_stdin:
        line = sys.stdin.readline()
        if line.endswith("\n"):
            line = line[:-1]
        if line.endswith("\r"):
            line = line[:-1]
        return line
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=True))


def _json_default(value: object) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def echo_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, default=_json_default, ensure_ascii=False))


def echo_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Rows as aligned plain-text columns."""
    cells = [[("" if row.get(c) is None else str(row[c])) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
