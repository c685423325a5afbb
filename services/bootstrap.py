"""First start: an empty database gets one admin with a random password, never a default."""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from data.models import Role, User
from services.errors import UserExists
from services.users import create_user, generate_one_time_password

FIRST_ADMIN = "admin"


def ensure_first_admin(db: Session) -> str | None:
    """Create ``admin`` with a random password when no user exists, and commit.

    Returns the password (to be shown once) when the account was created, None when
    users already exist. The account must change its password at first sign-in.
    """
    if db.scalar(select(exists().where(User.id.is_not(None)))):
        return None
    password = generate_one_time_password()
    try:
        create_user(db, FIRST_ADMIN, password, Role.ADMIN, must_change_password=True)
    except UserExists:  # another instance started at the same moment and won
        return None
    db.commit()
    return password
