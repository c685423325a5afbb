"""Shared set-up for the bench scripts: databases and timing helpers."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, make_url, text

BENCH_DB_NAME = "studio_auth_bench"


def pg_base_url() -> str | None:
    return os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")


@contextmanager
def bench_engines() -> Iterator[list[tuple[str, Engine]]]:
    """A fresh migrated SQLite file, and a fresh PostgreSQL database when one is configured
    (``BENCH_DATABASE_URL`` or ``TEST_DATABASE_URL``; its own database is created beside)."""
    from data.db.session import make_engine
    from data.migrations import upgrade

    engines: list[tuple[str, Engine]] = []
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade(sqlite)
        engines.append(("sqlite", sqlite))
        base = pg_base_url()
        if base:
            url = make_url(base)
            admin = make_engine(url.render_as_string(hide_password=False))
            with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{BENCH_DB_NAME}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{BENCH_DB_NAME}"'))
            admin.dispose()
            pg = make_engine(url.set(database=BENCH_DB_NAME).render_as_string(hide_password=False))
            upgrade(pg)
            engines.append(("postgresql", pg))
        try:
            yield engines
        finally:
            for _, engine in engines:
                engine.dispose()


def timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def summary(samples: list[float], scale: float = 1.0) -> str:
    values = [s * scale for s in samples]
    return (
        f"min {min(values):9.3f}  median {statistics.median(values):9.3f}  max {max(values):9.3f}"
    )
