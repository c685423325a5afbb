#!/usr/bin/env python3
"""The cost of resolving a valid session token, next to one bcrypt verification.

    python bench/sessions.py [--calls 2000] [--budget 10] [--cost 12] [--checks 5]

Runs on a fresh SQLite file and, when BENCH_DATABASE_URL or TEST_DATABASE_URL is set, on
PostgreSQL, inside a throw-away schema of that database (created and dropped here, so
nothing else in it is touched). For each backend it times, per call:

- resolve:          resolve_session() on an open Session, no last-seen write due
- request:          a new Session, resolve_session(), close: what one HTTP request pays
- resolve + touch:  resolve_session() with the last-seen write due on every call (the
                    worst case; normally it happens at most once per session every
                    STUDIO_AUTH_SESSION_TOUCH_SECONDS)

Each column stops after --calls calls or --budget seconds, whichever comes first. The
ratio is median(column) / median(bcrypt.checkpw at --cost), measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, make_url, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

PASSWORD = "a long and quite ordinary passphrase"


def _summary(samples: list[float]) -> str:
    us = [s * 1e6 for s in samples]
    return f"min {min(us):9.1f}  median {statistics.median(us):9.1f}  max {max(us):10.1f}"


def _sample(func: Callable[[], object], calls: int, budget: float) -> list[float]:
    func()  # warm caches and the pool
    samples: list[float] = []
    deadline = time.perf_counter() + budget
    while len(samples) < calls and time.perf_counter() < deadline:
        start = time.perf_counter()
        func()
        samples.append(time.perf_counter() - start)
    return samples


@contextmanager
def _engines() -> Iterator[list[tuple[str, Engine]]]:
    from data.db.session import make_engine
    from data.migrations import upgrade

    engines: list[tuple[str, Engine]] = []
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade(sqlite)
        engines.append(("sqlite", sqlite))
        base = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
        schema = f"bench_sessions_{os.getpid()}"
        pg = None
        if base:
            url = make_url(base).render_as_string(hide_password=False)
            pg = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
            with pg.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            upgrade(pg)
            engines.append(("postgresql", pg))
        try:
            yield engines
        finally:
            sqlite.dispose()
            if pg is not None:
                with pg.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                pg.dispose()


def _bcrypt_unit(cost: int, checks: int) -> float:
    """The median bcrypt.checkpw at ``cost``, in seconds: every ratio's denominator."""
    import bcrypt

    stored = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(cost))
    samples = _sample(lambda: bcrypt.checkpw(PASSWORD.encode(), stored), checks, 60)
    unit = statistics.median(samples)
    print(f"bcrypt.checkpw cost {cost}: median {unit * 1e3:.1f} ms ({len(samples)} checks)")
    return unit


def _issue_token(factory: sessionmaker[Session]) -> str:
    """A valid session token for a new account."""
    import bcrypt

    from data.models import Role, User
    from services.sessions import issue_session

    with factory() as db:
        # The account's own hash cost does not matter to resolve: keep set-up fast.
        user = User(
            username="alice",
            password_hash=bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode(),
            role=Role.ASSISTANT,
        )
        db.add(user)
        db.flush()
        token = issue_session(db, user.id, ip="127.0.0.1", user_agent="bench").token
        db.commit()
    return token


def _columns(
    factory: sessionmaker[Session], token: str, calls: int, budget: float
) -> dict[str, list[float]]:
    """The module docstring's three columns for ``token``, in seconds per call."""
    from services.sessions import resolve_session
    from studio_auth.settings import reset_settings

    def request() -> None:
        with factory() as own:
            assert resolve_session(own, token) is not None

    with factory() as db:

        def resolve() -> None:
            assert resolve_session(db, token) is not None

        columns = {
            "resolve": _sample(resolve, calls, budget),
            "request": _sample(request, calls, budget),
        }
        os.environ["STUDIO_AUTH_SESSION_TOUCH_SECONDS"] = "0"
        reset_settings()
        try:
            columns["resolve + touch"] = _sample(resolve, calls, budget)
        finally:
            del os.environ["STUDIO_AUTH_SESSION_TOUCH_SECONDS"]
            reset_settings()
    return columns


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--budget", type=float, default=10.0, help="seconds per column")
    parser.add_argument("--cost", type=int, default=12)
    parser.add_argument("--checks", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("STUDIO_AUTH_ENV", "development")

    from data.db.session import make_sessionmaker

    unit = _bcrypt_unit(args.cost, args.checks)
    print(f"up to {args.calls} calls or {args.budget:g} s per column; times in microseconds")
    with _engines() as engines:
        for backend, engine in engines:
            factory = make_sessionmaker(engine)
            token = _issue_token(factory)
            columns = _columns(factory, token, args.calls, args.budget)
            print(f"\n[{backend}]")
            for name, samples in columns.items():
                ratio = statistics.median(samples) / unit
                print(
                    f"  {name:15s} {_summary(samples)}  n={len(samples):5d}"
                    f"  = {ratio:.5f} of one checkpw"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
