"""Autonomous transactions: writes committed apart from the caller's transaction.

Failed sign-ins, throttle counts and denials must be kept whatever the caller then does
with its session: a caller that never commits, or rolls back, cannot erase them.
``run_session_work`` runs ORM work in a transaction of its own, and ``run_statements``
runs Core statements on the sign-in path as cheaply as each database allows (see there).
"Apart" means the caller cannot undo them, not that they survive a crash (see
``services.throttle`` for the counters' commits).

SQLite has one writer at a time: while the caller's connection holds uncommitted writes,
a second connection could only wait for it. In that case the work runs on the caller's
connection (it holds the lock, so it is still atomic) and is replayed in a transaction of
its own if the caller's transaction ends without a commit (rolled back or closed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction

logger = logging.getLogger("studio_auth.autonomous")

T = TypeVar("T")


def _holds_sqlite_write_lock(db: Session) -> bool:
    if db.get_bind().dialect.name != "sqlite" or not db.in_transaction():
        return False
    driver = db.connection().connection.driver_connection
    return bool(getattr(driver, "in_transaction", False))


def run_session_work(db: Session, work: Callable[[Session], T]) -> T:
    """Run ``work`` and commit it independently of the caller's transaction."""
    if not _holds_sqlite_write_lock(db):
        with Session(bind=db.get_bind(), expire_on_commit=False) as own, own.begin():
            return work(own)

    result = work(db)
    db.flush()

    def replay() -> None:
        with Session(bind=db.get_bind(), expire_on_commit=False) as own, own.begin():
            work(own)

    on_rollback(db, replay)
    return result


def run_statements(db: Session, work: Callable[[Connection], T]) -> T:
    """Run ``work`` on a connection of its own, apart from the caller's transaction, and
    commit it before returning.

    Only for work whose statements each leave the database consistent on their own (a
    counter UPSERT, a compare-and-set UPDATE, one audit row). On PostgreSQL each
    statement commits as it completes (autocommit: no BEGIN and COMMIT round trips); on
    SQLite, where those cost no round trip but every commit writes to the log, they
    commit together at the end. Where SQLite's write lock is held by the caller, the
    statements join the caller's transaction instead and are run again on their own if
    it ends without a commit.
    """
    if _holds_sqlite_write_lock(db):
        return _join_caller(db, work)
    return run_statements_on(engine_of(db), work)


def run_statements_on(engine: Engine, work: Callable[[Connection], T]) -> T:
    """``run_statements`` for a caller without a session: ``work`` on a connection of its
    own, committed before returning."""
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            return work(conn)
    with engine.connect() as conn:
        return work(conn.execution_options(isolation_level="AUTOCOMMIT"))


def _join_caller(db: Session, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in the caller's (SQLite) transaction; if that transaction ends without
    a commit, run it again in a transaction of its own."""
    result = work(db.connection())
    engine = engine_of(db)

    def replay() -> None:
        run_statements_on(engine, work)

    on_rollback(db, replay)
    return result


def engine_of(db: Session) -> Engine:
    bind = db.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def on_rollback(db: Session, action: Callable[[], None]) -> None:
    """Call ``action`` once ``db``'s current transaction has ended without a commit: rolled
    back, or closed. Nothing happens if it commits. Savepoints are not the transaction:
    only the outermost one's end counts.

    ``action`` runs as the transaction ends, on a connection of its own; if it fails, the
    error is logged (it cannot be raised into ``close()``) and the action is lost.
    """
    db.info.setdefault(_PENDING, []).append(action)


_PENDING = "studio_auth.on_rollback"


# Listeners on the Session class (registered once, not per call); they look for pending
# actions in the session's ``info`` and return at once for every other session.
@event.listens_for(Session, "after_commit")
def _on_commit(session: Session) -> None:
    pending = session.info.get(_PENDING)
    if pending and not session.in_nested_transaction():
        pending.clear()


@event.listens_for(Session, "after_transaction_end")
def _on_end(session: Session, transaction: SessionTransaction) -> None:
    pending = session.info.get(_PENDING)
    if not pending or transaction.parent is not None:
        return
    actions = list(pending)
    pending.clear()
    for action in actions:
        try:
            action()
        except SQLAlchemyError:
            logger.exception("a write kept apart from a rolled-back transaction failed")
