"""/artists through an HTTP client, as each role: the records an artist account needs."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from data.models import Artist
from tests.web.conftest import Account, assert_problem

NEW_PASSWORD = "a fresh and unusual passphrase 42"


def test_an_admin_adds_an_artist_and_then_its_account(client: TestClient, admin: Account) -> None:
    created = client.post("/artists", json={"name": " Rin Okabe "}, headers=admin.headers)
    assert created.status_code == 201, created.text
    artist = created.json()
    assert artist["name"] == "Rin Okabe"
    assert set(artist) == {"id", "name", "created_at"}
    account = client.post(
        "/users",
        json={
            "username": "rin",
            "password": NEW_PASSWORD,
            "role": "artist",
            "artist_id": artist["id"],
        },
        headers=admin.headers,
    )
    assert account.status_code == 201, account.text
    assert account.json()["artist_id"] == artist["id"]


def test_rename_and_list(client: TestClient, admin: Account, assistant: Account) -> None:
    first = client.post("/artists", json={"name": "Rin"}, headers=admin.headers).json()
    client.post("/artists", json={"name": "Kai"}, headers=admin.headers)
    renamed = client.patch(
        f"/artists/{first['id']}", json={"name": "Rin Okabe"}, headers=admin.headers
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json() == {**first, "name": "Rin Okabe"}
    # Anyone signed in may see the records.
    listed = client.get("/artists", headers=assistant.headers)
    assert [a["name"] for a in listed.json()] == ["Rin Okabe", "Kai"]


def test_artists_see_the_list(client: TestClient, artist: Account) -> None:
    listed = client.get("/artists", headers=artist.headers)
    assert listed.status_code == 200
    assert [a["id"] for a in listed.json()] == [artist.user.artist_id]


@pytest.mark.parametrize("role", ["assistant", "artist"])
def test_only_admins_add_or_rename(
    client: TestClient,
    account: Callable[..., Account],
    make_artist: Callable[..., Artist],
    role: str,
) -> None:
    caller = account("caller", role)
    existing = make_artist("Rin")
    for response in (
        client.post("/artists", json={"name": "Mika"}, headers=caller.headers),
        client.patch(f"/artists/{existing.id}", json={"name": "Mika"}, headers=caller.headers),
    ):
        problem = assert_problem(response, 403, "permission-denied")
        assert problem["action"] == "artists.manage"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("GET", "/artists", None), ("POST", "/artists", {"name": "Mika"}),
     ("PATCH", "/artists/1", {"name": "Mika"})],
)  # fmt: skip
def test_artists_need_a_token(client: TestClient, method: str, path: str, body: object) -> None:
    assert_problem(client.request(method, path, json=body), 401, "unauthenticated")


def test_artist_errors(
    client: TestClient, admin: Account, make_artist: Callable[..., Artist]
) -> None:
    existing = make_artist("Rin")
    assert_problem(
        client.patch("/artists/9999", json={"name": "Mika"}, headers=admin.headers),
        404,
        "not-found",
    )
    for bad in ({"name": "   "}, {"name": "Rin\nOkabe"}):
        response = client.post("/artists", json=bad, headers=admin.headers)
        assert_problem(response, 422, "invalid-request")
    for bad in ({}, {"name": ""}, {"name": "x" * 201}, {"name": None}, {"name": "Rin", "x": 1}):
        response = client.post("/artists", json=bad, headers=admin.headers)
        assert_problem(response, 422, "validation-error")
        response = client.patch(f"/artists/{existing.id}", json=bad, headers=admin.headers)
        assert_problem(response, 422, "validation-error")
    assert_problem(
        client.patch("/artists/0", json={"name": "Mika"}, headers=admin.headers),
        422,
        "validation-error",
    )
    names = [a["name"] for a in client.get("/artists", headers=admin.headers).json()]
    assert names == ["Rin"]
