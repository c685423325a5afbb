"""What every command shares: a database session, error mapping, output."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

import click
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import URL, Engine
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
EXIT_NO_DATABASE = 8

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
        except ValidationError as exc:
            fail(f"invalid configuration: {_setting_problem(exc)}", EXIT_BAD_INPUT)
        except (TypeError, ValueError) as exc:
            fail(str(exc), EXIT_BAD_INPUT)
        except OperationalError as exc:
            where = describe_database(_engine().url)
            fail(f"database unavailable ({where}): {_driver_message(exc)}", EXIT_UNAVAILABLE)
        except SQLAlchemyError as exc:
            fail(f"database error: {_driver_message(exc)}", EXIT_UNAVAILABLE)

    return wrapper


def _setting_problem(exc: ValidationError) -> str:
    """The first refused setting, named by its environment variable."""
    error = exc.errors()[0]
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return message
    name = str(error["loc"][0]).upper()
    return f"{name if name == 'DATABASE_URL' else 'STUDIO_AUTH_' + name}: {message}"


def _driver_message(exc: SQLAlchemyError) -> str:
    """The database driver's own words, first line only: no SQL, no parameters, no class
    name, and never the password in DATABASE_URL."""
    cause = getattr(exc, "orig", None) or exc.__cause__
    lines = str(cause).strip().splitlines() if cause is not None else []
    message = lines[0].strip() if lines and lines[0].strip() else "no details given"
    password = _engine().url.password
    return message.replace(str(password), "***") if password else message


def _engine() -> Engine:
    from data.db.session import SessionLocal

    engine: Engine = SessionLocal.kw["bind"]
    return engine


def describe_database(url: URL) -> str:
    """Where ``url`` points, never with its password: a SQLite file's absolute path, or
    the URL of the server and database."""
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:") or url.query.get("uri"):
            return f"SQLite database {url.database or ':memory:'}"
        return f"SQLite file {Path(url.database).resolve()}"
    bare = URL.create(url.drivername, url.username, None, url.host, url.port, url.database)
    return bare.render_as_string(hide_password=False)


def _sqlite_file(url: URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or url.query.get("uri"):
        return None
    return None if url.database in (None, "", ":memory:") else Path(url.database)


def require_database() -> None:
    """Exit with EXIT_NO_DATABASE, saying where it looked and how to make one, unless
    DATABASE_URL holds a studio-auth database at this code's schema. Creates nothing:
    only ``db upgrade``, ``init`` and ``serve`` make a database."""
    from data.migrations import has_schema, is_current

    engine = _engine()
    where = describe_database(engine.url)
    create = (
        "create it with: studio-auth db upgrade (or studio-auth init, which also makes "
        "the first admin), or set DATABASE_URL to the database you meant"
    )
    path = _sqlite_file(engine.url)
    if path is not None and not path.exists():  # checked first: connecting creates it
        relative = "" if path.is_absolute() else " (DATABASE_URL's path is relative)"
        fail(f"no studio-auth database: {where} does not exist{relative}; {create}",
             EXIT_NO_DATABASE)  # fmt: skip
    if not has_schema(engine):
        fail(f"no studio-auth database in {where}; {create}", EXIT_NO_DATABASE)
    if not is_current(engine):
        fail(
            f"the database in {where} has an older schema than this studio-auth: apply "
            "the migrations with: studio-auth db upgrade",
            EXIT_NO_DATABASE,
        )


@contextmanager
def db_session() -> Iterator[Session]:
    """A session on ``DATABASE_URL`` once ``require_database`` has found it there; rolled
    back unless the command commits."""
    from data.db.session import SessionLocal

    require_database()
    with SessionLocal() as db:
        yield db


def read_password_line() -> str:
    """A new password as one line of stdin, without its line ending (for scripts)."""
    line = sys.stdin.readline()
    if line.endswith("\n"):
        line = line[:-1]
    if line.endswith("\r"):
        line = line[:-1]
    return line


def prompt_new_password(prompt: str = "Password") -> str:
    """A new password typed twice at the terminal, not echoed."""
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=True))


_TIME = TypeAdapter(datetime)


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with a trailing Z, as the HTTP API writes times (pydantic's JSON
    form of the same value)."""
    return str(_TIME.dump_python(moment.astimezone(UTC), mode="json"))


def format_value(value: object) -> str:
    """One value as the CLI prints it as text: times as the API writes them."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_time(value)
    return str(value)


def echo_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, default=format_value, ensure_ascii=False))


def echo_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Rows as aligned plain-text columns."""
    cells = [[format_value(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
