"""The authentication service of the specification: password hashing, verification, user
lookup and authentication, plus session-token generation.

Read-path functions return a value or None; ``check_credentials`` is the one place that
says why a sign-in failed, as an exception, for callers that need to tell the user how
long to wait.
"""

from __future__ import annotations

import secrets
from typing import Any, NamedTuple, NoReturn, TypedDict

from sqlalchemy import Row, Select, bindparam, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.dml import ReturningUpdate

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
    too often, and ``Unavailable`` when the throttle store fails. A caller that decides
    something between counting and checking calls this first and passes the attempt to
    ``check_credentials``; everyone else lets ``check_credentials`` call it.
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
    # The statement that counts the attempt also reads the account. That read is
    # committed data: it serves unless the caller has a transaction open, whose own
    # changes the check must see. The stamp refuses the sign-in if the account has
    # changed since the count.
    counted_read_serves = not db.in_transaction()
    if attempt is None:
        attempt = check_throttle(db, username, ip=ip, user_agent=user_agent)
    elif attempt.user_key != throttle.user_key(username):
        raise ValueError("the attempt was counted for another username")
    candidates = _password_candidates(password)
    if candidates is None:
        # Not a possible password: refused without bcrypt, which reveals nothing about
        # the name, as the input alone decides.
        _refuse(db, None, username, ip=ip, user_agent=user_agent)
    account = attempt.account if counted_read_serves else _find_account(db, username)
    result = passwords.check(candidates, account.password_hash) if account else None
    if result is None:
        # No account, or an unusable stored hash: check against a dummy hash anyway so
        # that every failure costs one real bcrypt check and response times do not
        # reveal which usernames exist (ASVS 5.0 6.3.8, the specification's warning).
        passwords.check(candidates, passwords.dummy_hash())
    if account and result and result.ok and account.is_active:
        new_hash = passwords.hash_password(password) if result.needs_rehash else None
        info = _sign_in(db, attempt, account, new_hash, username, ip=ip, user_agent=user_agent)
        if info is not None:
            return info
    _refuse(db, account, username, ip=ip, user_agent=user_agent)


def _password_candidates(password: object) -> list[bytes] | None:
    """What to check for ``password`` (see ``passwords.password_candidates``), or None
    when it cannot be a password."""
    try:
        return passwords.password_candidates(password)
    except (TypeError, ValueError):
        return None


def _client_detail(user_agent: str | None) -> dict[str, Any]:
    return {"user_agent": user_agent} if user_agent else {}


def _sign_in(
    db: Session,
    attempt: throttle.Attempt,
    account: throttle.Account,
    new_hash: str | None,
    username: str,
    *,
    ip: str | None,
    user_agent: str | None,
) -> UserInfo | None:
    """Complete a sign-in whose password was right: give the address its slot back,
    stamp the sign-in in the caller's transaction and have the throttle forget the
    name's failures. Returns the info dict, or None (nothing stamped) if the account was
    deactivated or its password changed while the password was being checked."""
    throttle.refund_address(db, attempt)
    event = build_event(
        "login",
        "success",
        user_id=account.id,
        username=username,
        ip=ip,
        detail=_client_detail(user_agent),
    )
    info = _mark_signed_in(db, account, new_hash, event)
    if info is not None:
        throttle.forget_failures(db, attempt)
    return info


def _refuse(
    db: Session,
    account: throttle.Account | None,
    username: str,
    *,
    ip: str | None,
    user_agent: str | None,
) -> NoReturn:
    """Record a failed sign-in apart from the caller's transaction and raise
    ``InvalidCredentials``; ``Unavailable`` if the failure cannot be recorded."""
    try:
        commit_event(
            db,
            "login",
            "failure",
            user_id=account.id if account else None,
            username=username,
            ip=ip,
            detail=_client_detail(user_agent),
        )
    except SQLAlchemyError as exc:
        raise Unavailable(
            f"sign-in refused: the audit trail failed ({exc.__class__.__name__})"
        ) from None
    raise InvalidCredentials


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


class _Stamp(NamedTuple):
    """One form of the sign-in stamp, as two statements: ``update`` alone, after which
    the caller inserts the audit event, and ``update_and_log``, which also inserts the
    event, only if the stamp matched, in the same statement (on PostgreSQL: one round
    trip fewer on every sign-in)."""

    update: ReturningUpdate[Any]
    update_and_log: Select[Any]


def _stamp(**also_set: Any) -> _Stamp:
    """The guarded sign-in stamp: sets ``last_login`` and moves ``sign_in_count``, and
    the ``also_set`` values, only if the account is still active with the hash that was
    checked; returns the columns of ``user_info``."""
    users = User.__table__.c
    values: dict[str, Any] = {
        "last_login": bindparam("stamp", type_=UTCDateTime()),
        # Moving the count tells the throttle to forget this name's failures.
        "sign_in_count": users.sign_in_count + 1,
        **also_set,
    }
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
    stamped = stamp.cte("stamped")
    columns = AuditEvent.__table__.c
    names = [c.key for c in columns if c.key != "id"]
    event = select(*(bindparam(f"event_{name}", type_=columns[name].type) for name in names))
    logged = insert(AuditEvent).from_select(names, event.select_from(stamped)).cte("logged")
    return _Stamp(stamp, select(stamped).add_cte(logged))


_STAMP = _stamp()
_STAMP_AND_REHASH = _stamp(password_hash=bindparam("new_hash"))


def _mark_signed_in(
    db: Session, account: throttle.Account, new_hash: str | None, event: dict[str, Any]
) -> UserInfo | None:
    """Set ``last_login`` (and the upgraded hash) in the caller's transaction, only if the
    account is still active with the hash that was checked, and add the ``event`` that
    records the sign-in; the info dict, or None (and no event) if the account changed."""
    conn = db.connection()
    params: dict[str, Any] = {"uid": account.id, "checked": account.password_hash, "stamp": now()}
    stamp = _STAMP
    if new_hash is not None:
        stamp = _STAMP_AND_REHASH
        params["new_hash"] = new_hash
    if conn.dialect.name == "postgresql":  # a round trip saved; SQLite has none to save
        params.update({f"event_{name}": value for name, value in event.items()})
        row = conn.execute(stamp.update_and_log, params).first()
    else:
        row = conn.execute(stamp.update, params).first()
        if row is not None:
            insert_event(conn, event)
    if row is None:
        return None
    log_event(event)
    loaded = db.identity_map.get(identity_key(User, row.id))
    if loaded is not None:
        # The caller holds this user: its next read of these fields sees the update.
        db.expire(loaded, ["last_login", "sign_in_count", "password_hash", "updated_at"])
    return user_info(row)


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
