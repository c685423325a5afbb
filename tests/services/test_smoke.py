from services.auth import authenticate


def test_authenticate_roundtrip(db, make_user):
    make_user("alice", "correct horse battery staple")
    info = authenticate(db, "Alice", "correct horse battery staple")
    assert info is not None
    assert info["username"] == "alice"
    assert info["role"] == "assistant"
    assert authenticate(db, "alice", "wrong") is None


def test_failure_recorded_after_uncommitted_success(db, make_user, engine):
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from data.models import AuditEvent

    make_user("alice", "correct horse battery staple")
    assert authenticate(db, "alice", "correct horse battery staple")
    assert authenticate(db, "alice", "wrong") is None
    db.rollback()
    with Session(engine) as other:
        events = other.scalars(select(AuditEvent.outcome).order_by(AuditEvent.id)).all()
    assert events == ["failure"]
    db.close()
    assert func
