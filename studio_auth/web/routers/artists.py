"""/artists: the artist records that artist accounts link to (``artists.view`` to read,
``artists.manage`` to add or rename)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from data.db.base import DB_ID_MAX
from data.models import Artist
from services import artists
from services.sessions import SessionInfo
from studio_auth.web.deps import Db, require_permission
from studio_auth.web.errors import problem_responses
from studio_auth.web.json_route import JsonRoute
from studio_auth.web.schemas import ArtistOut, ArtistRequest

router = APIRouter(prefix="/artists", tags=["artists"], route_class=JsonRoute)

Viewer = Annotated[SessionInfo, Depends(require_permission("artists.view"))]
Manager = Annotated[SessionInfo, Depends(require_permission("artists.manage"))]
ArtistId = Annotated[int, Path(ge=1, le=DB_ID_MAX)]


def describe_artist(artist: Artist) -> ArtistOut:
    return ArtistOut(id=artist.id, name=artist.name, created_at=artist.created_at)


@router.get(
    "",
    response_model=list[ArtistOut],
    responses=problem_responses(401, 403, 503),
    summary="Every artist record, by id",
)
def list_artists(_viewer: Viewer, db: Db) -> list[ArtistOut]:
    return [describe_artist(artist) for artist in artists.list_artists(db)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ArtistOut,
    responses=problem_responses(401, 403, 422, 503),
    summary="Add an artist record (names need not be unique)",
)
def create_artist(body: ArtistRequest, manager: Manager, db: Db) -> ArtistOut:
    artist = artists.create_artist(db, body.name, actor=manager)
    db.commit()
    return describe_artist(artist)


@router.patch(
    "/{artist_id}",
    response_model=ArtistOut,
    responses=problem_responses(401, 403, 404, 422, 503),
    summary="Rename an artist record",
)
def rename_artist(artist_id: ArtistId, body: ArtistRequest, manager: Manager, db: Db) -> ArtistOut:
    artist = artists.rename_artist(db, artist_id, body.name, actor=manager)
    db.commit()
    return describe_artist(artist)
