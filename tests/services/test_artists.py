"""Artist records: who may add and rename them, what a name may be, and the audit trail."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from data.models import Artist, AuditEvent, Role
from services.artists import create_artist, list_artists, rename_artist
from services.auth import user_info
from services.errors import InvalidRequest, NotFound, PermissionDenied


def _events(engine, name: str) -> list[AuditEvent]:
    with Session(engine) as other:
        return list(other.scalars(select(AuditEvent).where(AuditEvent.event == name)))


def test_an_admin_adds_and_renames_and_both_are_audited(db, engine, make_user):
    boss = make_user("boss", role=Role.ADMIN)
    artist = create_artist(db, "  Rin Okabe ", actor=user_info(boss))
    db.commit()
    assert artist.name == "Rin Okabe"
    renamed = rename_artist(db, artist.id, "Rin O.", actor=user_info(boss))
    db.commit()
    assert renamed.name == "Rin O."
    assert db.get(Artist, artist.id).name == "Rin O."
    (created,) = _events(engine, "artist_created")
    assert (created.actor_id, created.detail) == (
        boss.id,
        {"artist_id": artist.id, "name": "Rin Okabe"},
    )
    (event,) = _events(engine, "artist_renamed")
    assert event.actor_id == boss.id
    assert event.detail == {"artist_id": artist.id, "from": "Rin Okabe", "to": "Rin O."}


def test_the_same_name_again_changes_nothing(db, engine):
    artist = create_artist(db, "Rin")
    rename_artist(db, artist.id, " Rin ")
    db.commit()
    assert _events(engine, "artist_renamed") == []


@pytest.mark.parametrize("role", [Role.ASSISTANT, Role.ARTIST])
def test_other_roles_may_not_add_or_rename(db, engine, make_user, role):
    artist = create_artist(db, "Rin")
    db.commit()
    someone = user_info(make_user("someone", role=role))
    with pytest.raises(PermissionDenied, match=r"artists\.manage"):
        create_artist(db, "Mika", actor=someone)
    with pytest.raises(PermissionDenied, match=r"artists\.manage"):
        rename_artist(db, artist.id, "Mika", actor=someone)
    db.rollback()
    assert "Mika" not in {a.name for a in list_artists(db)}
    assert len(_events(engine, "permission_denied")) == 2


@pytest.mark.parametrize(
    "name", ["", "   ", "x" * 201, "Rin\nOkabe", "Rin\x00", "Rin\u2028Okabe", "\ud800", None, 7]
)
def test_bad_names_are_refused(db, name):
    with pytest.raises(InvalidRequest, match="artist name"):
        create_artist(db, name)
    artist = create_artist(db, "Rin")
    with pytest.raises(InvalidRequest, match="artist name"):
        rename_artist(db, artist.id, name)


@pytest.mark.parametrize("artist_id", [999, 0, -1, 2**31, True, "1", None])
def test_renaming_an_unknown_artist_is_not_found(db, artist_id):
    create_artist(db, "Rin")
    with pytest.raises(NotFound):
        rename_artist(db, artist_id, "Mika")


def test_names_need_not_be_unique_and_list_by_id(db):
    first, second = create_artist(db, "Kai"), create_artist(db, "Kai")
    assert [a.id for a in list_artists(db)] == [first.id, second.id]
