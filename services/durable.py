"""Writes that must survive whatever the caller does with its session.

Failed sign-ins, throttle counts and denials are committed in a transaction of their own,
so a caller that never commits (or rolls back) cannot erase them.

SQLite has one writer at a time: while the caller's connection holds uncommitted writes,
a second connection could only wait for it. In that case the work runs on the caller's
connection (it holds the lock, so it is still atomic) and is replayed in a transaction of
its own if the caller's transaction is rolled back instead of committed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session

T = TypeVar("T")


def _holds_sqlite_write_lock(db: Session) -> bool:
    if db.get_bind().dialect.name != "sqlite" or not db.in_transaction():
        return False
    driver = db.connection().connection.driver_connection
    return bool(getattr(driver, "in_transaction", False))


def write_durably(db: Session, work: Callable[[Session], T]) -> T:
    """Run ``work`` and commit it independently of the caller's transaction."""
    if not _holds_sqlite_write_lock(db):
        with Session(bind=db.get_bind(), expire_on_commit=False) as own, own.begin():
            return work(own)

    result = work(db)
    db.flush()
    settled = False

    def on_commit(_session: Session) -> None:
        nonlocal settled
        settled = True

    def on_rollback(_session: Session) -> None:
        nonlocal settled
        if settled:
            return
        settled = True
        with Session(bind=db.get_bind(), expire_on_commit=False) as own, own.begin():
            work(own)

    event.listen(db, "after_commit", on_commit, once=True)
    event.listen(db, "after_rollback", on_rollback, once=True)
    return result
