#!/usr/bin/env python3
"""Username lookup and token resolve at 1 000 and at 1 000 000 users and sessions, on
PostgreSQL (figure 5).

    python bench/scale.py [--calls 3000] [--budget 20] [--big 1000000] [--small 1000]

Needs BENCH_DATABASE_URL or TEST_DATABASE_URL. In the bench database (bench/_common.py)
two schemas are migrated, one filled to --small rows and one to --big rows per table by
INSERT ... SELECT generate_series (placeholder hashes, digests of made-up tokens: no
bcrypt). In each, 20 probed accounts hold real sessions issued by issue_session(). Calls
alternate between the two schemas so machine noise hits both alike; each column stops
after --calls calls or --budget seconds. The ratio is median(big) / median(small).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import Engine, func, select, text

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROBED = 20  # accounts with a real session, the ones the timed calls look up and resolve
WARM_UP_CALLS = 50  # per size and operation, not timed
OPERATIONS = ("lookup", "resolve")
# A well-formed bcrypt string of cost 4 that no password matches: bulk rows are never
# signed in to, they only make the tables and indexes big.
PLACEHOLDER_HASH = "$2b$04$" + "a" * 53

BULK_USERS = """
INSERT INTO users (username, username_key, password_hash, role, is_active,
                   must_change_password, created_at, updated_at, password_changed_at)
SELECT 'bulk-' || g, 'bulk-' || g, :hash, 'assistant', true, false, now(), now(), now()
FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS g
"""
BULK_SESSIONS = """
INSERT INTO sessions (token_digest, user_id, created_at, last_seen_at, expires_at)
SELECT encode(sha256(convert_to('bulk-token-' || u.id, 'UTF8')), 'hex'), u.id,
       now(), now(), now() + interval '12 hours'
FROM users AS u
WHERE u.username LIKE 'bulk-%'
"""


class Schema(NamedTuple):
    """One filled schema: its engine, and the probed accounts' names and tokens."""

    engine: Engine
    names: list[str]
    tokens: list[str]


def _fill(engine: Engine, rows: int, factory: sessionmaker[Session]) -> tuple[list[str], list[str]]:
    """The probed accounts' names and live tokens, then bulk rows up to ``rows`` per table."""
    from data.models import Role, User
    from services.sessions import issue_session

    names = [f"probe-{i:02d}" for i in range(PROBED)]
    tokens: list[str] = []
    with factory() as db:
        for name in names:
            user = User(username=name, password_hash=PLACEHOLDER_HASH, role=Role.ASSISTANT)
            db.add(user)
            db.flush()
            tokens.append(issue_session(db, user.id, ip="127.0.0.1", user_agent="bench").token)
        db.commit()
    bulk = rows - PROBED
    step = 250_000
    with engine.begin() as conn:
        for first in range(1, bulk + 1, step):
            last = min(bulk, first + step - 1)
            conn.execute(text(BULK_USERS), {"hash": PLACEHOLDER_HASH, "first": first, "last": last})
        conn.execute(text(BULK_SESSIONS))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE users"))
        conn.execute(text("VACUUM ANALYZE sessions"))
    with factory() as db:
        counted = db.scalar(select(func.count()).select_from(User))
        assert counted == rows, (counted, rows)
    return names, tokens


def _build(base: Engine, label: str, rows: int) -> Schema:
    """Schema ``scale_<label>`` of the bench database, migrated and filled to ``rows``."""
    from data.db.session import make_engine, make_sessionmaker
    from data.migrations import upgrade

    with base.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "scale_{label}"'))
    url = base.url.render_as_string(hide_password=False)
    engine = make_engine(url, connect_args={"options": f"-csearch_path=scale_{label}"})
    upgrade(engine)
    start = time.perf_counter()
    names, tokens = _fill(engine, rows, make_sessionmaker(engine))
    took = time.perf_counter() - start
    print(f"{label}: {rows:,} users and {rows:,} sessions inserted in {took:.1f} s")
    return Schema(engine, names, tokens)


def _drop(base: Engine, built: dict[str, Schema], labels: list[str]) -> None:
    for schema in built.values():
        schema.engine.dispose()
    with base.begin() as conn:
        for label in labels:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "scale_{label}" CASCADE'))


def _time_calls(
    built: dict[str, Schema], calls: int, budget: float
) -> dict[tuple[str, str], list[float]]:
    """Seconds per call, by operation and size: the sizes alternate call by call, so that
    machine noise hits both alike, until ``calls`` calls or ``budget`` seconds."""
    from data.db.session import make_sessionmaker
    from services.auth import get_user_by_username
    from services.sessions import resolve_session

    rng = random.Random(7)
    samples: dict[tuple[str, str], list[float]] = {
        (op, label): [] for op in OPERATIONS for label in built
    }
    dbs = {label: make_sessionmaker(schema.engine)() for label, schema in built.items()}

    def one_call(op: str, label: str) -> float:
        db, schema, i = dbs[label], built[label], rng.randrange(PROBED)
        start = time.perf_counter()
        if op == "lookup":
            assert get_user_by_username(db, schema.names[i]) is not None
        else:
            assert resolve_session(db, schema.tokens[i]) is not None
        took = time.perf_counter() - start
        db.rollback()  # each call its own short transaction
        return took

    try:
        for op in OPERATIONS:
            deadline = time.perf_counter() + budget
            for call in range(-WARM_UP_CALLS, calls):
                if call >= 0 and time.perf_counter() > deadline:
                    break
                for label in built:
                    took = one_call(op, label)
                    if call >= 0:
                        samples[(op, label)].append(took)
    finally:
        for db in dbs.values():
            db.close()
    return samples


def _report(samples: dict[tuple[str, str], list[float]], small_rows: int, big_rows: int) -> None:
    from _common import summary

    print(f"\n[postgresql] times in microseconds; {small_rows:,} vs {big_rows:,} rows")
    worst = 0.0
    for op in OPERATIONS:
        small, big = samples[(op, "small")], samples[(op, "big")]
        ratio = statistics.median(big) / statistics.median(small)
        worst = max(worst, ratio)
        print(f"  {op:8s} {small_rows:>9,}  {summary(small, 1e6)}  n={len(small)}")
        print(f"  {op:8s} {big_rows:>9,}  {summary(big, 1e6)}  n={len(big)}  ratio {ratio:.3f}")
    print(f"\nworst ratio: {worst:.3f} (goal <= 1.2)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per column")
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--big", type=int, default=1_000_000)
    args = parser.parse_args()
    os.environ.setdefault("STUDIO_AUTH_ENV", "development")

    from _common import bench_engines, pg_base_url

    if not pg_base_url():
        print("bench/scale.py needs PostgreSQL: set BENCH_DATABASE_URL or TEST_DATABASE_URL")
        return 2
    sizes = {"small": args.small, "big": args.big}
    with bench_engines() as engines:
        base = dict(engines)["postgresql"]
        built: dict[str, Schema] = {}
        try:
            for label, rows in sizes.items():
                built[label] = _build(base, label, rows)
            samples = _time_calls(built, args.calls, args.budget)
        finally:
            _drop(base, built, list(sizes))
    _report(samples, args.small, args.big)
    return 0


if __name__ == "__main__":
    sys.exit(main())
