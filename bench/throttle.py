#!/usr/bin/env python3
"""What throttling costs: a refused attempt next to one bcrypt verification, and what the
counting and the failure event add to a wrong-password attempt.

    python bench/throttle.py [--rounds 15] [--cost 12]

Runs on a temporary SQLite file and, when BENCH_DATABASE_URL is set, on that PostgreSQL
database too (migrated if needed; the bench's own users, counters and events, all under a
random name prefix, are deleted afterwards). Measurements are interleaved round after
round so machine noise hits every column alike. Times in ms: min, median, max. The
"added" row times the count and the failure event alone, which is steadier than the
difference of two bcrypt-sized numbers. Exits 1 if a refused attempt costs 10 % of a
bcrypt check or more.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PASSWORD = "a long and quite ordinary passphrase"
WRONG = "a long and quite ordinary guess"
IP = "192.0.2.10"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15, choices=range(3, 201), metavar="3-200")
    parser.add_argument("--cost", type=int, default=12, choices=range(4, 17), metavar="4-16")
    args = parser.parse_args()
    os.environ["STUDIO_AUTH_BCRYPT_ROUNDS"] = str(args.cost)
    os.environ.setdefault("STUDIO_AUTH_ENV", "development")
    # A lock that outlasts the run, and an address allowance the run cannot use up.
    os.environ["STUDIO_AUTH_THROTTLE_BASE_DELAY_SECONDS"] = "3600"
    os.environ["STUDIO_AUTH_THROTTLE_MAX_DELAY_SECONDS"] = "3600"
    os.environ["STUDIO_AUTH_THROTTLE_IP_MAX_FAILURES"] = "1000000"

    import logging

    import bcrypt
    from _common import summary, timed
    from sqlalchemy import Engine, delete

    from data.db.session import make_engine, make_sessionmaker
    from data.migrations import upgrade
    from data.models import AuditEvent, Role, ThrottleCounter, User
    from services import passwords, throttle
    from services.audit import commit_event
    from services.auth import check_credentials
    from services.errors import InvalidCredentials, Throttled

    # Audit lines are still built (their cost is measured) but not printed.
    logging.getLogger("studio_auth").addHandler(logging.NullHandler())
    stored = passwords.hash_password(PASSWORD)
    passwords.dummy_hash()
    prefix = f"bench-{secrets.token_hex(4)}-"
    locked, victim, probe = prefix + "locked", prefix + "victim", prefix + "probe"

    def run(backend: str, engine: Engine) -> float:
        upgrade(engine)
        factory = make_sessionmaker(engine)
        with factory() as db:
            for name in (locked, victim):
                db.add(User(username=name, password_hash=stored, role=Role.ASSISTANT))
            db.commit()
            for _ in range(6):  # five free failures and one refused: locked for an hour
                try:
                    check_credentials(db, locked, WRONG, ip=IP)
                except (InvalidCredentials, Throttled):
                    db.rollback()

        def raw() -> None:
            bcrypt.checkpw(PASSWORD.encode(), stored.encode())

        def refused() -> None:
            with factory() as db:
                try:
                    check_credentials(db, locked, PASSWORD, ip=IP)
                except Throttled:
                    return
            raise AssertionError("the locked name was let through")

        def wrong() -> None:
            with factory() as db:
                try:
                    check_credentials(db, victim, WRONG, ip=IP)
                except InvalidCredentials:
                    return
            raise AssertionError("a wrong password was accepted")

        def bookkeeping() -> None:
            # Exactly what a failure adds around bcrypt: the count and the failure event.
            with factory() as db:
                throttle.count_attempt(db, probe, ip=IP)
                commit_event(db, "login", "failure", username=probe, ip=IP)

        samples: dict[str, list[float]] = {"raw": [], "refused": [], "wrong": [], "added": []}
        for _ in range(args.rounds):
            samples["raw"].append(timed(raw))
            samples["refused"].append(timed(refused))
            samples["wrong"].append(timed(wrong))
            samples["added"].append(timed(bookkeeping))
            with factory() as db:  # keep the wrong-password name within its allowance
                throttle.unlock(db, victim)
                throttle.unlock(db, probe)
                db.commit()

        ms = 1000.0
        print(f"[{backend}]")
        rows = [
            (f"bcrypt.checkpw (cost {args.cost})", "raw"),
            ("refused (throttled) attempt", "refused"),
            ("wrong-password attempt", "wrong"),
            ("count + failure event (added)", "added"),
        ]
        for label, key in rows:
            print(f"  {label:<32}{summary(samples[key], ms)}")
        med = {k: statistics.median(v) for k, v in samples.items()}
        print(
            f"  refused / bcrypt = {med['refused'] / med['raw']:.4f}; "
            f"added / bcrypt = {med['added'] / med['raw']:.4f}; "
            f"wrong - bcrypt = {(med['wrong'] - med['raw']) * ms:.2f} ms median, "
            f"{(min(samples['wrong']) - min(samples['raw'])) * ms:.2f} ms min"
        )

        with factory() as db:
            like = f"{prefix}%"
            db.execute(delete(ThrottleCounter).where(ThrottleCounter.key.like(f"user:{like}")))
            db.execute(delete(AuditEvent).where(AuditEvent.username.like(like)))
            db.execute(delete(User).where(User.username_key.like(like)))
            db.commit()
        return med["refused"] / med["raw"]

    print(f"bcrypt cost {args.cost}, {args.rounds} interleaved rounds, times in ms")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        try:
            worst = max(worst, run("sqlite", sqlite))
        finally:
            sqlite.dispose()
    pg_url = os.environ.get("BENCH_DATABASE_URL")
    if pg_url:
        pg = make_engine(pg_url)
        try:
            worst = max(worst, run("postgresql", pg))
        finally:
            pg.dispose()
    # A refused attempt must cost a small fraction of the bcrypt work it saves.
    return 0 if worst < 0.1 else 1


if __name__ == "__main__":
    sys.exit(main())
