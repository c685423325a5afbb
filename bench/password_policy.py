#!/usr/bin/env python3
"""What one password policy check costs (services/password_policy.check_password), for a
64-character and a 4096-byte password, next to the bcrypt hash that setting a password
costs anyway.

    python bench/password_policy.py [--rounds 15] [--cost 12]

Each length is measured on a generated password (letters, digits and symbols, as a
password manager makes them) and on a crafted one made only of the characters zxcvbn
reads as l33t letters, whose spellings multiply its work: the worst case the policy's
bounded prefix has to hold. Fresh passwords every round, no database. Times in ms: min,
median, max.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import string
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

L33T = "4@8({[<369!1|70$5+%2"
PRINTABLE = string.ascii_letters + string.digits + string.punctuation


def generated(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(PRINTABLE) for _ in range(length))


def crafted(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(L33T) for _ in range(length))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15, choices=range(3, 201), metavar="3-200")
    parser.add_argument("--cost", type=int, default=12, choices=range(4, 17), metavar="4-16")
    args = parser.parse_args()
    os.environ["STUDIO_AUTH_BCRYPT_ROUNDS"] = str(args.cost)
    os.environ.setdefault("STUDIO_AUTH_ENV", "development")

    from bench._common import summary, timed
    from services import passwords
    from services.password_policy import check_password

    rng = random.Random(18)
    cases: list[tuple[str, Callable[[], str]]] = [
        ("64 characters, generated", lambda: generated(rng, 64)),
        ("64 characters, crafted l33t", lambda: crafted(rng, 64)),
        ("4096 bytes, generated", lambda: generated(rng, 4096)),
        ("4096 bytes, crafted l33t", lambda: crafted(rng, 4096)),
    ]
    check_password(generated(rng, 64))  # load the common-password list and zxcvbn's
    samples: dict[str, list[float]] = {name: [] for name, _ in cases}
    samples[f"bcrypt hash, cost {args.cost}"] = []
    for _ in range(args.rounds):  # interleaved, so machine noise hits every row alike
        for name, make in cases:
            samples[name].append(timed(functools.partial(check_password, make())))
        samples[f"bcrypt hash, cost {args.cost}"].append(
            timed(lambda: passwords.hash_password("velvet thunder over the harbour"))
        )
    width = max(len(name) for name in samples)
    print(f"password policy check, {args.rounds} rounds, ms")
    for name, values in samples.items():
        print(f"  {name:<{width}}  {summary(values, 1000)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
