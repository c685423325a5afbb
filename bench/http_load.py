#!/usr/bin/env python3
"""HTTP figures with wrk against a real ``studio-auth serve`` process and the peers.

    python bench/http_load.py [--duration 10] [--login-duration 30] [--limit-seconds 4]
                         [--targets studio-auth,fastapi-users,django]
                         [--skip-overload] [--overload-rounds 3] [--json results.json]

Figures (every load bounded by --duration, on 127.0.0.1 only):

2. Login throughput at concurrency 1, 2 and 4, as a fraction of the raw bcrypt limit
   measured just before each load: two threads (one for concurrency 1, which cannot use
   more) running bcrypt.checkpw at cost 12 in this process for --limit-seconds (bcrypt
   releases the GIL; this machine has 2 cores). Each login load runs --login-duration
   seconds: wrk counts only the responses that arrive inside its window, so the check
   each busy core is half-way through when it closes is lost (a smaller share of a
   longer load), while the limit's threads finish their last check and are timed to
   its end.
3. Requests/s of the authenticated endpoint (GET /auth/me with a bearer token; the peers'
   /users/me and /me) next to the app's bare endpoint (/healthz, /ping), measured
   bare, auth, bare; and the p99 of the bare endpoint, paced at 50 requests/s on one
   connection, while logins run at concurrency 2.
Overload (studio-auth only, --overload-rounds rounds on fresh servers, median and range):
a paced flood of about 200 login requests/s, most of them for five names already locked
by the throttle (wrong passwords, from 200 forwarded client addresses), every 100th a
valid sign-in; the /auth/me p99 and a legitimate user's login p50 (paced probes) are
measured idle, during the flood, with the flood's password checks alone (the floor: as
many valid sign-ins per second as the audit trail shows reached bcrypt during the flood),
during the attack alone (the flood without its valid sign-ins) and during a spray (a
wrong password for a different unknown name on every request, so that each is a bcrypt
check), each with the cores the server's event loop and pools and the rest of the
machine used. A burst of 16 concurrent valid logins shows the bounded password pool
answering 503 + Retry-After.

(Named http_load.py, not http.py: a bench/http.py would shadow the standard library's
``http`` package for every script in bench/, whose directory is first on sys.path.)

Needs ``wrk`` (``apt-get install -y wrk``; installed here when missing and run as root).
The server processes run with their own defaults (uvicorn's access log included).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WRK_DIR = BENCH / "wrk"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import peers  # noqa: E402

PASSWORD = "a long and quite ordinary passphrase"
COST = 12
USERS = [f"user{i}" for i in range(8)]
ATTACKED = [f"victim{i}" for i in range(5)]
SPRAY_NAMES = 500
# Every guessing load: 32 connections each pausing 155 ms between requests, at most 206
# requests/s: about the overload figure's 200/s once each request's own time is added
# (the measured rate is reported, not assumed).
GUESSERS = 32
GUESS_DELAY_MS = "155"
# Wrong passwords for the attacked names, which the throttle soon locks.
ATTACK_GUESSES = ",".join(f"{n}:wrong password {n}" for n in ATTACKED)
# A spray: a wrong password for a different, unknown name on each request, from addresses
# of their own, so that every request is one bcrypt check (for an unknown name, a check
# against the dummy hash) and most are refused for want of a slot. Clean sign-ins must
# still get theirs.
SPRAY_GUESSES = ",".join(f"spray{i}:a common password" for i in range(SPRAY_NAMES))
NO_VALID = "1000000000"  # login.lua's "every Nth request is valid": in effect none


# Load threads call ensure_wrk too (overload() runs wrk in the background): one lock, so
# that a missing wrk is installed once even when main() did not install it first.
_WRK_INSTALL = threading.Lock()


def ensure_wrk() -> str:
    with _WRK_INSTALL:
        found = shutil.which("wrk")
        if found:
            return found
        if os.geteuid() == 0 and shutil.which("apt-get"):
            print("wrk not found: installing Debian's package (apt-get install -y wrk)")
            subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=600)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, timeout=600)
            found = shutil.which("wrk")
        if not found:
            sys.exit("bench/http_load.py needs wrk: run `apt-get install -y wrk` as root")
        return found


# --- load -----------------------------------------------------------------------------


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int]
    socket_errors: int

    def rate(self, status: str | None = None) -> float:
        count = self.requests if status is None else self.statuses.get(status, 0)
        return count / self.duration_s


def wrk(
    url: str,
    script: str,
    *,
    connections: int,
    duration: float,
    threads: int | None = None,
    env: dict[str, str] | None = None,
) -> WrkResult:
    """One bounded wrk run; its Lua ``done()`` prints a JSON summary line."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError("loads target 127.0.0.1 only")
    threads = threads or min(connections, 2)
    argv = [
        ensure_wrk(),
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{duration:g}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_DIR / script),
        url,
    ]
    full_env = {**os.environ, "WRK_DIR": str(WRK_DIR), **(env or {})}
    out = subprocess.run(
        argv, env=full_env, capture_output=True, text=True, timeout=duration + 30, check=True
    )
    for line in out.stdout.splitlines():
        if line.startswith("WRK_RESULT "):
            data = json.loads(line.removeprefix("WRK_RESULT "))
            return WrkResult(
                requests=data["requests"],
                duration_s=data["duration_us"] / 1e6,
                p50_ms=data["p50_us"] / 1e3,
                p90_ms=data["p90_us"] / 1e3,
                p99_ms=data["p99_us"] / 1e3,
                max_ms=data["max_us"] / 1e3,
                statuses=data["statuses"],
                socket_errors=data["socket_errors"],
            )
    raise RuntimeError(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")


@contextlib.contextmanager
def background_wrk(url: str, script: str, **kwargs: Any) -> Iterator[dict[str, WrkResult]]:
    """Run wrk in a thread; the result is in the yielded dict once the block ends."""
    box: dict[str, WrkResult] = {}
    errors: list[BaseException] = []

    def run() -> None:
        try:
            box["result"] = wrk(url, script, **kwargs)
        except BaseException as exc:  # noqa: BLE001 (re-raised in the caller's thread)
            errors.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        yield box
    finally:
        worker.join(timeout=kwargs["duration"] + 60)
    if errors:
        raise errors[0]


def bcrypt_limit(seconds: float, threads: int = 2) -> float:
    """Raw bcrypt.checkpw completions per second on ``threads`` threads."""
    import bcrypt

    stored = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(COST))
    done = [0] * threads
    deadline = time.perf_counter() + seconds

    def spin(i: int) -> None:
        while time.perf_counter() < deadline:
            bcrypt.checkpw(PASSWORD.encode(), stored)
            done[i] += 1

    start = time.perf_counter()
    workers = [threading.Thread(target=spin, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(done) / (time.perf_counter() - start)


# --- targets --------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    url: str
    login_path: str
    login_format: str  # "json" or "form"
    login_name: str  # format string for the login name, e.g. "{}@example.com"
    me_path: str
    bare_path: str
    auth_env: dict[str, str] = field(default_factory=dict)  # WRK_TOKEN or WRK_COOKIE
    pid: int | None = None  # the server process, where it is one process

    def login_env(self, names: list[str], **extra: str) -> dict[str, str]:
        users = ",".join(f"{self.login_name.format(n)}:{PASSWORD}" for n in names)
        return {
            "WRK_PATH": self.login_path,
            "WRK_FORMAT": self.login_format,
            "WRK_USERS": users,
            **extra,
        }

    def post_login(self, name: str) -> tuple[int, str | None, dict[str, Any]]:
        """One sign-in request for ``name``: its status, Set-Cookie header and JSON body."""
        login = self.login_name.format(name)
        if self.login_format == "form":
            body = urllib.parse.urlencode({"username": login, "password": PASSWORD}).encode()
            ctype = "application/x-www-form-urlencoded"
        else:
            body = json.dumps({"username": login, "password": PASSWORD}).encode()
            ctype = "application/json"
        request = urllib.request.Request(  # noqa: S310 (an http://127.0.0.1 URL)
            self.url + self.login_path, data=body, headers={"Content-Type": ctype}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (127.0.0.1)
                cookie = response.headers.get("Set-Cookie")
                return response.status, cookie, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, None, {}

    def sign_in(self, name: str) -> None:
        """Sign in once and keep what /me needs (a bearer token or a session cookie)."""
        status, cookie, data = self.post_login(name)
        if status != 200:
            raise RuntimeError(f"{self.name}: sign-in answered {status}")
        if "access_token" in data:
            self.auth_env = {"WRK_TOKEN": data["access_token"]}
        elif cookie:
            self.auth_env = {"WRK_COOKIE": cookie.split(";")[0]}
        else:
            raise RuntimeError(f"{self.name}: sign-in gave neither a token nor a cookie")


def _seed_studio_auth(database_url: str, names: list[str]) -> None:
    """Migrated database with ``names`` (assistants) at bcrypt cost 12, done in-process."""
    from data.db.session import make_engine, make_sessionmaker
    from data.migrations import upgrade
    from data.models import Role, User
    from services import passwords

    engine = make_engine(database_url)
    try:
        upgrade(engine)
        with make_sessionmaker(engine)() as db:
            for name in names:
                hashed = passwords.hash_password(PASSWORD, COST)
                db.add(User(username=name, password_hash=hashed, role=Role.ASSISTANT))
            db.commit()
    finally:
        engine.dispose()


@contextlib.contextmanager
def studio_auth_server(workdir: Path, **settings: str) -> Iterator[Target]:
    """``studio-auth serve`` on a free port with a fresh SQLite file, cost 12."""
    database_url = f"sqlite:///{workdir / 'studio_auth.db'}"
    _seed_studio_auth(database_url, USERS + ATTACKED)
    port = peers.free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "STUDIO_AUTH_BCRYPT_ROUNDS": str(COST),
        **{f"STUDIO_AUTH_{k.upper()}": v for k, v in settings.items()},
    }
    argv = [
        str(ROOT / ".venv" / "bin" / "studio-auth"),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    url = f"http://127.0.0.1:{port}"
    with peers.running(
        "studio-auth", argv, f"{url}/healthz", cwd=workdir, env=env, log=workdir / "serve.log"
    ) as proc:
        yield Target(
            "studio-auth", url, "/auth/login", "json", "{}", "/auth/me", "/healthz", pid=proc.pid
        )


@contextlib.contextmanager
def target_server(name: str, workdir: Path) -> Iterator[Target]:
    if name == "studio-auth":
        with studio_auth_server(workdir) as target:
            yield target
    elif name == "fastapi-users":
        with peers.fastapi_users_server([(u, PASSWORD) for u in USERS], workdir) as server:
            yield Target(
                server.name,
                server.url,
                "/auth/login",
                "form",
                "{}@example.com",
                "/users/me",
                "/ping",
            )
    elif name == "django":
        with peers.django_server([(u, PASSWORD) for u in USERS], workdir) as server:
            yield Target(server.name, server.url, "/login", "json", "{}", "/me", "/ping")
    else:
        raise ValueError(name)


# --- figures --------------------------------------------------------------------------


def login_throughput(target: Target, duration: float, limit_seconds: float) -> dict[str, Any]:
    """Figure 2: logins/s at concurrency 1, 2 and 4 over ``duration`` seconds each, and
    each as a fraction of the raw bcrypt limit measured just before it."""
    rows: dict[str, Any] = {}  # keyed as in the JSON output
    for conns in (1, 2, 4):
        # One connection can use one core at most: compare it with one thread's limit.
        limit = bcrypt_limit(limit_seconds, threads=min(conns, 2))
        result = wrk(
            target.url,
            "login.lua",
            connections=conns,
            duration=duration,
            env=target.login_env(USERS),
        )
        ok = result.rate("200")
        rows[str(conns)] = {
            "logins_per_s": ok,
            "limit_per_s": limit,
            "fraction": ok / limit,
            "p50_ms": result.p50_ms,
            "statuses": result.statuses,
        }
        print(
            f"  login c={conns}: {ok:5.2f}/s of limit {limit:5.2f}/s = {ok / limit:6.1%}"
            f"   p50 {result.p50_ms:6.0f} ms  statuses {result.statuses}"
        )
    return rows


def auth_vs_bare(target: Target, duration: float) -> dict[str, Any]:
    def run(path: str, auth: bool) -> WrkResult:
        env = {"WRK_PATH": path, **(target.auth_env if auth else {})}
        result = wrk(target.url, "get.lua", connections=8, duration=duration, env=env)
        if set(result.statuses) != {"200"}:
            raise RuntimeError(f"{target.name} {path}: statuses {result.statuses}")
        return result

    bare1 = run(target.bare_path, False)
    auth = run(target.me_path, True)
    bare2 = run(target.bare_path, False)
    bare = statistics.mean([bare1.rate(), bare2.rate()])
    print(
        f"  {target.me_path}: {auth.rate():7.0f} req/s   {target.bare_path}: "
        f"{bare1.rate():7.0f} / {bare2.rate():7.0f} req/s   = {auth.rate() / bare:6.1%}"
    )
    return {
        "auth_rps": auth.rate(),
        "bare_rps": bare,
        "fraction": auth.rate() / bare,
        "bare_runs": [bare1.rate(), bare2.rate()],
    }


def paced(target: Target, path: str, duration: float, delay_ms: int, auth: bool) -> WrkResult:
    env = {"WRK_PATH": path, "WRK_DELAY_MS": str(delay_ms), **(target.auth_env if auth else {})}
    return wrk(target.url, "get.lua", connections=1, threads=1, duration=duration, env=env)


def bare_p99_under_logins(target: Target, duration: float) -> dict[str, Any]:
    idle = paced(target, target.bare_path, duration, 20, False)
    with background_wrk(
        target.url, "login.lua", connections=2, duration=duration + 2, env=target.login_env(USERS)
    ) as box:
        time.sleep(1)  # let the logins occupy both cores first
        busy = paced(target, target.bare_path, duration, 20, False)
    logins = box["result"]
    print(
        f"  {target.bare_path} p99 idle {idle.p99_ms:7.1f} ms, with logins at c=2 "
        f"{busy.p99_ms:7.1f} ms (p50 {busy.p50_ms:.1f}; {logins.rate('200'):.2f} logins/s)"
    )
    return {
        "idle_p99_ms": idle.p99_ms,
        "busy_p99_ms": busy.p99_ms,
        "busy_p50_ms": busy.p50_ms,
        "logins_per_s": logins.rate("200"),
    }


def _bcrypt_checks(database_url: str, since: datetime, until: datetime, skip: str) -> int:
    """Sign-ins that reached a password check between ``since`` and ``until`` (each one
    leaves a ``login`` success or failure event), except the name ``skip``."""
    from sqlalchemy import func, select

    from data.db.session import make_engine
    from data.models import AuditEvent

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            query = select(func.count()).where(
                AuditEvent.event == "login",
                AuditEvent.outcome.in_(["success", "failure"]),
                AuditEvent.at.between(since, until),
                AuditEvent.username != skip,
            )
            return int(conn.scalar(query) or 0)
    finally:
        engine.dispose()


@contextlib.contextmanager
def paced_sign_ins(
    target: Target, names: list[str], rate: float, duration: float
) -> Iterator[collections.Counter[str]]:
    """Valid sign-ins for ``names`` at ``rate`` per second, evenly spaced, for ``duration``
    seconds, sent from a few threads of this process (they spend their time waiting). The
    yielded counter holds their statuses once the block ends."""
    statuses: collections.Counter[str] = collections.Counter()
    stop = threading.Event()

    def one(name: str) -> None:
        statuses[str(target.post_login(name)[0])] += 1

    def run() -> None:
        with ThreadPoolExecutor(4) as pool:
            start = time.monotonic()
            for k in itertools.count():
                due = start + k / rate
                if due > start + duration or stop.wait(max(0.0, due - time.monotonic())):
                    break
                pool.submit(one, names[k % len(names)])

    pacer = threading.Thread(target=run, daemon=True)
    if rate > 0:
        pacer.start()
    try:
        yield statuses
    finally:
        stop.set()
        if pacer.is_alive():
            pacer.join(timeout=duration + 60)


# --- where the CPU goes ---------------------------------------------------------------

STATES = ("idle", "flood", "floor", "attack", "spray")  # the overload probes' states, in order
LOADED = STATES[1:]  # the states measured against idle
CPU_ROLES = ("event loop", "throttle", "password", "other threads", "rest of machine")


def _thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds used so far by process ``pid``'s threads, by role: the main thread
    (the event loop) and the sign-in pools, which name their threads in the OS."""
    tick = os.sysconf("SC_CLK_TCK")
    used: collections.defaultdict[str, float] = collections.defaultdict(float)
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:  # the thread has ended
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        role = name.rstrip("0123456789").rstrip("_")
        if int(tid) == pid:
            role = "event loop"
        elif role not in ("throttle", "password"):
            role = "other threads"
        used[role] += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return used


def _machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all but idle and I/O wait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def cpu_use(pid: int) -> Iterator[dict[str, float]]:
    """Cores used during the block, by role in the server and for the rest of the
    machine (the load generators, the probes, PostgreSQL), filled in when it ends."""
    cores: dict[str, float] = {}
    before, busy, start = _thread_cpu(pid), _machine_busy(), time.monotonic()
    yield cores
    after, elapsed = _thread_cpu(pid), time.monotonic() - start
    for role in CPU_ROLES[:-1]:
        cores[role] = (after[role] - before[role]) / elapsed
    server = sum(cores.values())
    cores["rest of machine"] = max(0.0, (_machine_busy() - busy) / elapsed - server)


def format_cpu(cores: dict[str, float]) -> str:
    shown = ", ".join(f"{role} {cores[role]:.2f}" for role in CPU_ROLES)
    return f"{shown}; in all {sum(cores.values()):.2f} of {os.cpu_count()}"


def _ratio_or_none(busy: WrkResult, idle: WrkResult) -> float | None:
    # wrk's latencies cannot be split by status: when some legitimate sign-ins were
    # refused (a fast 503), their p50 is not a sign-in time and no ratio is given.
    refused = sum(n for status, n in busy.statuses.items() if status != "200")
    return None if refused else busy.p50_ms / idle.p50_ms


def _guessing_env(target: Target, guesses: str, valid_every: str, **extra: str) -> dict[str, str]:
    """login.lua's settings for a paced load of wrong ``guesses`` from forwarded addresses,
    every ``valid_every``-th request a valid sign-in for one of the flood's own users."""
    return target.login_env(
        USERS[2:],
        WRK_VALID_EVERY=valid_every,
        WRK_BAD_USERS=guesses,
        WRK_XFF="bad",
        WRK_DELAY_MS=GUESS_DELAY_MS,
        **extra,
    )


def _guessing_load(
    target: Target, env: dict[str, str], duration: float
) -> contextlib.AbstractContextManager[dict[str, WrkResult]]:
    """The guessers' load in the background, the sign-ins ``env`` describes."""
    return background_wrk(
        target.url, "login.lua", connections=GUESSERS, threads=1, duration=duration, env=env
    )


@dataclass
class RoundProbes:
    """The paced probes of one overload round and what they saw in each state: /auth/me
    (paced at 100/s) and a legitimate user signing in every 0.5 s, with the cores used."""

    target: Target
    duration: float
    seen: dict[str, tuple[WrkResult, WrkResult]] = field(default_factory=dict)
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)

    def probe(self, state: str) -> None:
        target, pid = self.target, self.target.pid
        assert pid is not None
        legit = target.login_env([USERS[1]], WRK_DELAY_MS="500")
        with (
            background_wrk(
                target.url, "login.lua", connections=1, threads=1, duration=self.duration, env=legit
            ) as box,
            cpu_use(pid) as cores,
        ):
            me = paced(target, target.me_path, self.duration, 10, True)
        self.seen[state], self.cpu[state] = (me, box["result"]), cores

    def probe_under(self, state: str, env: dict[str, str]) -> WrkResult:
        """Probe ``state`` while the guessers send the sign-ins ``env`` describes."""
        with _guessing_load(self.target, env, self.duration + 1) as load:
            time.sleep(0.5)
            self.probe(state)
        return load["result"]


def _probe_flood(probes: RoundProbes, database_url: str) -> tuple[WrkResult, float]:
    """Probe the flood: its load, and the password checks per second it caused (each one
    leaves a sign-in event in the audit trail)."""
    env = _guessing_env(probes.target, ATTACK_GUESSES, valid_every="100")
    with _guessing_load(probes.target, env, probes.duration + 7) as box:
        # Probed in the steady state the figure describes ("most throttled"): until each
        # attacked name has used its free failures, their bcrypt checks fill the pool.
        time.sleep(6)
        since = datetime.now(UTC)
        probes.probe("flood")
        until = datetime.now(UTC)
    checks = _bcrypt_checks(database_url, since, until, skip=USERS[1])
    return box["result"], checks / (until - since).total_seconds()


def _burst(target: Target) -> WrkResult:
    """16 concurrent valid sign-ins for 5 s: the bounded password pool answers 503."""
    return wrk(
        target.url,
        "login.lua",
        connections=16,
        threads=2,
        duration=5,
        env=target.login_env(USERS[2:]),
    )


def overload_round(workdir: Path, duration: float, *, burst: bool) -> dict[str, Any]:
    """One round of the flood figures on a fresh server that believes X-Forwarded-For from
    127.0.0.1, so the flood's addresses and the legitimate user's are told apart.

    The probes run in five states: idle; during the flood; with only the flood's password
    checks (the valid sign-ins and lock expiries it made, counted from the audit trail,
    replayed as paced valid sign-ins: the work any service must do, and so the physical
    floor); during the attack alone (the flood without its valid sign-ins); and during a
    spray of guesses that each reach bcrypt, from addresses of their own. In each state
    the cores used are read from /proc, by role: the event loop, the throttle and
    password pools, and the rest of the machine (load generators, probes).
    """
    workdir.mkdir()
    database_url = f"sqlite:///{workdir / 'studio_auth.db'}"
    with studio_auth_server(workdir, trusted_proxies="127.0.0.1/32") as target:
        target.sign_in(USERS[0])
        probes = RoundProbes(target, duration)
        probes.probe("idle")
        flood, check_rate = _probe_flood(probes, database_url)
        with paced_sign_ins(target, USERS[2:], check_rate, duration + 1) as floor_statuses:
            time.sleep(0.5)
            probes.probe("floor")
        attack = probes.probe_under("attack", _guessing_env(target, ATTACK_GUESSES, NO_VALID))
        spray_env = _guessing_env(target, SPRAY_GUESSES, NO_VALID, WRK_XFF_BAD="192.0.2.")
        spray = probes.probe_under("spray", spray_env)
        burst_result = _burst(target) if burst else None
    out: dict[str, Any] = {
        "flood_rps": flood.rate(),
        "flood_statuses": flood.statuses,
        "flood_checks_per_s": check_rate,
        "floor_statuses": dict(floor_statuses),
        "attack_rps": attack.rate(),
        "spray_rps": spray.rate(),
        "spray_statuses": spray.statuses,
    }
    out |= _probe_figures(probes)
    if burst_result is not None:
        out["burst_statuses"] = burst_result.statuses
        out["burst_p50_ms"] = burst_result.p50_ms
    return out


def _probe_figures(probes: RoundProbes) -> dict[str, Any]:
    """What the probes saw idle, and in each loaded state next to idle."""
    idle_me, idle_login = probes.seen["idle"]
    out: dict[str, Any] = {
        "me_p99_idle_ms": idle_me.p99_ms,
        "login_p50_idle_ms": idle_login.p50_ms,
        "cpu": probes.cpu,
    }
    for state in LOADED:
        me, login = probes.seen[state]
        out[state] = {
            "me_p99_ms": me.p99_ms,
            "me_ratio": me.p99_ms / idle_me.p99_ms,
            "login_p50_ms": login.p50_ms,
            "login_ratio": _ratio_or_none(login, idle_login),
            "legit_statuses": login.statuses,
        }
    return out


def _spread(values: list[float | None]) -> dict[str, Any]:
    measured = [v for v in values if v is not None]
    if not measured:
        return {"median": None, "min": None, "max": None, "unmeasured": len(values)}
    return {
        "median": statistics.median(measured),
        "min": min(measured),
        "max": max(measured),
        "unmeasured": len(values) - len(measured),
    }


def format_spread(spread: dict[str, Any]) -> str:
    """A ratio's median and range over the rounds, as printed here and by run_all.py."""
    if spread["median"] is None:
        return "not measurable: legitimate sign-ins refused"
    text = f"{spread['median']:.2f}x ({spread['min']:.2f}-{spread['max']:.2f}x)"
    if spread["unmeasured"]:
        text += f", {spread['unmeasured']} round(s) with refusals"
    return text


def overload(workdir: Path, duration: float, rounds: int = 3) -> dict[str, Any]:
    """The flood figures over ``rounds`` rounds, each on a fresh server (the idle p99 and
    the flood's tail move from run to run: one round is not a figure). Medians, with the
    range, for the flood, for its password checks alone (the floor), for the attack
    alone and for the spray."""
    per_round = []
    for i in range(rounds):
        result = overload_round(workdir / f"round{i + 1}", duration, burst=i == 0)
        per_round.append(result)
        _print_round(i + 1, result)
    summary = _summarize(per_round)
    _print_summary(summary, rounds)
    return summary


def _print_round(number: int, result: dict[str, Any]) -> None:
    print(
        f"  round {number}: flood {result['flood_rps']:.0f} req/s "
        f"({result['flood_checks_per_s']:.2f} password checks/s) {result['flood_statuses']}"
        f"; spray {result['spray_rps']:.0f} req/s {result['spray_statuses']}"
    )
    print(
        f"    /auth/me p99: idle {result['me_p99_idle_ms']:.1f} ms; "
        + "; ".join(
            f"{state} {result[state]['me_p99_ms']:.1f} ms = {result[state]['me_ratio']:.2f}x"
            for state in LOADED
        )
    )
    print(
        f"    legitimate login p50: idle {result['login_p50_idle_ms']:.0f} ms; "
        + "; ".join(
            f"{state} {result[state]['login_p50_ms']:.0f} ms {result[state]['legit_statuses']}"
            for state in LOADED
        )
    )
    for state in STATES:
        print(f"    cores used, {state:6s}: {format_cpu(result['cpu'][state])}")


def _summarize(per_round: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians and ranges over the rounds; the burst is the first round's."""
    summary: dict[str, Any] = {"rounds": per_round}
    for state in LOADED:
        summary[state] = {
            "me_ratio": _spread([r[state]["me_ratio"] for r in per_round]),
            "login_ratio": _spread([r[state]["login_ratio"] for r in per_round]),
        }
    summary["cpu"] = {
        state: {
            role: statistics.median(r["cpu"][state][role] for r in per_round) for role in CPU_ROLES
        }
        for state in STATES
    }

    def median(get: Callable[[dict[str, Any]], float]) -> float:
        return statistics.median(get(r) for r in per_round)

    first = per_round[0]
    summary.update(
        {
            "flood_rps": median(lambda r: r["flood_rps"]),
            "me_p99_idle_ms": median(lambda r: r["me_p99_idle_ms"]),
            "me_p99_flood_ms": median(lambda r: r["flood"]["me_p99_ms"]),
            "login_p50_idle_ms": median(lambda r: r["login_p50_idle_ms"]),
            "login_p50_flood_ms": median(lambda r: r["flood"]["login_p50_ms"]),
            "burst_statuses": first.get("burst_statuses"),
            "burst_p50_ms": first.get("burst_p50_ms"),
        }
    )
    return summary


STATE_LABELS = {
    "flood": "the flood",
    "floor": "its password checks alone (floor)",
    "attack": "the attack alone",
    "spray": "a spray of guesses",
}


def _print_summary(summary: dict[str, Any], rounds: int) -> None:
    print(f"  over {rounds} rounds, median (range) of the ratio to idle:")
    for state in LOADED:
        me, login = (format_spread(summary[state][key]) for key in ("me_ratio", "login_ratio"))
        print(
            f"    {STATE_LABELS[state]:34s} /auth/me p99 {me} (goal <= 2);"
            f" legitimate login p50 {login} (goal <= 1.3)"
        )
    print("  cores used, median over the rounds:")
    for state in STATES:
        print(f"    {state:6s}: {format_cpu(summary['cpu'][state])}")
    print(
        f"  burst of 16 concurrent logins for 5 s: statuses {summary['burst_statuses']}, "
        f"p50 {summary['burst_p50_ms'] or 0:.0f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load")
    parser.add_argument(
        "--login-duration", type=float, default=30.0, help="seconds per figure 2 login load"
    )
    parser.add_argument("--limit-seconds", type=float, default=4.0)
    parser.add_argument("--targets", default="studio-auth,fastapi-users,django")
    parser.add_argument("--skip-overload", action="store_true")
    parser.add_argument(
        "--overload-rounds", type=int, default=3, help="flood rounds, each on a fresh server"
    )
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    os.environ.setdefault("STUDIO_AUTH_ENV", "development")
    ensure_wrk()
    results: dict[str, Any] = {"cpus": os.cpu_count(), "targets": {}}
    for name in args.targets.split(","):
        with tempfile.TemporaryDirectory() as tmp, target_server(name, Path(tmp)) as target:
            print(f"\n[{target.name}] {target.url}")
            target.sign_in(USERS[0])
            figures = {
                "login": login_throughput(target, args.login_duration, args.limit_seconds),
                "auth_vs_bare": auth_vs_bare(target, args.duration),
                "bare_p99": bare_p99_under_logins(target, args.duration),
            }
            results["targets"][target.name] = figures
    if not args.skip_overload:
        print("\n[overload] studio-auth")
        with tempfile.TemporaryDirectory() as tmp:
            results["overload"] = overload(Path(tmp), args.duration, args.overload_rounds)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
