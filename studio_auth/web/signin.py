"""Password checks over HTTP: the order in which a sign-in uses the two pools.

A sign-in's attempt is counted by the throttle on a small pool of its own, then its
password is checked on the password pool at the priority admission gives it; an attempt
the password pool refuses gets its count back. A signed-in user's own password work (a
password change, an elevation) goes straight to the password pool at HIGH priority.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from functools import partial

from sqlalchemy.orm import Session, sessionmaker

from data.models import User
from services import permissions, sessions, throttle, users
from services.auth import UserInfo, check_throttle, user_info
from services.errors import Unavailable
from services.throttle import Attempt
from studio_auth.web.admission import PasswordPool, priority_of_address, priority_of_attempt
from studio_auth.web.deps import SignInContext
from studio_auth.web.errors import Overloaded
from studio_auth.web.pool import Priority

# Every attempt is counted, and every refund made, at one priority: in order of arrival.
COUNTING_PRIORITY = Priority.NORMAL


async def sign_in(ctx: SignInContext, username: str, password: str) -> sessions.LoginResult:
    """Count the attempt, check the password and issue a session (``sessions.login``).

    Raises Overloaded when the password pool has no slot for the attempt's priority
    (before anything is counted, when it can tell then), otherwise what
    ``check_throttle`` and ``sessions.login`` raise.
    """
    factory, ip, agent = ctx.session_factory, ctx.ip, ctx.user_agent
    # A pool too full for this address's priority refuses before anything is counted, so
    # a 503 never costs the user an attempt (a race with another request, or a count that
    # lowers the priority, can still end in 503). Then the throttle decides on its own
    # small pool, off the password pool: a flood of throttled attempts costs no bcrypt
    # and takes no slot that a legitimate sign-in could have had.
    address_priority = priority_of_address(ctx.known_addresses, ip)
    ctx.password_pool.check_capacity(address_priority)

    def count() -> Attempt:
        with factory() as db:
            return check_throttle(db, username, ip=ip, user_agent=agent)

    attempt = await ctx.throttle_pool.run(count, COUNTING_PRIORITY)

    def check() -> sessions.LoginResult:
        with factory() as db:
            return sessions.login(db, username, password, ip=ip, user_agent=agent, attempt=attempt)

    try:
        result = await ctx.password_pool.run(check, priority_of_attempt(attempt, address_priority))
    except Overloaded:
        # Counted, but no password was checked: give back what the count took, so that
        # retries refused for want of a slot cannot lock the name out. If even that finds
        # no slot, the count stays (counting too much is the safe side).
        with contextlib.suppress(Overloaded, Unavailable):
            refund = partial(_refund_attempt, factory, attempt)
            await ctx.throttle_pool.run(refund, COUNTING_PRIORITY)
        raise
    ctx.known_addresses.add(ip)
    return result


def _refund_attempt(factory: sessionmaker[Session], attempt: Attempt) -> None:
    with factory() as db:
        throttle.refund_attempt(db, attempt)


async def change_password(
    pool: PasswordPool,
    factory: sessionmaker[Session],
    *,
    user_id: int,
    session_id: int,
    current: str,
    new: str,
) -> tuple[sessions.IssuedSession, UserInfo]:
    """``users.change_password`` for a signed-in user, committed: the session that replaces
    ``session_id`` and the user as they are now. Raises what it raises, or Overloaded."""

    def change() -> tuple[sessions.IssuedSession, UserInfo]:
        with factory() as db:
            issued = users.change_password(db, user_id, current, new, session_id=session_id)
            assert issued is not None  # a session id was given, so a new session exists
            user = db.get(User, user_id)
            assert user is not None
            fresh = user_info(user)
            db.commit()
        return issued, fresh

    return await pool.run(change, Priority.HIGH)


async def grant_elevation(
    ctx: SignInContext, session_id: int, username: str, password: str, minutes: int | None
) -> datetime:
    """``permissions.grant_elevation`` for a signed-in assistant's session, committed:
    when the approval ends. Raises what it raises, or Overloaded."""
    factory, ip, agent = ctx.session_factory, ctx.ip, ctx.user_agent

    def grant() -> datetime:
        with factory() as db:
            until = permissions.grant_elevation(
                db, session_id, username, password, minutes=minutes, ip=ip, user_agent=agent
            )
            db.commit()
        return until

    return await ctx.password_pool.run(grant, Priority.HIGH)
