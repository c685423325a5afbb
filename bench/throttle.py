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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, delete

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

PASSWORD = "a long and quite ordinary passphrase"
WRONG = "a long and quite ordinary guess"
IP = "192.0.2.10"
# The printed rows: label, then the column's key.
ROWS = [
    ("bcrypt.checkpw (cost {cost})", "raw"),
    ("refused (throttled) attempt", "refused"),
    ("wrong-password attempt", "wrong"),
    ("count + failure event (added)", "added"),
]


@dataclass(frozen=True)
class Names:
    """The bench's own accounts, under a random prefix so that clean-up finds only them."""

    prefix: str

    @property
    def locked(self) -> str:
        return self.prefix + "locked"

    @property
    def victim(self) -> str:
        return self.prefix + "victim"

    @property
    def probe(self) -> str:
        return self.prefix + "probe"


def _configure(cost: int) -> None:
    os.environ["STUDIO_AUTH_BCRYPT_ROUNDS"] = str(cost)
    os.environ.setdefault("STUDIO_AUTH_ENV", "development")
    # A lock that outlasts the run, and an address allowance the run cannot use up.
    os.environ["STUDIO_AUTH_THROTTLE_BASE_DELAY_SECONDS"] = "3600"
    os.environ["STUDIO_AUTH_THROTTLE_MAX_DELAY_SECONDS"] = "3600"
    os.environ["STUDIO_AUTH_THROTTLE_IP_MAX_FAILURES"] = "1000000"


def _seed(factory: sessionmaker[Session], names: Names, stored: str) -> None:
    """The locked and the victim accounts; the locked one locked for the whole run."""
    from data.models import Role, User
    from services.auth import check_credentials
    from services.errors import InvalidCredentials, Throttled

    with factory() as db:
        for name in (names.locked, names.victim):
            db.add(User(username=name, password_hash=stored, role=Role.ASSISTANT))
        db.commit()
        for _ in range(6):  # five free failures and one refused: locked for an hour
            try:
                check_credentials(db, names.locked, WRONG, ip=IP)
            except (InvalidCredentials, Throttled):
                db.rollback()


def _refused_with(
    factory: sessionmaker[Session], username: str, password: str, error: type[Exception]
) -> Callable[[], None]:
    """One sign-in attempt that must be refused with ``error``."""
    from services.auth import check_credentials

    def attempt() -> None:
        with factory() as db:
            try:
                check_credentials(db, username, password, ip=IP)
            except error:
                return
        raise AssertionError(f"{username} was not refused with {error.__name__}")

    return attempt


def _columns(
    factory: sessionmaker[Session], names: Names, stored: str
) -> dict[str, Callable[[], None]]:
    """The timed calls, by column, in the order each round runs them."""
    import bcrypt

    from services import throttle
    from services.audit import commit_event
    from services.errors import InvalidCredentials, Throttled

    def raw() -> None:
        bcrypt.checkpw(PASSWORD.encode(), stored.encode())

    def count_and_commit_failure() -> None:
        # Exactly what a failure adds around bcrypt: the count and the failure event.
        with factory() as db:
            throttle.count_attempt(db, names.probe, ip=IP)
            commit_event(db, "login", "failure", username=names.probe, ip=IP)

    return {
        "raw": raw,
        "refused": _refused_with(factory, names.locked, PASSWORD, Throttled),
        "wrong": _refused_with(factory, names.victim, WRONG, InvalidCredentials),
        "added": count_and_commit_failure,
    }


def _time_columns(
    factory: sessionmaker[Session], names: Names, stored: str, rounds: int
) -> dict[str, list[float]]:
    """Seconds per call, the columns interleaved round after round."""
    from _common import timed

    from services import throttle

    columns = _columns(factory, names, stored)
    samples: dict[str, list[float]] = {key: [] for key in columns}
    for _ in range(rounds):
        for key, call in columns.items():
            samples[key].append(timed(call))
        with factory() as db:  # keep the wrong-password name within its allowance
            throttle.unlock(db, names.victim)
            throttle.unlock(db, names.probe)
            db.commit()
    return samples


def _report(backend: str, cost: int, samples: dict[str, list[float]]) -> float:
    """Print one backend's rows; a refused attempt's cost over one bcrypt check."""
    from _common import summary

    ms = 1000.0
    print(f"[{backend}]")
    for label, key in ROWS:
        print(f"  {label.format(cost=cost):<32}{summary(samples[key], ms)}")
    med = {k: statistics.median(v) for k, v in samples.items()}
    print(
        f"  refused / bcrypt = {med['refused'] / med['raw']:.4f}; "
        f"added / bcrypt = {med['added'] / med['raw']:.4f}; "
        f"wrong - bcrypt = {(med['wrong'] - med['raw']) * ms:.2f} ms median, "
        f"{(min(samples['wrong']) - min(samples['raw'])) * ms:.2f} ms min"
    )
    return med["refused"] / med["raw"]


def _delete_bench_rows(factory: sessionmaker[Session], prefix: str) -> None:
    from data.models import AuditEvent, ThrottleCounter, User

    with factory() as db:
        like = f"{prefix}%"
        db.execute(delete(ThrottleCounter).where(ThrottleCounter.key.like(f"user:{like}")))
        db.execute(delete(AuditEvent).where(AuditEvent.username.like(like)))
        db.execute(delete(User).where(User.username_key.like(like)))
        db.commit()


def run(backend: str, engine: Engine, names: Names, stored: str, args: argparse.Namespace) -> float:
    """Measure one backend: a refused attempt's cost over one bcrypt check."""
    from data.db.session import make_sessionmaker
    from data.migrations import upgrade

    upgrade(engine)
    factory = make_sessionmaker(engine)
    _seed(factory, names, stored)
    samples = _time_columns(factory, names, stored, args.rounds)
    ratio = _report(backend, args.cost, samples)
    _delete_bench_rows(factory, names.prefix)
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15, choices=range(3, 201), metavar="3-200")
    parser.add_argument("--cost", type=int, default=12, choices=range(4, 17), metavar="4-16")
    args = parser.parse_args()
    _configure(args.cost)

    import logging

    from data.db.session import make_engine
    from services import passwords

    # Audit lines are still built (their cost is measured) but not printed.
    logging.getLogger("studio_auth").addHandler(logging.NullHandler())
    stored = passwords.hash_password(PASSWORD)
    passwords.dummy_hash()
    names = Names(f"bench-{secrets.token_hex(4)}-")
    print(f"bcrypt cost {args.cost}, {args.rounds} interleaved rounds, times in ms")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        try:
            worst = max(worst, run("sqlite", sqlite, names, stored, args))
        finally:
            sqlite.dispose()
    pg_url = os.environ.get("BENCH_DATABASE_URL")
    if pg_url:
        pg = make_engine(pg_url)
        try:
            worst = max(worst, run("postgresql", pg, names, stored, args))
        finally:
            pg.dispose()
    # A refused attempt must cost a small fraction of the bcrypt work it saves.
    return 0 if worst < 0.1 else 1


if __name__ == "__main__":
    sys.exit(main())
