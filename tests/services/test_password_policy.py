"""The password policy: length, the common-password list, personal words."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from data.models import AuditEvent, Role
from services.errors import PasswordRejected
from services.password_policy import check_password, common_passwords, enforce
from studio_auth.settings import get_settings

GOOD = "correct horse battery staple"


def _reasons(password, **kwargs) -> str:
    return " | ".join(check_password(password, **kwargs))


def test_common_list_is_shipped_and_large():
    words = common_passwords()
    assert len(words) >= 10_000
    assert {"123456", "password", "qwerty", "iloveyou"} <= words
    assert common_passwords() is words  # loaded once


@pytest.mark.parametrize(
    "password",
    [
        GOOD,
        "x7#Lq!9vR2@p",  # 12 characters, the default minimum
        "all lower case letters and spaces are fine",
        "ünïcödé pässwörd ñ",
        "a" * 3 + "Zq8!vX2#mK0p",
    ],
)
def test_acceptable_passwords(password):
    assert check_password(password, username="alice", role="assistant") == []
    assert enforce(password, username="alice") == password


def test_minimum_length_is_twelve_by_default():
    assert "at least 12 characters" in _reasons("x7#Lq!9vR2@")  # 11
    assert check_password("x7#Lq!9vR2@p") == []


def test_minimum_length_counts_characters_not_bytes():
    assert "at least 12" in _reasons("ÿ7#Lq!9vR2@")  # 11 characters, 12 bytes


def test_minimum_length_is_configurable_but_never_below_eight(settings_env):
    settings_env(password_min_length=16)
    assert "at least 16 characters" in _reasons("x7#Lq!9vR2@pZZZ")
    settings_env(password_min_length=8)
    assert check_password("x7#Lq!9v") == []
    assert "at least 8" in _reasons("x7#Lq!9")
    settings_env(password_min_length=7)
    with pytest.raises(ValidationError):
        get_settings()


@pytest.mark.parametrize("length", [64, 100, 1000, 4096])
def test_long_passwords_are_accepted(length):
    password = ("Zq8!vX2#mK0p-" * 400)[:length]
    assert check_password(password) == []


def test_over_4096_bytes_is_refused_with_a_reason():
    assert "longer than 4096 bytes" in _reasons("Zq8!vX2#mK0p" * 400)


@pytest.mark.parametrize(
    "password",
    [
        "1234567890123",
        "1qaz2wsx3edc",
        "PASSWORD1234",
        "  iloveyou1234  ",
        "P@ssw0rd2024!",
        "qwertyuiop123!",
        "Monkey!!!!!!2024",
        "d1amonds1234!!",
    ],
)
def test_common_passwords_are_rejected(password, settings_env):
    settings_env(password_min_length=8)
    assert "too common" in _reasons(password)


@pytest.mark.parametrize(
    ("password", "username", "reason"),
    [
        ("alice2024!!!!", "alice", "username"),
        ("ALICEalice1234", "Alice", "username"),
        ("@lice-2024-@lice", "alice", "username"),
        ("silva.ana.1999!", "ana.silva", "username"),
        ("assistant2026!!", None, "role name"),
        ("Administrator1234", None, "role name"),
        ("artist-admin-2026", None, "role name"),
    ],
)
def test_passwords_built_from_personal_words_are_rejected(password, username, reason):
    assert f"built from the {reason}" in _reasons(password, username=username) or (
        f"built from a {reason}" in _reasons(password, username=username)
    )


def test_studio_name(settings_env):
    settings_env(studio_name="Black Lotus Tattoo")
    assert "studio's name" in _reasons("BlackLotus2026!!")
    assert "studio's name" in _reasons("lotus tattoo 123456")
    assert check_password("a black lotus grows in my garden") == []


def test_names_inside_a_real_passphrase_are_fine():
    assert check_password("alice paints koi on tuesdays", username="alice") == []
    assert check_password("the artist who never sleeps") == []


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        (None, "must be text"),
        (b"bytes password", "must be text"),
        (12345678901234, "must be text"),
        ("", "must not be empty"),
        ("correct horse\x00battery", "NUL"),
        ("correct horse \ud800 battery", "lone surrogate"),
    ],
)
def test_bad_input_gets_a_reason_not_a_crash(password, reason):
    assert reason in _reasons(password)
    with pytest.raises(PasswordRejected):
        enforce(password)


def test_rejection_lists_every_reason_and_never_the_password(settings_env):
    settings_env(studio_name="Rin Ink")
    password = "alice1"
    with pytest.raises(PasswordRejected) as caught:
        enforce(password, username="alice", role=Role.ARTIST.value)
    reasons = caught.value.reasons
    assert any("at least 12" in r for r in reasons)
    assert any("username" in r for r in reasons)
    assert password not in str(caught.value)
    assert all(password not in r for r in reasons)


def test_rejected_password_is_never_logged_or_stored(db, engine, caplog):
    from services.users import create_user

    caplog.set_level(logging.DEBUG)
    with pytest.raises(PasswordRejected) as caught:
        create_user(db, "winter", "Winter2024!!", Role.ASSISTANT)
    assert "Winter2024" not in str(caught.value)
    with pytest.raises(PasswordRejected):
        create_user(db, "alice", "alice" + "!" * 12, Role.ASSISTANT)
    db.rollback()
    assert "Winter2024" not in caplog.text
    assert "alice!!!!" not in caplog.text
    with Session(engine) as other:
        rows = other.scalars(select(AuditEvent)).all()
    assert all("Winter2024" not in repr(r.detail) for r in rows)


def test_first_admin_password_passes_the_policy(db):
    from services.bootstrap import FIRST_ADMIN, ensure_first_admin

    password = ensure_first_admin(db)
    assert password is not None
    assert check_password(password, username=FIRST_ADMIN, role="admin") == []
