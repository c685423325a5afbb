"""The Staff pages: accounts, and what an admin does to them (``staff.manage_users``).

Every action that takes something away (deactivate, reset a password, end sessions,
change a role) is asked for with a GET that shows what will happen, and done by the
POST of that confirmation page; the next page says what was done.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from sqlalchemy import Row
from sqlalchemy.orm import Session

from data.db.base import DB_ID_MAX, as_db_id
from data.models import Role, User
from services import artists, sessions, throttle, users
from services.errors import InvalidRequest, NotFound, UserExists
from services.sessions import SessionInfo
from studio_auth.web.console.browser import set_flash, signed_in
from studio_auth.web.console.forms import Form, read_checked_form
from studio_auth.web.console.pages import ConsoleRoute, redirect, render
from studio_auth.web.deps import PasswordPoolDep, SessionFactory, require_permission
from studio_auth.web.pool import Priority

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

Admin = Annotated[SessionInfo, Depends(require_permission("staff.manage_users", signed_in))]
UserId = Annotated[int, Path(ge=1, le=DB_ID_MAX)]

ROLES = [role.value for role in Role]
ROLE_OPTIONS = [("", "Choose a role"), *((name, name.capitalize()) for name in ROLES)]
STATES = {
    "active": "Active",
    "locked": "Locked",
    "must-change": "Must change password",
    "deactivated": "Deactivated",
}


@dataclass(frozen=True)
class Member:
    """An account as the Staff pages show it: a row of ``users.list_accounts`` and when
    the throttle's lock on its name ends, if it is locked."""

    account: Row[*tuple[Any, ...]]
    locked_until: datetime | None

    @property
    def states(self) -> list[str]:
        found = []
        if not self.account.is_active:
            found.append("deactivated")
        else:
            found.append("active")
            if self.locked_until is not None:
                found.append("locked")
        if self.account.must_change_password:
            found.append("must-change")
        return found


@dataclass(frozen=True)
class Action:
    """A confirmed action on an account: what the confirmation page says."""

    title: str
    explanation: str
    button: str


ACTIONS: Mapping[str, Action] = {
    "deactivate": Action(
        "Deactivate {name}?",
        "They are signed out everywhere and cannot sign in until an admin activates the "
        "account again. Nothing else about the account changes.",
        "Deactivate",
    ),
    "activate": Action(
        "Activate {name}?",
        "They can sign in again with their password.",
        "Activate",
    ),
    "reset-password": Action(
        "Reset {name}'s password?",
        "A new one-time password is made and shown to you once. Their sessions end, and "
        "they choose a new password the next time they sign in.",
        "Reset password",
    ),
    "unlock": Action(
        "Unlock {name}?",
        "Their failed sign-in attempts are forgotten, so they can sign in at once.",
        "Unlock",
    ),
    "end-sessions": Action(
        "End all of {name}'s sessions?",
        "They are signed out on every device and browser, and can sign in again.",
        "End sessions",
    ),
}


def _members(db: Session, user_id: int | None = None) -> list[Member]:
    locks = throttle.locked_accounts(db)
    return [Member(row, locks.get(row.id)) for row in users.list_accounts(db, user_id)]


def _member(db: Session, user_id: int) -> Member:
    found = _members(db, user_id)
    if not found:
        raise NotFound(f"no user with id {user_id}")
    return found[0]


def _matches(member: Member, query: str, role: str, state: str) -> bool:
    key = query.casefold()
    account = member.account
    return (
        (not key or key in account.username_key or key in (account.artist_name or "").casefold())
        and (not role or account.role.value == role)
        and (not state or state in member.states)
    )


@router.get("/staff")
def staff_list(
    request: Request,
    admin: Admin,
    factory: SessionFactory,
    q: str = "",
    role: str = "",
    state: str = "",
) -> Response:
    query = q.strip()[:150]
    role = role if role in ROLES else ""
    state = state if state in STATES else ""
    with factory() as db:
        everyone = _members(db)
    shown = [m for m in everyone if _matches(m, query, role, state)]
    return render(
        request,
        "staff_list.html",
        {
            "members": shown,
            "total": len(everyone),
            "query": query,
            "role": role,
            "state": state,
            "roles": ROLES,
            "states": STATES,
        },
        viewer=admin,
    )


def _artist_choices(db: Session) -> list[tuple[int | str, str]]:
    """The artist select's options: none, then every artist record."""
    return [("", "No artist"), *((artist.id, artist.name) for artist in artists.list_artists(db))]


def _new_member_page(
    request: Request,
    admin: SessionInfo,
    factory: SessionFactory,
    form: Form | None,
    status_code: int = 200,
) -> Response:
    with factory() as db:
        choices = _artist_choices(db)
    values: dict[str, Any] = {
        "username": form.text("username") if form else "",
        "role": form.text("role") if form else "",
        "artist": form.text("artist") if form else "",
        "artist_options": choices,
        "role_options": ROLE_OPTIONS,
        "errors": form.errors if form else {},
    }
    return render(request, "staff_new.html", values, viewer=admin, status_code=status_code)


@router.get("/staff/new")
def new_member_form(request: Request, admin: Admin, factory: SessionFactory) -> Response:
    return _new_member_page(request, admin, factory, None)


def _role_and_artist(form: Form) -> tuple[str, int | None]:
    """The role and artist link a form asks for; errors recorded on the form."""
    role = form.require("role", "Choose a role")
    if role and role not in ROLES:
        form.fail("role", "Choose one of the roles listed")
    artist_text = form.text("artist")
    artist_id = (
        as_db_id(int(artist_text)) if artist_text.isdigit() and len(artist_text) < 12 else None
    )
    if role == Role.ARTIST.value and artist_id is None:
        form.fail("artist", "Choose the artist this account belongs to")
    return role, artist_id if role == Role.ARTIST.value else None


@router.post("/staff/new")
async def add_member(
    request: Request, admin: Admin, pool: PasswordPoolDep, factory: SessionFactory
) -> Response:
    form = await read_checked_form(request)
    username = form.require("username", "Enter a username")
    if username:
        try:
            users.validate_username(username)
        except InvalidRequest as exc:
            form.fail("username", str(exc).capitalize())
    role, artist_id = _role_and_artist(form)
    if form.errors:
        return _new_member_page(request, admin, factory, form, 422)
    password = users.generate_one_time_password()

    def create() -> User:
        with factory() as db:
            user = users.create_user(
                db,
                username,
                password,
                role,
                artist_id=artist_id,
                must_change_password=True,
                actor=admin,
            )
            db.commit()
            return user

    try:
        user = await pool.run(create, Priority.HIGH)  # a signed-in user's work
    except UserExists:
        form.fail("username", "That username is taken: choose another")
    except NotFound:
        form.fail("artist", "That artist no longer exists: choose another")
    if form.errors:
        return _new_member_page(request, admin, factory, form, 422)
    return render(
        request,
        "staff_password.html",
        {"member_name": user.username, "member_id": user.id, "password": password, "created": True},
        viewer=admin,
    )


@router.get("/staff/{user_id}")
def member(request: Request, user_id: UserId, admin: Admin, factory: SessionFactory) -> Response:
    with factory() as db:
        return _member_page(request, db, admin, _member(db, user_id))


@router.post("/staff/{user_id}/role")
async def change_role(
    request: Request, user_id: UserId, admin: Admin, factory: SessionFactory
) -> Response:
    """A role (and artist link) chosen on the member's page: first a page that says what
    the change does, whose button posts the same choice back with ``confirmed``; then the
    change."""
    form = await read_checked_form(request)
    role, artist_id = _role_and_artist(form)
    with factory() as db:
        found = _member(db, user_id)
        names = {artist.id: artist.name for artist in artists.list_artists(db)}
        if form.errors:
            return _member_page(request, db, admin, found, form, 422)
        if form.text("confirmed") != "yes":
            return render(
                request,
                "staff_role.html",
                {
                    "member": found,
                    "role": role,
                    "artist_id": artist_id,
                    "artist_name": names.get(artist_id or 0),
                },
                viewer=admin,
            )
        users.update_user(
            db,
            user_id,
            role=role,
            artist_id=artist_id if artist_id is not None else users.UNSET,
            actor=admin,
        )
        db.commit()
    response = redirect(f"/staff/{user_id}")
    set_flash(response, "role-changed")
    return response


def _action(name: str) -> Action:
    action = ACTIONS.get(name)
    if action is None:
        raise NotFound(f"no action {name!r}")
    return action


@router.get("/staff/{user_id}/{action}")
def confirm_action(
    request: Request, user_id: UserId, action: str, admin: Admin, factory: SessionFactory
) -> Response:
    chosen = _action(action)
    with factory() as db:
        found = _member(db, user_id)
    return render(
        request,
        "staff_confirm.html",
        {
            "member": found,
            "action": action,
            "title": chosen.title.format(name=found.account.username),
            "explanation": chosen.explanation,
            "button": chosen.button,
        },
        viewer=admin,
    )


@router.post("/staff/{user_id}/{action}")
async def do_action(
    request: Request,
    user_id: UserId,
    action: str,
    admin: Admin,
    pool: PasswordPoolDep,
    factory: SessionFactory,
) -> Response:
    _action(action)
    await read_checked_form(request)
    if action == "reset-password":
        password = users.generate_one_time_password()

        def reset() -> User:
            with factory() as db:
                user = users.reset_password(db, user_id, password, must_change=True, actor=admin)
                db.commit()
                return user

        user = await pool.run(reset, Priority.HIGH)  # a signed-in user's work
        return render(
            request,
            "staff_password.html",
            {
                "member_name": user.username,
                "member_id": user.id,
                "password": password,
                "created": False,
            },
            viewer=admin,
        )
    with factory() as db:
        flash = _apply(db, user_id, action, admin)
        db.commit()
    response = redirect(f"/staff/{user_id}")
    set_flash(response, flash)
    return response


def _apply(db: Session, user_id: int, action: str, admin: SessionInfo) -> str:
    """Do ``action`` (not a password reset) in ``db``'s transaction; the flash to show."""
    if action == "deactivate":
        users.deactivate(db, user_id, actor=admin)
        return "deactivated"
    if action == "activate":
        users.activate(db, user_id, actor=admin)
        return "activated"
    found = _member(db, user_id)
    if action == "unlock":
        cleared = throttle.unlock(db, found.account.username, actor_id=admin["id"])
        return "unlocked" if cleared else "not-locked"
    ended = sessions.revoke_user_sessions(
        db, user_id, reason="revoked_by_admin", actor_id=admin["id"]
    )
    return "sessions-ended" if ended else "no-sessions"


def _member_page(
    request: Request,
    db: Session,
    admin: SessionInfo,
    found: Member,
    form: Form | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "staff_member.html",
        {
            "member": found,
            "live_sessions": len(sessions.list_sessions(db, found.account.id)),
            "user": users.get_user(db, found.account.id),
            "artist_options": _artist_choices(db),
            "role_options": ROLE_OPTIONS,
            "states": STATES,
            "actions": ACTIONS,
            "is_self": found.account.id == admin["id"],
            "errors": form.errors if form else {},
        },
        viewer=admin,
        status_code=status_code,
    )
