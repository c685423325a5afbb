"""``studio-auth artists ...``: the artist records that artist accounts link to."""

from __future__ import annotations

from typing import Any

import click

from data.models import Artist
from studio_auth.cli.common import db_session, echo_json, echo_table, handle_errors


def artist_row(artist: Artist) -> dict[str, Any]:
    return {"id": artist.id, "name": artist.name, "created_at": artist.created_at}


@click.group("artists")
def artists_group() -> None:
    """Artist records; link accounts to them with users add --artist-id or users link-artist."""


@artists_group.command("add")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def add_command(name: str, as_json: bool) -> None:
    """Add an artist."""
    from services.artists import create_artist

    with db_session() as db:
        artist = create_artist(db, name)
        db.commit()
        row = artist_row(artist)
    if as_json:
        echo_json(row)
    else:
        click.echo(f"created artist {row['name']} (id {row['id']})")


@artists_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def list_command(as_json: bool) -> None:
    """Every artist."""
    from services.artists import list_artists

    with db_session() as db:
        rows = [artist_row(a) for a in list_artists(db)]
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, ["id", "name", "created_at"])
