"""A real ``studio-auth serve`` on 127.0.0.1 and Debian's Chromium driven by Playwright.

Outside CI, the browser tests skip (saying why) when /usr/bin/chromium or Playwright is
missing; in CI (``STUDIO_AUTH_REQUIRE_BROWSER=1``, set by .ci/run) that is a failure.
Screenshots of every page, at 1280 and 390 px wide, go to ``STUDIO_AUTH_SCREENSHOTS``
(default: the test's temporary directory); ``docs/images`` is regenerated with
``STUDIO_AUTH_SCREENSHOTS=docs/images .venv/bin/python -m pytest tests/browser``.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.web.processes import free_port, serve

CHROMIUM = Path("/usr/bin/chromium")
STUDIO_NAME = "Ink & Iron Studio"
WIDTHS = {"laptop": (1280, 800), "phone": (390, 844)}
# Each step waits this long at most (milliseconds): a page that never comes fails fast.
STEP_TIMEOUT_MS = 15_000


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is not installed (apt-get install -y chromium)"
    try:
        import axe_playwright_python  # noqa: F401
        import playwright  # noqa: F401
    except ImportError as exc:
        return f"Playwright or axe-playwright-python is not installed ({exc.name})"
    return None


@pytest.fixture(scope="session", autouse=True)
def browser_installed() -> None:
    missing = _missing()
    if missing is None:
        return
    if os.environ.get("STUDIO_AUTH_REQUIRE_BROWSER"):
        pytest.fail(f"the browser tests are required here: {missing}")
    pytest.skip(f"no browser: {missing}")


@dataclass
class Service:
    url: str
    first_password: str
    database_url: str
    log: Path


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """``studio-auth serve`` on a free port with a fresh SQLite file: the first start
    prints the admin's one-time password, read here from its output."""
    home = tmp_path_factory.mktemp("console-service")
    database_url = f"sqlite:///{home / 'console.db'}"
    env = {
        "DATABASE_URL": database_url,
        "STUDIO_AUTH_ENV": "test",
        "STUDIO_AUTH_BCRYPT_ROUNDS": "4",
        "STUDIO_AUTH_STUDIO_NAME": STUDIO_NAME,
    }
    log = home / "serve.log"
    with serve(env, log, cwd=home) as (url, _process):
        printed = re.search(r"one-time password[^:]*: (\S+)", log.read_text())
        assert printed, log.read_text()
        yield Service(url, printed.group(1), database_url, log)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    # Module-scoped: Playwright's sync API runs an event loop on this thread while it is
    # open, so it must be closed before other tests call asyncio.run().
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # As root (CI, containers) Chromium needs --no-sandbox; the pages are our own.
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("STUDIO_AUTH_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Origin:
    url: str
    root: Path


@pytest.fixture(scope="session")
def other_origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Origin]:
    """A second local origin (same host, another port): a plain static file server for
    pages that post to the console from outside it."""
    root = tmp_path_factory.mktemp("other-origin")
    handler = partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Origin(f"http://127.0.0.1:{server.server_address[1]}", root)
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return
