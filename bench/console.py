#!/usr/bin/env python3
"""The console's Staff page under load, beside /healthz and beside Django admin's user list.

    python bench/console.py [--duration 10] [--accounts 50] [--connections 8] [--skip-django]

studio-auth (``studio-auth serve``, SQLite, one process) with ``--accounts`` accounts,
signed in through the console's own sign-in form: req/s of ``GET /staff`` (the whole list,
rendered) with the session cookie, between two runs of ``GET /healthz``. Django (the peer
of bench/peers.py: gunicorn, one process, 4 threads, SQLite) with as many users, signed
in as a superuser: req/s of its admin's user list ``/admin/auth/user/`` (100 a page, so
all of them) between two runs of ``/ping``. Every load is wrk on 127.0.0.1 only, bounded
by --duration; every answer must be 200.

Goal (docs/performance.md): the Staff page at least 25 % of /healthz's rate, and several
times Django admin's user list.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import peers  # noqa: E402
from http_load import PASSWORD, WrkResult, ensure_wrk, wrk  # noqa: E402

COOKIE = "__Host-studio-auth-session"


def _seed(database_url: str, accounts: int) -> None:
    """A migrated database: ``admin`` and ``accounts - 1`` staff, one bcrypt hash shared
    (the page reads hashes never; making each costs time the figure does not measure)."""
    from data.db.session import make_engine, make_sessionmaker
    from data.migrations import upgrade
    from data.models import Role, User
    from services import passwords

    engine = make_engine(database_url)
    try:
        upgrade(engine)
        hashed = passwords.hash_password(PASSWORD, 4)
        with make_sessionmaker(engine)() as db:
            db.add(User(username="admin", password_hash=hashed, role=Role.ADMIN))
            for i in range(1, accounts):
                db.add(User(username=f"staff{i:03d}", password_hash=hashed, role=Role.ASSISTANT))
            db.commit()
    finally:
        engine.dispose()


@contextlib.contextmanager
def studio_auth(workdir: Path, accounts: int) -> Iterator[tuple[str, str]]:
    """``studio-auth serve`` on a free port; yields its URL and the admin's cookie."""
    database_url = f"sqlite:///{workdir / 'console.db'}"
    _seed(database_url, accounts)
    port = peers.free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "STUDIO_AUTH_ENV": "development"}
    argv = [str(ROOT / ".venv" / "bin" / "studio-auth"), "serve", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with peers.running(
        "studio-auth", argv, f"{url}/healthz", cwd=workdir, env=env, log=workdir / "serve.log"
    ):
        yield url, _console_cookie(url)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _console_cookie(url: str) -> str:
    """Sign in through the console's form (a same-origin post, as a browser sends it)."""
    body = f"username=admin&password={urllib.parse.quote(PASSWORD)}".encode()
    request = urllib.request.Request(  # noqa: S310 (an http://127.0.0.1 URL)
        f"{url}/sign-in",
        data=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": url,
            "Sec-Fetch-Site": "same-origin",
        },
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        opener.open(request, timeout=30)
    except urllib.error.HTTPError as exc:
        if exc.code != 303:
            raise
        cookie = exc.headers.get("Set-Cookie", "")
        if cookie.startswith(f"{COOKIE}="):
            return cookie.split(";")[0]
    raise RuntimeError("the console's sign-in gave no session cookie")


def _django_cookie(url: str) -> str:
    body = json.dumps({"username": "admin", "password": PASSWORD}).encode()
    request = urllib.request.Request(  # noqa: S310 (an http://127.0.0.1 URL)
        f"{url}/login", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (127.0.0.1)
        cookie = response.headers.get("Set-Cookie", "")
    if not cookie.startswith("sessionid="):
        raise RuntimeError("Django's sign-in gave no session cookie")
    return cookie.split(";")[0]


def _run(url: str, path: str, cookie: str | None, duration: float, connections: int) -> WrkResult:
    env = {"WRK_PATH": path, **({"WRK_COOKIE": cookie} if cookie else {})}
    result = wrk(url, "get.lua", connections=connections, duration=duration, env=env)
    if set(result.statuses) != {"200"}:
        raise RuntimeError(f"{url}{path}: statuses {result.statuses}")
    return result


def page_vs_bare(
    url: str, page: str, bare: str, cookie: str, duration: float, connections: int
) -> dict[str, Any]:
    """req/s of ``page`` (signed in) between two runs of ``bare``."""
    before = _run(url, bare, None, duration, connections)
    loaded = _run(url, page, cookie, duration, connections)
    after = _run(url, bare, None, duration, connections)
    bare_rate = statistics.mean([before.rate(), after.rate()])
    return {
        "page_rps": loaded.rate(),
        "page_p50_ms": loaded.p50_ms,
        "bare_rps": bare_rate,
        "bare_runs": [before.rate(), after.rate()],
        "fraction": loaded.rate() / bare_rate,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load")
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--skip-django", action="store_true")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    ensure_wrk()
    results: dict[str, Any] = {"accounts": args.accounts}
    with (
        tempfile.TemporaryDirectory() as tmp,
        studio_auth(Path(tmp), args.accounts) as (
            url,
            cookie,
        ),
    ):
        ours = page_vs_bare(url, "/staff", "/healthz", cookie, args.duration, args.connections)
    results["studio-auth"] = ours
    print(
        f"studio-auth /staff ({args.accounts} accounts): {ours['page_rps']:7.0f} req/s "
        f"(p50 {ours['page_p50_ms']:.1f} ms)   /healthz {ours['bare_runs'][0]:7.0f} / "
        f"{ours['bare_runs'][1]:7.0f} req/s   = {ours['fraction']:6.1%}"
    )
    if not args.skip_django:
        users = [("admin", PASSWORD)] + [
            (f"staff{i:03d}", PASSWORD) for i in range(1, args.accounts)
        ]
        with tempfile.TemporaryDirectory() as tmp, peers.django_server(users, Path(tmp)) as server:
            theirs = page_vs_bare(
                server.url,
                "/admin/auth/user/",
                "/ping",
                _django_cookie(server.url),
                args.duration,
                args.connections,
            )
        results["django"] = {**theirs, "label": server.name}
        print(
            f"{server.name} admin user list: {theirs['page_rps']:7.0f} req/s "
            f"(p50 {theirs['page_p50_ms']:.1f} ms)   /ping {theirs['bare_runs'][0]:7.0f} / "
            f"{theirs['bare_runs'][1]:7.0f} req/s   = {theirs['fraction']:6.1%}"
        )
        ratio = ours["page_rps"] / theirs["page_rps"]
        print(f"studio-auth /staff ÷ Django admin's user list: {ratio:.1f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
