#!/usr/bin/env python3
"""authenticate() time over one raw bcrypt.checkpw at the same cost, per path.

    python bench/authenticate.py [--rounds 15] [--cost 12]

Runs on a fresh SQLite file and, when BENCH_DATABASE_URL or TEST_DATABASE_URL is set, on
PostgreSQL. Measurements are interleaved (raw check, then each path, round after round) so
machine noise hits every column alike. Two ratios per path:

- in place (the figure): 1 + median(time the call spent outside bcrypt) / median(raw
  checkpw). The bcrypt calls inside each call are timed too (bench/bcrypt_clock.py), so
  what the path adds is measured on the same call and bcrypt's own spread cancels;
- of medians: median(whole call) / median(raw checkpw), which carries that spread.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if TYPE_CHECKING:
    from bcrypt_clock import BcryptClock
    from sqlalchemy.orm import Session, sessionmaker

PASSWORD = "a long and quite ordinary passphrase"
# Each path timed, as the username and password it signs in with (users from _seed()).
PATHS = {
    "success": ("alice", PASSWORD),
    "wrong password": ("alice", PASSWORD + "!"),
    "unknown user": ("nobody", PASSWORD),
    "inactive user": ("gone", PASSWORD),
    "throttled": ("locked", PASSWORD),
}


class Ratios(NamedTuple):
    in_place: float  # the figure, over the bcrypt paths
    of_medians: float  # over the bcrypt paths
    throttled: float  # a throttled attempt (no bcrypt) over one check


def _configure(cost: int) -> None:
    os.environ["STUDIO_AUTH_BCRYPT_ROUNDS"] = str(cost)
    os.environ.setdefault("STUDIO_AUTH_ENV", "development")
    # The bcrypt paths are measured with the per-name throttle out of the way; the
    # throttled path uses a name whose counter row is locked for a day.
    os.environ["STUDIO_AUTH_THROTTLE_FREE_FAILURES"] = "1000"
    os.environ["STUDIO_AUTH_THROTTLE_IP_MAX_FAILURES"] = "1000000"


def _seed(factory: sessionmaker[Session], stored: bytes) -> None:
    """alice (active), gone (inactive) and locked (its name's counter locked for a day)."""
    from data.models import Role, ThrottleCounter, User
    from services.throttle import user_key
    from studio_auth.clock import now

    hashed = stored.decode()
    with factory() as db:
        db.add(User(username="alice", password_hash=hashed, role=Role.ADMIN))
        db.add(User(username="gone", password_hash=hashed, role=Role.ASSISTANT, is_active=False))
        db.add(User(username="locked", password_hash=hashed, role=Role.ADMIN))
        at = now()
        db.add(
            ThrottleCounter(
                key=user_key("locked"),
                failures=1000,
                window_start=at,
                last_failure_at=at,
                blocked_until=at + timedelta(days=1),
                sign_in_count=0,  # current for the account: still locked
            )
        )
        db.commit()


def _time_paths(
    factory: sessionmaker[Session], clock: BcryptClock, stored: bytes, rounds: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Whole times per path and of a raw check, interleaved round after round, and the
    time each call spent outside bcrypt, in seconds."""
    from _common import timed

    from services.auth import authenticate

    samples: dict[str, list[float]] = {"raw checkpw": [], **{k: [] for k in PATHS}}
    added: dict[str, list[float]] = {k: [] for k in PATHS}

    def attempt(username: str, password: str) -> None:
        with factory() as db:
            authenticate(db, username, password)
            db.commit()

    attempt("alice", PASSWORD)  # warm the pool and caches
    for _ in range(rounds):
        samples["raw checkpw"].append(timed(lambda: clock.raw_checkpw(PASSWORD.encode(), stored)))
        for name, (user, pw) in PATHS.items():
            whole, inside = clock.measure(lambda u=user, p=pw: attempt(u, p))
            samples[name].append(whole)
            added[name].append(whole - inside)
    return samples, added


def _report(backend: str, samples: dict[str, list[float]], added: dict[str, list[float]]) -> Ratios:
    """Print one backend's rows; its worst ratios."""
    from _common import summary
    from bcrypt_clock import in_place_ratio

    raw_samples = samples["raw checkpw"]
    raw = statistics.median(raw_samples)
    worst = worst_of_medians = throttled = 0.0
    print(f"\n[{backend}]")
    print(f"  {'raw checkpw':15s} {summary(raw_samples, 1000)}")
    for name in PATHS:
        of_medians = statistics.median(samples[name]) / raw
        shown = f"  {name:15s} {summary(samples[name], 1000)}   added "
        shown += f"{statistics.median(added[name]) * 1000:6.2f}"
        if name == "throttled":  # no bcrypt at all: a fraction of one check
            throttled = max(throttled, of_medians)
            print(f"{shown}   = {of_medians:.4f} of one check")
            continue
        in_place = in_place_ratio(added[name], raw_samples)
        worst = max(worst, in_place)
        worst_of_medians = max(worst_of_medians, of_medians)
        print(f"{shown}   of medians {of_medians:6.3f}   in place {in_place:6.3f}")
    return Ratios(worst, worst_of_medians, throttled)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--cost", type=int, default=12)
    args = parser.parse_args()
    _configure(args.cost)

    import logging

    import bcrypt
    from _common import bench_engines
    from bcrypt_clock import BcryptClock

    from data.db.session import make_sessionmaker
    from services import passwords

    # Audit lines are still built (their cost is measured) but not printed.
    logging.getLogger("studio_auth").addHandler(logging.NullHandler())
    stored = passwords.hash_password(PASSWORD).encode()
    passwords.dummy_hash()  # built once per process, as in a running service
    clock = BcryptClock(bcrypt)
    print(f"bcrypt cost {args.cost}, {args.rounds} interleaved rounds, times in ms")
    worst = Ratios(0.0, 0.0, 0.0)
    with bench_engines() as engines:
        for backend, engine in engines:
            factory = make_sessionmaker(engine)
            _seed(factory, stored)
            samples, added = _time_paths(factory, clock, stored, args.rounds)
            worst = Ratios(*map(max, worst, _report(backend, samples, added)))
    print(f"\nworst ratio over the bcrypt paths, in place: {worst.in_place:.3f} (goal <= 1.02)")
    print(f"worst ratio of medians over the bcrypt paths: {worst.of_medians:.3f}")
    print(f"throttled path: {worst.throttled:.4f} of one check (goal < 0.01)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
