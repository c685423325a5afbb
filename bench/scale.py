#!/usr/bin/env python3
"""Username lookup and token resolve at 1 000 and at 1 000 000 users and sessions, on
PostgreSQL (figure 5).

    python bench/scale.py [--calls 3000] [--budget 20] [--big 1000000] [--small 1000]

Needs BENCH_DATABASE_URL or TEST_DATABASE_URL. In the bench database (bench/_common.py)
two schemas are migrated, one filled to --small rows and one to --big rows per table by
INSERT ... SELECT generate_series (placeholder hashes, digests of made-up tokens: no
bcrypt). In each, 20 known accounts hold real sessions issued by issue_session(). Calls
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

KNOWN = 20
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


def _fill(engine: object, rows: int, factory: object) -> tuple[list[str], list[str]]:
    """Known names and their live tokens, then bulk rows up to ``rows`` per table."""
    from sqlalchemy import Engine, func, select, text

    from data.models import Role, User
    from services.sessions import issue_session

    assert isinstance(engine, Engine)
    names = [f"known-{i:02d}" for i in range(KNOWN)]
    tokens: list[str] = []
    with factory() as db:  # type: ignore[operator]
        for name in names:
            user = User(username=name, password_hash=PLACEHOLDER_HASH, role=Role.ASSISTANT)
            db.add(user)
            db.flush()
            tokens.append(issue_session(db, user.id, ip="127.0.0.1", user_agent="bench").token)
        db.commit()
    bulk = rows - KNOWN
    step = 250_000
    with engine.begin() as conn:
        for first in range(1, bulk + 1, step):
            last = min(bulk, first + step - 1)
            conn.execute(text(BULK_USERS), {"hash": PLACEHOLDER_HASH, "first": first, "last": last})
        conn.execute(text(BULK_SESSIONS))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE users"))
        conn.execute(text("VACUUM ANALYZE sessions"))
    with factory() as db:  # type: ignore[operator]
        counted = db.scalar(select(func.count()).select_from(User))
        assert counted == rows, (counted, rows)
    return names, tokens


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per column")
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--big", type=int, default=1_000_000)
    args = parser.parse_args()
    os.environ.setdefault("STUDIO_AUTH_ENV", "development")

    from _common import bench_engines, pg_base_url, summary
    from sqlalchemy import text

    from data.db.session import make_engine, make_sessionmaker
    from data.migrations import upgrade
    from services.auth import get_user_by_username
    from services.sessions import resolve_session

    if not pg_base_url():
        print("bench/scale.py needs PostgreSQL: set BENCH_DATABASE_URL or TEST_DATABASE_URL")
        return 2
    with bench_engines() as engines:
        base = dict(engines)["postgresql"]
        url = base.url.render_as_string(hide_password=False)
        sizes = {"small": args.small, "big": args.big}
        built: dict[str, tuple[object, list[str], list[str]]] = {}
        try:
            for label, rows in sizes.items():
                with base.begin() as conn:
                    conn.execute(text(f'CREATE SCHEMA "scale_{label}"'))
                engine = make_engine(url, connect_args={"options": f"-csearch_path=scale_{label}"})
                upgrade(engine)
                start = time.perf_counter()
                names, tokens = _fill(engine, rows, make_sessionmaker(engine))
                took = time.perf_counter() - start
                print(f"{label}: {rows:,} users and {rows:,} sessions inserted in {took:.1f} s")
                built[label] = (engine, names, tokens)

            rng = random.Random(7)
            samples: dict[tuple[str, str], list[float]] = {
                (op, label): [] for op in ("lookup", "resolve") for label in sizes
            }
            dbs = {label: make_sessionmaker(built[label][0])() for label in sizes}  # type: ignore[arg-type]
            try:
                for op in ("lookup", "resolve"):
                    deadline = time.perf_counter() + args.budget
                    for call in range(-50, args.calls):  # 50 warm-up calls per size
                        if call >= 0 and time.perf_counter() > deadline:
                            break
                        for label in sizes:
                            _, names, tokens = built[label]
                            db = dbs[label]
                            i = rng.randrange(KNOWN)
                            start = time.perf_counter()
                            if op == "lookup":
                                assert get_user_by_username(db, names[i]) is not None
                            else:
                                assert resolve_session(db, tokens[i]) is not None
                            took = time.perf_counter() - start
                            db.rollback()  # each call its own short transaction
                            if call >= 0:
                                samples[(op, label)].append(took)
            finally:
                for db in dbs.values():
                    db.close()
        finally:
            for engine, _, _ in built.values():
                engine.dispose()  # type: ignore[attr-defined]
            with base.begin() as conn:
                for label in sizes:
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "scale_{label}" CASCADE'))

    print(f"\n[postgresql] times in microseconds; {args.small:,} vs {args.big:,} rows")
    worst = 0.0
    for op in ("lookup", "resolve"):
        small, big = samples[(op, "small")], samples[(op, "big")]
        ratio = statistics.median(big) / statistics.median(small)
        worst = max(worst, ratio)
        print(f"  {op:8s} {args.small:>9,}  {summary(small, 1e6)}  n={len(small)}")
        print(f"  {op:8s} {args.big:>9,}  {summary(big, 1e6)}  n={len(big)}  ratio {ratio:.3f}")
    print(f"\nworst ratio: {worst:.3f} (goal <= 1.2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
