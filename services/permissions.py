"""The Permissions Service: the studio's role policy, the checks, and supervised elevation.

The policy is data (``services/policy.toml``, or the file named by
``STUDIO_AUTH_POLICY_FILE``): ``resource.action -> role -> effect``. Anything the policy
does not list is denied, and so is every input the checks cannot make sense of (an unknown
role, a malformed user, a missing owner): the checks fail closed.

Supervised elevation: an admin approves, with their own credentials, on an assistant's
session. The approval is stored on the session row (``elevated_by``, ``elevated_until``), so
every process sees it, and it ends when it expires or the session is revoked or logged out.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, aliased

from data.db.base import as_db_id
from data.models import AuthSession, Role, User
from services.audit import add_event, commit_event, escape_text
from services.auth import UserInfo, check_credentials
from services.errors import InvalidRequest, NotFound, PermissionDenied, Unavailable
from studio_auth.clock import now
from studio_auth.settings import get_settings

if TYPE_CHECKING:  # services.sessions is not needed at run time here
    from services.sessions import SessionInfo

logger = logging.getLogger("studio_auth.permissions")

MAX_ELEVATION_MINUTES = 30
_NAME = re.compile(r"[a-z][a-z0-9_]{0,47}")
_ACTION_MAX_LENGTH = 100


class Effect(StrEnum):
    ALLOW = "allow"
    OWN = "own"
    SUPERVISED = "supervised"
    DENY = "deny"


# Which roles an effect can apply to: only artists have an artist_id to own things by, and
# elevation is the assistants' way to reach the sensitive front-desk actions.
_EFFECT_ROLES: dict[Effect, frozenset[Role]] = {
    Effect.ALLOW: frozenset(Role),
    Effect.DENY: frozenset(Role),
    Effect.OWN: frozenset({Role.ARTIST}),
    Effect.SUPERVISED: frozenset({Role.ASSISTANT}),
}


class PolicyError(ValueError):
    """The policy file is unreadable or says something the checks cannot enforce."""


@dataclass(frozen=True)
class Policy:
    """A validated policy: ``rules[action][role]``; a missing entry means deny."""

    rules: Mapping[str, Mapping[Role, Effect]]
    source: str

    def effect(self, role: Role, action: str) -> Effect:
        return self.rules.get(action, {}).get(role, Effect.DENY)

    @property
    def actions(self) -> list[str]:
        return sorted(self.rules)


@dataclass(frozen=True)
class Decision:
    """The outcome of a check: ``approved_by`` names the admin whose approval allowed it."""

    allowed: bool
    action: str
    effect: Effect
    reason: str
    approved_by: int | None = field(default=None)


def parse_policy(data: Mapping[str, Any], source: str) -> Policy:
    """Validate a parsed policy document; PolicyError says what is wrong and where."""
    version = data.get("version", 1)
    if version != 1:
        raise PolicyError(f"{source}: unsupported policy version {version!r} (expected 1)")
    rules: dict[str, dict[Role, Effect]] = {}
    for resource, actions in data.items():
        if resource == "version":
            continue
        if not _NAME.fullmatch(resource) or not isinstance(actions, Mapping):
            raise PolicyError(f"{source}: [{resource}] must be a table named in lower_case")
        for action, entry in actions.items():
            name = f"{resource}.{action}"
            if not _NAME.fullmatch(action) or not isinstance(entry, Mapping):
                raise PolicyError(f"{source}: {name} must be a table of role = effect")
            rules[name] = _parse_rule(entry, f"{source}: {name}")
    return Policy(rules=rules, source=source)


def _parse_rule(entry: Mapping[str, Any], where: str) -> dict[Role, Effect]:
    """One action's ``role = effect`` table; PolicyError, prefixed with ``where``, for an
    unknown role or effect, or an effect that cannot apply to the role."""
    rule: dict[Role, Effect] = {}
    for role_name, effect_name in entry.items():
        try:
            role = Role(role_name)
        except ValueError:
            roles = ", ".join(r.value for r in Role)
            raise PolicyError(f"{where}: unknown role {role_name!r} (use {roles})") from None
        try:
            effect = Effect(effect_name)
        except ValueError:
            effects = ", ".join(e.value for e in Effect)
            raise PolicyError(
                f"{where}: unknown effect {effect_name!r} for {role} (use {effects})"
            ) from None
        if role not in _EFFECT_ROLES[effect]:
            allowed = ", ".join(sorted(r.value for r in _EFFECT_ROLES[effect]))
            raise PolicyError(
                f"{where}: effect {effect} cannot apply to {role} (only to {allowed})"
            )
        rule[role] = effect
    return rule


def load_policy(path: str | Path | None = None) -> Policy:
    """Read and validate a policy file; the packaged default when ``path`` is None."""
    try:
        if path is None:
            source = "services/policy.toml"
            text = resources.files("services").joinpath("policy.toml").read_text("utf-8")
        else:
            source = str(path)
            text = Path(path).read_text("utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"cannot read the policy {source}: {exc}") from None
    return parse_policy(data, source)


@lru_cache(maxsize=4)
def _cached_policy(path: str | None) -> Policy:
    return load_policy(path)


def get_policy() -> Policy:
    """The policy in force (``STUDIO_AUTH_POLICY_FILE`` or the default), loaded once."""
    return _cached_policy(get_settings().policy_file)


def reset_policy() -> None:
    """Forget the loaded policy so the next check reads the file again."""
    _cached_policy.cache_clear()


def _role_of(user: UserInfo) -> Role | None:
    # Callers outside mypy can pass anything: what is not a known role is no role.
    role = user.get("role") if isinstance(user, Mapping) else None
    if not isinstance(role, str):
        return None
    try:
        return Role(role)
    except ValueError:
        return None


def _active_approver(user: UserInfo, session: SessionInfo | None) -> int | None:
    """The admin whose approval is active on ``user``'s ``session``, as the session dict
    (from ``resolve_session``) says; None when there is none or anything is malformed.
    ``require`` re-checks the stored row, since the dict may be older than a revocation."""
    if not isinstance(session, Mapping):
        return None
    approver = as_db_id(session.get("elevated_by"))
    until = session.get("elevated_until")
    if (
        approver is not None
        and as_db_id(session.get("session_id")) is not None
        and as_db_id(user.get("id")) is not None
        and session.get("id") == user.get("id")
        and isinstance(until, datetime)
        and until > now()
    ):
        return approver
    return None


def decide(
    user: UserInfo,
    action: str,
    *,
    owner_artist_id: int | None = None,
    session: SessionInfo | None = None,
) -> Decision:
    """The policy's answer for ``user`` (an ``authenticate()`` dict) and ``action``,
    without touching the database. Supervised actions are judged from ``session``, the
    dict ``resolve_session`` returns. Anything malformed is denied."""
    name = escape_text(action, _ACTION_MAX_LENGTH) if isinstance(action, str) else repr(action)
    role = _role_of(user)
    if role is None:
        return Decision(False, name, Effect.DENY, "unknown role")
    policy = get_policy()
    if not isinstance(action, str) or action not in policy.rules:
        return Decision(False, name, Effect.DENY, "action not in the policy")
    effect = policy.effect(role, action)
    if effect is Effect.ALLOW:
        return Decision(True, action, effect, "allowed")
    if effect is Effect.OWN:
        mine, theirs = as_db_id(user.get("artist_id")), as_db_id(owner_artist_id)
        if mine is not None and mine == theirs:
            return Decision(True, action, effect, "own")
        return Decision(False, action, effect, "only for the artist's own records")
    if effect is Effect.SUPERVISED:
        approver = _active_approver(user, session)
        if approver is not None:
            return Decision(True, action, effect, "approved", approver)
        return Decision(False, action, effect, "needs an admin's approval")
    return Decision(False, action, effect, f"not permitted to {role}")


def can(
    user: UserInfo,
    action: str,
    *,
    owner_artist_id: int | None = None,
    session: SessionInfo | None = None,
) -> bool:
    """True if the policy allows ``action`` to ``user``; False for anything else."""
    return decide(user, action, owner_artist_id=owner_artist_id, session=session).allowed


def _stored_approver(db: Session, user_id: int, session_id: int) -> int | None:
    """The approving admin of a live, elevated session of ``user_id``, read from the
    database: the approver must still be an active admin."""
    at = now()
    approver = aliased(User)
    return db.scalar(
        select(AuthSession.elevated_by)
        .join(approver, approver.id == AuthSession.elevated_by)
        .where(
            AuthSession.id == session_id,
            AuthSession.user_id == user_id,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > at,
            AuthSession.elevated_until > at,
            approver.is_active.is_(True),
            approver.role == Role.ADMIN,
        )
    )


def _deny(db: Session, user: UserInfo, decision: Decision, session_id: object) -> PermissionDenied:
    """Record a denial in a transaction of its own; the error to raise."""
    info: Mapping[str, Any] = user if isinstance(user, Mapping) else {}
    try:
        commit_event(
            db,
            "permission_denied",
            "failure",
            user_id=as_db_id(info.get("id")),
            username=info.get("username"),
            session_id=as_db_id(session_id),
            detail={
                "action": decision.action,
                "reason": decision.reason,
                "role": escape_text(str(info.get("role")), 32),
            },
        )
    except SQLAlchemyError:
        # The denial stands even if it cannot be written down.
        logger.exception("could not record a permission denial")
    return PermissionDenied(decision.action, decision.reason)


def require(
    db: Session,
    user: UserInfo,
    action: str,
    *,
    owner_artist_id: int | None = None,
    session: SessionInfo | None = None,
) -> Decision:
    """Return the Decision if ``action`` is allowed, else raise PermissionDenied.

    A denial is recorded (``permission_denied``) in a transaction of its own. A supervised
    action is allowed only if the stored session row still carries a live approval by an
    active admin; that use is recorded (``elevation_used``, naming the admin) in the
    caller's transaction.
    Raises Unavailable, denying, if the approval cannot be read.
    """
    decision = decide(user, action, owner_artist_id=owner_artist_id, session=session)
    if decision.allowed and decision.effect is Effect.SUPERVISED:
        decision = _confirm_approval(db, user, session, decision)
    if not decision.allowed:
        session_id = session.get("session_id") if isinstance(session, Mapping) else None
        raise _deny(db, user, decision, session_id)
    return decision


def _confirm_approval(
    db: Session, user: UserInfo, session: SessionInfo | None, decision: Decision
) -> Decision:
    """``decision``, allowed by the approval on the session dict, as the stored session
    row has it now; the approval's use is recorded in the caller's transaction."""
    ended = Decision(False, decision.action, decision.effect, "approval has ended")
    if session is None:  # decide() allows a supervised action only with a session
        return ended
    user_id, session_id = user["id"], session["session_id"]
    try:
        approver = _stored_approver(db, user_id, session_id)
    except SQLAlchemyError:
        raise Unavailable("approval could not be checked; access denied") from None
    if approver is None:
        return ended
    add_event(
        db,
        "elevation_used",
        user_id=user_id,
        actor_id=approver,
        username=user.get("username"),
        session_id=session_id,
        detail={"action": decision.action, "approved_by": approver},
    )
    return Decision(True, decision.action, decision.effect, "approved", approver)


def effective_permissions(user: UserInfo, *, session: SessionInfo | None = None) -> dict[str, str]:
    """Every action the user may take, for user interfaces: ``action -> "allow"``,
    ``"own"`` (own records only) or ``"supervised"`` (needs an admin's approval; shown as
    ``"allow"`` while one is active). Denied actions are left out."""
    role = _role_of(user)
    if role is None:
        return {}
    elevated = _active_approver(user, session) is not None
    policy = get_policy()
    result: dict[str, str] = {}
    for action in policy.actions:
        effect = policy.effect(role, action)
        if effect is Effect.DENY:
            continue
        if effect is Effect.SUPERVISED and elevated:
            effect = Effect.ALLOW
        result[action] = effect.value
    return result


def _elevation_minutes(minutes: object) -> int:
    if minutes is None:
        return get_settings().elevation_minutes
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise InvalidRequest("approval minutes must be a whole number")
    if not 1 <= minutes <= MAX_ELEVATION_MINUTES:
        raise InvalidRequest(f"an approval lasts 1 to {MAX_ELEVATION_MINUTES} minutes")
    return minutes


def grant_elevation(
    db: Session,
    session_id: int,
    admin_username: str,
    admin_password: str,
    *,
    minutes: int | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> datetime:
    """An admin approves supervised actions on an assistant's session; returns when the
    approval ends (``elevation_minutes`` by default, at most 30).

    The admin's credentials go through ``check_credentials``, so they are throttled and
    audited: raises InvalidCredentials (also for an inactive admin) or Throttled.
    PermissionDenied if the credentials are not an admin's; NotFound if the session is not
    live; InvalidRequest if it is not an active assistant's. Written in one UPDATE in the
    caller's transaction (flushed, not committed) and audited as ``elevation_granted``.
    """
    length = _elevation_minutes(minutes)
    target = as_db_id(session_id)
    if target is None:
        raise NotFound("no such session")
    approver = check_credentials(db, admin_username, admin_password, ip=ip, user_agent=user_agent)
    if approver["role"] != Role.ADMIN.value:
        denied = Decision(False, "elevation.approve", Effect.DENY, "only an admin can approve")
        raise _deny(db, approver, denied, target)
    at = now()
    until = at + timedelta(minutes=length)
    assistant_id = _store_approval(db, target, approver["id"], at, until)
    add_event(
        db,
        "elevation_granted",
        user_id=assistant_id,
        actor_id=approver["id"],
        username=approver["username"],
        ip=ip,
        session_id=target,
        detail={"approved_by": approver["id"], "until": until.isoformat(), "minutes": length},
    )
    return until


def _store_approval(
    db: Session, session_id: int, approver_id: int, at: datetime, until: datetime
) -> int:
    """Put the approval on the session in one UPDATE, only if the session is live at
    ``at`` and its user an active assistant; returns that user's id. NotFound for a
    session that is not live, InvalidRequest for anyone else's."""
    assistants = select(User.id).where(User.role == Role.ASSISTANT, User.is_active.is_(True))
    granted = db.execute(
        update(AuthSession)
        .where(
            AuthSession.id == session_id,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > at,
            AuthSession.user_id.in_(assistants),
        )
        .values(elevated_by=approver_id, elevated_until=until)
        .returning(AuthSession.user_id)
        .execution_options(synchronize_session="fetch")
    ).scalar_one_or_none()
    if granted is None:
        row = db.get(AuthSession, session_id)
        if row is None or row.revoked_at is not None or row.expires_at <= at:
            raise NotFound("no live session with that id")
        raise InvalidRequest("approval applies to an active assistant's session only")
    return granted


def end_elevation(db: Session, session_id: int, *, actor_id: int | None = None) -> bool:
    """End an approval before it expires. True if one was active. Caller's transaction."""
    target = as_db_id(session_id)
    if target is None:
        return False
    at = now()
    ended = db.execute(
        update(AuthSession)
        .where(AuthSession.id == target, AuthSession.elevated_until > at)
        .values(elevated_by=None, elevated_until=None)
        .returning(AuthSession.user_id)
        .execution_options(synchronize_session="fetch")
    ).scalar_one_or_none()
    if ended is None:
        return False
    add_event(db, "elevation_ended", user_id=ended, actor_id=actor_id, session_id=target)
    return True
