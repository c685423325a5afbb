"""The User model keeps its normalized key in step and never shows its hash."""

from __future__ import annotations

import pytest

from data.models import Role, User, normalize_username


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("Admin", "admin"),
        ("  Admin  ", "admin"),
        ("ＡＤＭＩＮ", "admin"),
        ("Straße", "strasse"),
        ("ǅemal", "džemal"),
    ],
)
def test_normalize_username(raw: str, key: str) -> None:
    assert normalize_username(raw) == key


@pytest.mark.parametrize("raw", [None, 1, "", "   ", "a\x00b", "a\nb", "\ud800", "a" * 151])
def test_normalize_refuses_impossible_names(raw: object) -> None:
    assert normalize_username(raw) is None


def test_key_follows_username() -> None:
    user = User(username="  Alice ", password_hash="h", role=Role.ADMIN)
    assert user.username == "Alice"
    assert user.username_key == "alice"
    user.username = "ＢＯＢ"
    assert user.username_key == "bob"


def test_invalid_username_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid username"):
        User(username="\x00", password_hash="h", role=Role.ADMIN)


def test_repr_hides_the_hash() -> None:
    user = User(username="alice", password_hash="$2b$12$secretsecret", role=Role.ADMIN)
    assert "secret" not in repr(user)
    assert "role=admin" in repr(user)


def test_role_reads_as_plain_string() -> None:
    assert f"{Role.ADMIN}" == "admin"
    assert Role.ARTIST == "artist"
