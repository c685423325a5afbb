"""The authentication service of the specification: password hashing, verification, user
lookup and authentication, plus session-token generation.

Read-path functions return a value or None; ``check_credentials`` is the one place that
says why a sign-in failed, as an exception, for callers that need to tell the user how
long to wait.
"""

from __future__ import annotations

import functools
import secrets
from typing import Any, TypedDict

from sqlalchemy import Executable, Row, bindparam, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from data.db.base import UTCDateTime
from data.models import AuditEvent, User, normalize_username
from services import passwords, throttle
from services.audit import build_event, commit_event, insert_event, log_event
from services.errors import InvalidCredentials, Throttled, Unavailable
from studio_auth.clock import now


class UserInfo(TypedDict):
    """What ``authenticate()`` returns: a plain dict at run time, as the specification's
    examples index it (``user_data['id']``)."""

    id: int
    username: str
    role: str
    artist_id: int | None
    must_change_password: bool


def hash_password(plain: str) -> str:
    """A bcrypt hash of ``plain`` with a fresh salt, at the configured cost.

    Raises TypeError for a non-string and ValueError for an empty password, NUL bytes, lone
    surrogates or more than 4096 bytes. Never truncates.
    """
    return passwords.hash_password(plain)


def verify_password(plain: str, hashed: str) -> bool:
    """True if ``plain`` matches ``hashed``; False otherwise, for any input, without raising."""
    try:
        result = passwords.check(passwords.password_candidates(plain), hashed)
    except Exception:  # noqa: BLE001  (the contract: any error is a failed verification)
        return False
    return result is not None and result.ok


def get_user_by_username(db: Session, username: str) -> User | None:
    """The user whose normalized username matches, active or not; None if there is none
    or ``username`` cannot be a username."""
    key = normalize_username(username)
    if key is None:
        return None
    return db.scalars(select(User).where(User.username_key == key)).one_or_none()


def user_info(user: User | Row[*tuple[Any, ...]]) -> UserInfo:
    """The plain dict that ``authenticate()`` returns for ``user``: a ``User``, or a row
    that selected the same columns by name."""
    return {
        "id": user.id,
        "username": user.username,
        "role": user.role.value,
        "artist_id": user.artist_id,
        "must_change_password": user.must_change_password,
    }


def check_throttle(
    db: Session,
    username: object,
    *,
    ip: str | None = None,
    user_agent: str | None = None,
) -> throttle.Attempt:
    """Count a sign-in attempt before any password work, and decide whether it may run.

    Raises ``Throttled(retry_after)`` (audited) when the name or the address has failed
    too often, and ``Unavailable`` when the throttle store fails. A caller that runs
    password checks elsewhere (on a worker pool, say) calls this first and passes the
    attempt on, so throttled attempts never wait for a worker; everyone else lets
    ``check_credentials`` call it.
    """
    # Counted before the name is looked up, so known and unknown names take the same path,
    # and before bcrypt, so parallel guesses cannot all slip in ahead of the count.
    attempt = throttle.count_attempt(db, username, ip=ip, user_agent=user_agent)
    if not attempt.allowed:
        raise Throttled(attempt.retry_after)
    return attempt


def check_credentials(
    db: Session,
    username: str,
    password: str,
    *,
    ip: str | None = None,
    user_agent: str | None = None,
    attempt: throttle.Attempt | None = None,
) -> UserInfo:
    """Authenticate or raise.

    Raises ``Throttled(retry_after)`` when the name or the address has failed too often
    (no password is checked), ``InvalidCredentials`` for every other failure, and
    ``Unavailable`` when the throttle store or the audit trail cannot be written: sign-in
    is then refused, never run unthrottled. The attempt is counted, and a failure
    recorded, apart from the caller's transaction. On success ``last_login`` is set (and
    an outdated hash upgraded) in the caller's transaction, flushed but not committed.
    ``attempt`` is the result of an earlier ``check_throttle`` for the same name and
    address (ValueError if it is for another name); without it the attempt is counted
    here.
    """
    # The statement that counted the attempt also read the account. Unless the caller
    # has a transaction open (whose own changes the check must see), that read serves:
    # it is committed data, and the stamp's guard refuses a sign-in if the account
    # changed since (an attempt counted before queueing for the password pool).
    counted_read = not db.in_transaction()
    if attempt is None:
        attempt = check_throttle(db, username, ip=ip, user_agent=user_agent)
    elif attempt.user_key != throttle.user_key(username):
        raise ValueError("the attempt was counted for another username")
    agent = {"user_agent": user_agent} if user_agent else {}
    try:
        candidates = passwords.password_candidates(password)
    except (TypeError, ValueError):
        candidates = None
    account = None
    if candidates:
        account = attempt.account if counted_read else _find_account(db, username)
    result = passwords.check(candidates, account.password_hash) if account and candidates else None
    if result is None and candidates:
        # No account, or an unusable stored hash: check against a dummy hash anyway so
        # that every failure costs one real bcrypt check and response times do not
        # reveal which usernames exist (the specification's timing-attack warning).
        passwords.check(candidates, passwords.dummy_hash())
    info = None
    if account and result and result.ok and account.is_active:
        new_hash = passwords.hash_password(password) if result.needs_rehash else None
        # The right password was given: give the address its slot back, then stamp the
        # sign-in in the caller's transaction (which also tells the throttle to forget
        # the name's failures). The stamp is guarded: if the account was deactivated or
        # its password changed while the password was being checked, this sign-in fails.
        throttle.refund_address(db, attempt)
        event = build_event(
            "login", "success", user_id=account.id, username=username, ip=ip, detail=agent
        )
        info = _mark_signed_in(db, account, new_hash, event)
        if info is not None:
            throttle.forget_failures(db, attempt)
    if info is None:
        try:
            commit_event(
                db,
                "login",
                "failure",
                user_id=account.id if account else None,
                username=username,
                ip=ip,
                detail=agent,
            )
        except SQLAlchemyError as exc:
            raise Unavailable(
                f"sign-in refused: the audit trail failed ({exc.__class__.__name__})"
            ) from None
        raise InvalidCredentials
    return info


_ACCOUNT = select(User.id, User.password_hash, User.is_active).where(
    User.username_key == bindparam("key")
)


def _find_account(db: Session, username: object) -> throttle.Account | None:
    """The id, stored hash and active flag of the account named ``username``, read in
    the caller's open transaction, so that it sees the caller's own changes (without
    one, the counting statement's read serves)."""
    key = normalize_username(username)
    if key is None:
        return None
    row = db.connection().execute(_ACCOUNT, {"key": key}).first()
    return None if row is None else throttle.Account(*row)


def _mark_signed_in(
    db: Session, account: throttle.Account, new_hash: str | None, event: dict[str, Any]
) -> UserInfo | None:
    """Set ``last_login`` (and the upgraded hash) in the caller's transaction, only if the
    account is still active with the hash that was checked, and add the ``event`` that
    records the sign-in; the info dict, or None (and no event) if the account changed."""
    conn = db.connection()
    params: dict[str, Any] = {"uid": account.id, "checked": account.password_hash, "stamp": now()}
    if new_hash is not None:
        params["new_hash"] = new_hash
    together = conn.dialect.name == "postgresql"
    if together:
        params.update({f"event_{name}": value for name, value in event.items()})
    row = conn.execute(_stamp(new_hash is not None, together), params).first()
    if row is None:
        return None
    if not together:
        insert_event(conn, event)
    log_event(event)
    loaded = db.identity_map.get(identity_key(User, row.id))
    if loaded is not None:
        # The caller holds this user: its next read of these fields sees the update.
        db.expire(loaded, ["last_login", "sign_in_count", "password_hash", "updated_at"])
    return user_info(row)


@functools.cache
def _stamp(rehash: bool, with_event: bool) -> Executable:
    """The guarded sign-in stamp, setting the upgraded hash too if ``rehash``; with
    ``with_event`` (PostgreSQL) it also inserts the audit event, only if the stamp
    matched, in the same statement: one round trip fewer on every sign-in."""
    users = User.__table__.c
    values: dict[str, Any] = {
        "last_login": bindparam("stamp", type_=UTCDateTime()),
        # Moving the count tells the throttle to forget this name's failures.
        "sign_in_count": users.sign_in_count + 1,
    }
    if rehash:
        values["password_hash"] = bindparam("new_hash")
    stamp = (
        update(User)
        .where(
            users.id == bindparam("uid"),
            users.is_active.is_(True),
            users.password_hash == bindparam("checked"),
        )
        .values(values)
        .returning(
            users.id, users.username, users.role, users.artist_id, users.must_change_password
        )
    )
    if not with_event:
        return stamp
    stamped = stamp.cte("stamped")
    columns = AuditEvent.__table__.c
    names = [c.key for c in columns if c.key != "id"]
    event = select(*(bindparam(f"event_{name}", type_=columns[name].type) for name in names))
    logged = insert(AuditEvent).from_select(names, event.select_from(stamped)).cte("logged")
    return select(stamped).add_cte(logged)


def authenticate(
    db: Session,
    username: str,
    password: str,
    *,
    ip: str | None = None,
    user_agent: str | None = None,
) -> UserInfo | None:
    """The user's info dict (id, username, role, artist_id) or None if authentication fails,
    including when the name or address is throttled.

    Sets ``last_login`` on success; the caller commits. Raises ``Unavailable`` when the
    throttle store fails: an error, never a user.
    """
    try:
        return check_credentials(db, username, password, ip=ip, user_agent=user_agent)
    except (InvalidCredentials, Throttled):
        return None


# A fixed, distinctive prefix lets log scrubbers and secret scanners recognise a leaked
# token (the practice of GitHub's "ghp_" tokens); the rest is 32 bytes from the OS CSPRNG.
SESSION_TOKEN_PREFIX = "sat_"  # noqa: S105  (a public marker, not a secret)
SESSION_TOKEN_BYTES = 32
SESSION_TOKEN_LENGTH = len(SESSION_TOKEN_PREFIX) + 43  # 32 bytes in unpadded base64url


def generate_session_token() -> str:
    """A new opaque session token: ``sat_`` plus 256 random bits in unpadded base64url
    (47 URL-safe ASCII characters). Only its SHA-256 digest is ever stored."""
    return SESSION_TOKEN_PREFIX + secrets.token_urlsafe(SESSION_TOKEN_BYTES)
