"""Writes that must survive whatever the caller does with its session.

Failed sign-ins, throttle counts and denials are committed independently of the caller's
transaction, so a caller that never commits (or rolls back) cannot erase them:
``write_durably`` runs ORM work in a transaction of its own, and ``run_durably`` runs
Core statements on the sign-in path as cheaply as each database allows (see there).

SQLite has one writer at a time: while the caller's connection holds uncommitted writes,
a second connection could only wait for it. In that case the work runs on the caller's
connection (it holds the lock, so it is still atomic) and is replayed in a transaction of
its own if the caller's transaction is rolled back instead of committed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, Engine, event
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

    def replay() -> None:
        with Session(bind=db.get_bind(), expire_on_commit=False) as own, own.begin():
            work(own)

    _replay_on_rollback(db, replay)
    return result


def run_durably(db: Session, work: Callable[[Connection], T]) -> T:
    """Run ``work`` on a connection of its own, apart from the caller's transaction, and
    commit it before returning.

    Only for work whose statements each leave the database consistent on their own (a
    counter UPSERT, a compare-and-set UPDATE, one audit row). On PostgreSQL each
    statement commits as it completes (autocommit: no BEGIN and COMMIT round trips); on
    SQLite, where those cost no round trip but every commit writes to the log, they
    commit together at the end. Where SQLite's write lock is held by the caller, the
    statements join the caller's transaction instead and are run again on their own if
    it rolls back.
    """
    engine = _engine_of(db)
    if engine.dialect.name == "sqlite":
        if _holds_sqlite_write_lock(db):
            return _join_caller(db, work)
        with engine.begin() as conn:
            return work(conn)
    with engine.connect() as conn:
        return work(conn.execution_options(isolation_level="AUTOCOMMIT"))


def _join_caller(db: Session, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in the caller's (SQLite) transaction; if that transaction is rolled
    back instead of committed, run it again in a transaction of its own."""
    result = work(db.connection())

    def replay() -> None:
        with _engine_of(db).begin() as conn:
            work(conn)

    _replay_on_rollback(db, replay)
    return result


def _engine_of(db: Session) -> Engine:
    bind = db.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def _replay_on_rollback(db: Session, replay: Callable[[], None]) -> None:
    """Call ``replay`` once if ``db``'s current transaction is rolled back, not if it
    commits."""
    settled = False

    def on_commit(_session: Session) -> None:
        nonlocal settled
        settled = True

    def on_rollback(_session: Session) -> None:
        nonlocal settled
        if settled:
            return
        settled = True
        replay()

    event.listen(db, "after_commit", on_commit, once=True)
    event.listen(db, "after_rollback", on_rollback, once=True)
