#!/usr/bin/env python3
"""Every bench script in one command, and the summary table for docs/performance.md.

    TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        python bench/run_all.py [--quick] [--out DIR (default: /tmp/studio-auth-bench)]

Runs, one after the other (never in parallel: the figures are ratios taken on a quiet
machine): authenticate.py, peers.py authenticate (Django), sessions.py, throttle.py,
http_load.py (studio-auth, FastAPI-Users, Django, overload) and scale.py. Each script's
full output goes to <out>/<script>.txt; the table is printed at the end and written to
<out>/summary.md. --quick shortens every load (a smoke run; its numbers are not figures).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import BENCH_DB_NAME, pg_base_url
from http_load import format_spread
from sqlalchemy import make_url

BENCH = Path(__file__).resolve().parent
PY = sys.executable
# What authenticate.py and peers.py print for figure 1 (the line grabbed below).
IN_PLACE = r"worst ratio over the bcrypt paths, in place: ([\d.]+)"
# --quick: every load shortened to a smoke run (its numbers are not figures).
QUICK_SESSIONS = ["--budget", "2"]
QUICK_HTTP = [
    "--duration",
    "3",
    "--login-duration",
    "3",
    "--limit-seconds",
    "1",
    "--overload-rounds",
    "1",
]
QUICK_SCALE = ["--big", "20000", "--budget", "3"]


def run(name: str, argv: list[str], out: Path, env: dict[str, str]) -> str:
    print(f"== {name}: {' '.join(argv)}", flush=True)
    start = time.monotonic()
    proc = subprocess.run(
        [PY, *argv], cwd=BENCH.parent, env=env, capture_output=True, text=True, timeout=3600
    )
    text = proc.stdout + (f"\n[stderr]\n{proc.stderr}" if proc.returncode else "")
    (out / f"{name}.txt").write_text(text)
    print(text.rstrip())
    print(f"== {name}: exit {proc.returncode} in {time.monotonic() - start:.0f} s\n", flush=True)
    return proc.stdout


def grab(pattern: str, text: str) -> float | None:
    found = re.findall(pattern, text)
    return float(found[-1]) if found else None


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def num(value: float | None, fmt: str = "{:.3f}") -> str:
    return "–" if value is None else fmt.format(value)


def _per_target(
    targets: dict[str, Any], names: list[str], cell: Callable[[dict[str, Any]], str]
) -> list[str]:
    """One cell per target in ``names`` order, "–" where its figure is missing."""
    cells = []
    for name in names:
        try:
            cells.append(cell(targets[name]))
        except (KeyError, TypeError):
            cells.append("–")
    return cells


def _authenticate_rows(fig: dict[str, Any]) -> list[list[str]]:
    """Figure 1: authenticate() and a throttled attempt, each next to one bcrypt check."""
    return [
        [
            "1. authenticate() ÷ bcrypt.checkpw, worst bcrypt path (SQLite, PostgreSQL)",
            num(fig.get("auth_worst")),
            "– (async only)",
            num(fig.get("django_worst")),
            "1.000",
        ],
        [
            "1. throttled attempt ÷ one check",
            num(fig.get("auth_throttled"), "{:.4f}"),
            "no throttle",
            "no throttle",
            "–",
        ],
    ]


def _http_rows(targets: dict[str, Any], names: list[str]) -> list[list[str]]:
    """Figures 2 and 3: logins/s against the raw bcrypt limit, and the authenticated GET."""
    rows: list[list[str]] = []
    for conns in ("1", "2", "4"):
        limit = [t["login"][conns]["limit_per_s"] for t in targets.values() if "login" in t]
        rows.append(
            [
                f"2. logins/s at concurrency {conns}, ÷ raw bcrypt limit "
                f"({'1 thread' if conns == '1' else '2 threads'})",
                *_per_target(
                    targets,
                    names,
                    lambda t, c=conns: (
                        f"{t['login'][c]['logins_per_s']:.2f}/s = {t['login'][c]['fraction']:.0%}"
                    ),
                ),
                " / ".join(f"{v:.2f}" for v in limit) + " /s",
            ]
        )
    auth_vs_bare = _per_target(
        targets,
        names,
        lambda t: (
            f"{t['auth_vs_bare']['auth_rps']:.0f} ÷ {t['auth_vs_bare']['bare_rps']:.0f}"
            f" = {t['auth_vs_bare']['fraction']:.0%}"
        ),
    )
    bare_p99 = _per_target(
        targets,
        names,
        lambda t: f"{t['bare_p99']['busy_p99_ms']:.1f} ms ({t['bare_p99']['idle_p99_ms']:.1f})",
    )
    rows.append(["3. authenticated GET ÷ bare endpoint, req/s", *auth_vs_bare, "100 %"])
    rows.append(
        ["3. bare endpoint p99 while logins run at concurrency 2 (idle p99)", *bare_p99, "–"]
    )
    return rows


def _overload_rows(over: dict[str, Any]) -> list[list[str]]:
    """The flood figures: medians and ranges over the rounds, next to the floor."""
    rounds = len(over["rounds"])

    def spread(state: str, key: str) -> str:
        return format_spread(over[state][key])

    floor = "with the flood's password checks alone"
    sprayed = sum(r["spray_rps"] for r in over["rounds"]) / rounds
    return [
        [
            f"Overload: /auth/me p99 under a {over['flood_rps']:.0f} req/s login flood ÷ idle,"
            f" median ({rounds} rounds)",
            f"{spread('flood', 'me_ratio')}; idle {over['me_p99_idle_ms']:.1f} ms",
            "–",
            "–",
            f"{spread('floor', 'me_ratio')} {floor}",
        ],
        [
            f"Overload: legitimate login p50 under the flood ÷ idle, median ({rounds} rounds)",
            f"{spread('flood', 'login_ratio')}; idle {over['login_p50_idle_ms']:.0f} ms",
            "–",
            "–",
            f"{spread('floor', 'login_ratio')} {floor}",
        ],
        [
            f"Overload: legitimate login p50 under a {sprayed:.0f} req/s spray of guesses"
            f" (each one bcrypt check) ÷ idle, median ({rounds} rounds)",
            spread("spray", "login_ratio"),
            "–",
            "–",
            "–",
        ],
    ]


def table(fig: dict[str, Any]) -> str:
    """The summary table for docs/performance.md, one column per target."""
    http = fig.get("http", {})
    targets = http.get("targets", {})
    names = ["studio-auth", "FastAPI-Users", next((n for n in targets if "Django" in n), "Django")]
    rows = _authenticate_rows(fig) + _http_rows(targets, names)
    if http.get("overload"):
        rows += _overload_rows(http["overload"])
    rows.append(
        [
            "5. lookup and resolve at 1 M rows ÷ at 1 000 (PostgreSQL), worst",
            num(fig.get("scale_worst")),
            "–",
            "–",
            "1.000",
        ]
    )
    head = ["figure", "studio-auth", "FastAPI-Users", names[2], "physical limit"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--out", type=Path, default=Path(tempfile.gettempdir()) / "studio-auth-bench"
    )
    return parser.parse_args()


def _throttle_env(env: dict[str, str], pg: str | None) -> dict[str, str]:
    """bench/throttle.py works inside the database it is given: the bench database, which
    bench/authenticate.py has just created and migrated (not the one others use)."""
    if not pg:
        return dict(env)
    bench_db = make_url(pg).set(database=BENCH_DB_NAME)
    return {**env, "BENCH_DATABASE_URL": bench_db.render_as_string(hide_password=False)}


def _run_http(quick: bool, out: Path, env: dict[str, str]) -> dict[str, Any] | None:
    """bench/http_load.py's figures, read from the JSON file it writes."""
    http_json = out / "http.json"
    argv = ["bench/http_load.py", *(QUICK_HTTP if quick else []), "--json", str(http_json)]
    run("http", argv, out, env)
    return json.loads(http_json.read_text()) if http_json.exists() else None


def main() -> int:
    args = _parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    pg = pg_base_url()
    rounds = ["--rounds", "3"] if args.quick else ["--rounds", "15"]
    fig: dict[str, Any] = {}

    text = run("authenticate", ["bench/authenticate.py", *rounds], args.out, env)
    fig["auth_worst"] = grab(IN_PLACE, text)
    fig["auth_throttled"] = grab(r"throttled path: ([\d.]+)", text)
    text = run("django_authenticate", ["bench/peers.py", "authenticate", *rounds], args.out, env)
    fig["django_worst"] = grab(IN_PLACE, text)
    run("sessions", ["bench/sessions.py", *(QUICK_SESSIONS if args.quick else [])], args.out, env)
    run("throttle", ["bench/throttle.py", *rounds], args.out, _throttle_env(env, pg))
    http = _run_http(args.quick, args.out, env)
    if http is not None:
        fig["http"] = http
    if pg:
        quick_scale = QUICK_SCALE if args.quick else []
        text = run("scale", ["bench/scale.py", *quick_scale], args.out, env)
        fig["scale_worst"] = grab(r"worst ratio: ([\d.]+)", text)
    summary = table(fig)
    (args.out / "summary.md").write_text(summary + "\n")
    (args.out / "figures.json").write_text(json.dumps(fig, indent=2))
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
