"""The console's whole story in Chromium, as a studio lives it.

The first admin signs in with the password ``serve`` printed and must change it; adds an
assistant, who signs in in a second browser and changes their one-time password too; an
artist cannot open Staff; an admin approves the assistant's supervised actions on the
assistant's screen; the Staff actions confirm first and say what they did; the audit
trail shows it all and exports it; a form posted from a second local origin is refused;
signing out ends the server-side session. Every page is checked with axe-core and
photographed at 1280 and 390 px.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import STEP_TIMEOUT_MS, STUDIO_NAME, WIDTHS, Origin, Service

pytestmark = pytest.mark.slow
expect.set_options(timeout=STEP_TIMEOUT_MS)

ADMIN_PASSWORD = "owls drink tea at the night market"
ASSISTANT_PASSWORD = "seven lanterns over a quiet harbour"
ARTIST_PASSWORD = "the blue heron paints in silence"
SESSION_COOKIE = "__Host-studio-auth-session"


class Pages:
    """Checks and photographs each page a test visits."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.seen: list[str] = []

    def check(self, page: Any, name: str) -> None:
        """No serious or critical axe-core violation, then a full-page screenshot at each
        width (the page is left at laptop width)."""
        from axe_playwright_python.sync_playwright import Axe

        results = Axe().run(page)
        bad = [
            f"{v['id']} ({v['impact']}): {v['help']}"
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert not bad, f"{name}: {bad}"
        for label, (width, height) in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=str(self.folder / f"{name}-{label}.png"), full_page=True)
        page.set_viewport_size({"width": WIDTHS["laptop"][0], "height": WIDTHS["laptop"][1]})
        self.seen.append(name)


def _new_page(chromium: Any) -> Any:
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    return context.new_page()


def _sign_in(page: Any, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def _change_required_password(page: Any, current: str, new: str) -> None:
    assert page.url.endswith("/required/password")
    page.get_by_label("Current password").fill(current)
    page.get_by_label("New password").fill(new)
    page.get_by_role("button", name="Change password").click()
    page.wait_for_url("**/account")
    expect(page.locator(".notice")).to_contain_text("Your password is changed.")


def _one_time_password(page: Any) -> str:
    text = page.locator("#one-time-password").inner_text().strip()
    assert len(text) >= 20
    return text


def _add_artist_record(service: Service, name: str) -> None:
    """Artist records come from the studio's own software; here, the CLI."""
    env = {
        **os.environ,
        "DATABASE_URL": service.database_url,
        "STUDIO_AUTH_ENV": "test",
        "STUDIO_AUTH_BCRYPT_ROUNDS": "4",
    }
    subprocess.run(
        [sys.executable, "-c", "from studio_auth.cli import main; main()", "artists", "add", name],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )


def _add_member(page: Any, url: str, username: str, role: str, artist: str | None = None) -> str:
    page.goto(f"{url}/staff")
    page.get_by_role("link", name="Add a member").click()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Role").select_option(role)
    if artist is not None:
        page.get_by_label("Artist").select_option(label=artist)
    page.get_by_role("button", name="Add member").click()
    return _one_time_password(page)


def test_the_studio_console_story(
    service: Service, chromium: Any, screenshots: Path, other_origin: Origin
) -> None:
    url = service.url
    pages = Pages(screenshots)
    admin = _new_page(chromium)

    # The first admin signs in with the printed one-time password, and must change it.
    admin.goto(url)
    assert admin.url.endswith("/sign-in")
    assert STUDIO_NAME in admin.locator("header").inner_text()
    pages.check(admin, "sign-in")
    _sign_in(admin, url, "admin", "not the password")
    expect(admin.locator(".error-summary")).to_contain_text(
        "The username or password is not right."
    )
    pages.check(admin, "sign-in-error")
    _sign_in(admin, url, "admin", service.first_password)
    admin.wait_for_url("**/required/password")
    pages.check(admin, "required-password")
    _change_required_password(admin, service.first_password, ADMIN_PASSWORD)
    # The cookie is the HttpOnly __Host- one; page scripts cannot read it.
    cookie = next(c for c in admin.context.cookies() if c["name"] == SESSION_COOKIE)
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"
    assert admin.evaluate("document.cookie") == ""
    pages.check(admin, "account")

    # The admin adds an assistant; the one-time password is shown once.
    assistant_otp = _add_member(admin, url, "mara", "assistant")
    pages.check(admin, "staff-password")
    admin.get_by_role("link", name="Done").click()
    expect(admin.locator("h1")).to_have_text("mara")

    # An artist's account needs the artist's record.
    _add_artist_record(service, "Rin Tanaka")
    artist_otp = _add_member(admin, url, "rin", "artist", artist="Rin Tanaka")

    # The assistant signs in in a second browser, changes the one-time password.
    assistant = _new_page(chromium)
    _sign_in(assistant, url, "mara", assistant_otp)
    assistant.wait_for_url("**/required/password")
    _change_required_password(assistant, assistant_otp, ASSISTANT_PASSWORD)
    nav = assistant.get_by_role("navigation", name="Main").inner_text()
    assert "Staff" not in nav and "Audit" not in nav and "Approvals" in nav

    # An admin approves the assistant's supervised actions on the assistant's screen.
    assistant.get_by_role("link", name="Approvals").click()
    expect(assistant.locator("main")).to_contain_text("transactions.refund")
    pages.check(assistant, "approvals")
    assistant.get_by_label("Username").fill("admin")
    assistant.get_by_label("Password", exact=True).fill(ADMIN_PASSWORD)
    assistant.get_by_role("button", name="Approve").click()
    expect(assistant.locator("main")).to_contain_text("Approved until")
    pages.check(assistant, "approvals-approved")

    # An artist cannot open Staff.
    artist = _new_page(chromium)
    _sign_in(artist, url, "rin", artist_otp)
    artist.wait_for_url("**/required/password")
    _change_required_password(artist, artist_otp, ARTIST_PASSWORD)
    assert "Staff" not in artist.get_by_role("navigation", name="Main").inner_text()
    denied = artist.goto(f"{url}/staff")
    assert denied is not None and denied.status == 403
    expect(artist.locator("h1")).to_have_text("No access")
    pages.check(artist, "no-access")

    # Staff: search and filter, then a destructive action confirms first.
    admin.goto(f"{url}/staff")
    pages.check(admin, "staff")
    admin.get_by_label("Role").select_option("artist")
    admin.get_by_role("button", name="Filter").click()
    admin.wait_for_url("**/staff?*role=artist*")
    rows = admin.locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("rin")
    rows.first.get_by_role("link", name="rin").click()
    pages.check(admin, "staff-member")
    admin.get_by_role("link", name="End sessions").click()
    expect(admin.locator("h1")).to_have_text("End all of rin's sessions?")
    pages.check(admin, "staff-confirm")
    admin.get_by_role("button", name="End sessions").click()
    expect(admin.locator(".notice")).to_contain_text("Every session of the account has ended.")
    artist.goto(f"{url}/account")
    assert artist.url.endswith("/sign-in")  # rin's browser is signed out

    admin.get_by_role("link", name="Deactivate").click()
    admin.get_by_role("button", name="Deactivate").click()
    expect(admin.locator(".notice")).to_contain_text("The account is deactivated.")
    expect(admin.locator("dl")).to_contain_text("Deactivated")
    admin.get_by_role("link", name="Activate").click()
    admin.get_by_role("button", name="Activate").click()
    expect(admin.locator(".notice")).to_contain_text("The account is active again.")

    # The audit trail: newest first, filtered by user, and exported as CSV.
    admin.get_by_role("link", name="Audit").click()
    admin.wait_for_url("**/audit-trail")
    expect(admin.locator("tbody tr").first.locator("td").nth(1)).to_have_text("user_activated")
    pages.check(admin, "audit")
    admin.get_by_label("User").fill("mara")
    admin.get_by_label("Event type").select_option("elevation_granted")
    admin.get_by_role("button", name="Filter").click()
    admin.wait_for_url("**/audit-trail?*")
    expect(admin.locator("tbody tr")).to_have_count(1)
    with admin.expect_download() as download:
        admin.get_by_role("link", name="Download these events as CSV").click()
    exported = Path(download.value.path()).read_text()
    assert exported.startswith("id,at,event,") and "elevation_granted" in exported

    # A form posted to the console from a second local origin is refused.
    (other_origin.root / "forged.html").write_text(
        '<!doctype html><html lang="en"><title>Elsewhere</title><form method="post" '
        f'action="{url}/staff/new"><input name="username" value="mallory" aria-label="u">'
        '<input name="role" value="admin" aria-label="r"><button>Send</button></form></html>'
    )
    admin.goto(f"{other_origin.url}/forged.html")
    with admin.expect_navigation() as navigation:
        admin.get_by_role("button", name="Send").click()
    assert navigation.value is not None and navigation.value.status == 403
    expect(admin.locator("h1")).to_have_text("Request refused")
    admin.goto(f"{url}/staff?q=mallory")
    expect(admin.locator("tbody tr")).to_have_count(0)

    # Sign-out ends the server-side session: the cookie, replayed, no longer works.
    token = next(c["value"] for c in admin.context.cookies() if c["name"] == SESSION_COOKIE)
    admin.get_by_role("button", name="Sign out").click()
    admin.wait_for_url("**/sign-in")
    expect(admin.locator(".notice")).to_contain_text("You have signed out.")
    replay = httpx.get(
        f"{url}/account", cookies={SESSION_COOKIE: token}, follow_redirects=False, timeout=10
    )
    assert replay.status_code == 303 and replay.headers["location"] == "/sign-in"

    for page in (admin, assistant, artist):
        page.context.close()
