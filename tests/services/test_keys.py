"""The secret key: where it comes from, the key file, sealing and keyed digests."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from services import keys
from services.keys import Keyring, SecretKeyUnavailable
from studio_auth.settings import Settings


def _settings(tmp_path: Path, **values: Any) -> Settings:
    values.setdefault("database_url", f"sqlite:///{tmp_path / 'studio.db'}")
    return Settings(**values)


@pytest.fixture
def ring() -> Keyring:
    return Keyring(keys.parse_key(keys.generate_key()))


def test_generated_keys_are_256_random_bits_in_base64url() -> None:
    first, second = keys.generate_key(), keys.generate_key()
    assert first != second
    assert len(keys.parse_key(first)) == keys.KEY_BYTES
    assert set(first) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize(
    "text",
    ["", "correct horse battery staple", "c2hvcnQ", "!!!!" * 20, "a" * 42],
)
def test_anything_but_a_long_enough_key_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="studio-auth keys generate"):
        keys.parse_key(text)


def test_a_sqlite_database_gets_a_private_key_file_beside_it(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    first = keys.load_keyring(settings)
    path = tmp_path / "studio.key"
    assert first.source == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keys.load_keyring(settings).current == first.current  # read back, not replaced


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    keys.load_keyring(settings)
    path = tmp_path / "studio.key"
    path.chmod(0o644)
    with pytest.raises(SecretKeyUnavailable, match="chmod 600"):
        keys.load_keyring(settings)


def test_a_key_file_made_by_another_process_first_is_used(tmp_path: Path) -> None:
    path = tmp_path / "studio.key"
    theirs = keys.generate_key()
    keys.replace_key_file(path, [theirs])
    assert keys.create_key_file(path) == [keys.parse_key(theirs)]


@pytest.mark.parametrize("content", ["", "\n\n", "not a key\n"])
def test_an_unusable_key_file_fails_closed(tmp_path: Path, content: str) -> None:
    path = tmp_path / "studio.key"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(SecretKeyUnavailable, match=str(path)):
        keys.load_keyring(_settings(tmp_path))


def test_a_shared_database_needs_the_key_set(tmp_path: Path) -> None:
    settings = _settings(tmp_path, database_url="postgresql+psycopg://db.example/studio")
    with pytest.raises(SecretKeyUnavailable, match="STUDIO_AUTH_SECRET_KEY"):
        keys.load_keyring(settings)
    for memory in ("sqlite://", "sqlite:///:memory:"):
        with pytest.raises(SecretKeyUnavailable):
            keys.load_keyring(_settings(tmp_path, database_url=memory))


def test_the_setting_wins_over_a_key_file_and_brings_previous_keys(tmp_path: Path) -> None:
    new, old = keys.generate_key(), keys.generate_key()
    settings = _settings(tmp_path, secret_key=new, previous_secret_keys=f" {old} ,")
    ring = keys.load_keyring(settings)
    assert ring.current == keys.parse_key(new)
    assert ring.previous == (keys.parse_key(old),)
    assert not (tmp_path / "studio.key").exists()


def test_a_malformed_setting_names_the_variable_not_the_value(tmp_path: Path) -> None:
    secret = "hunter2-is-not-a-key"
    with pytest.raises(SecretKeyUnavailable) as caught:
        keys.load_keyring(_settings(tmp_path, secret_key=secret))
    assert "STUDIO_AUTH_SECRET_KEY" in str(caught.value)
    assert secret not in str(caught.value)


def test_the_keyring_never_shows_its_keys(ring: Keyring) -> None:
    assert keys.generate_key()[:8] not in repr(ring)
    assert repr(ring.current) not in repr(ring)


def test_sealed_values_open_only_with_their_key_and_context(ring: Keyring) -> None:
    sealed = keys.seal("totp", b"seed bytes", b"user:7", ring)
    assert b"seed bytes" not in sealed.encode()
    assert keys.sealed_key_id(sealed) == ring.current_id
    assert keys.open_sealed("totp", sealed, b"user:7", ring) == b"seed bytes"
    assert keys.seal("totp", b"seed bytes", b"user:7", ring) != sealed  # a fresh nonce
    with pytest.raises(SecretKeyUnavailable):
        keys.open_sealed("totp", sealed, b"user:8", ring)  # copied to another row
    with pytest.raises(SecretKeyUnavailable):
        keys.open_sealed("other-use", sealed, b"user:7", ring)


@pytest.mark.parametrize(
    "damage",
    [
        lambda s: s[:-2] + ("A" if s[-2] != "A" else "B") + s[-1],
        lambda s: s.replace("v1.", "v2.", 1),
        lambda s: s.split(".", 1)[1],
        lambda s: "",
        lambda s: "v1.abc.%%%",
    ],
)
def test_a_damaged_sealed_value_fails_closed(ring: Keyring, damage: Callable[[str], str]) -> None:
    sealed = keys.seal("totp", b"seed", b"user:1", ring)
    with pytest.raises(SecretKeyUnavailable):
        keys.open_sealed("totp", damage(sealed), b"user:1", ring)


def test_a_previous_key_still_opens_until_it_is_dropped(ring: Keyring) -> None:
    sealed = keys.seal("totp", b"seed", b"user:1", ring)
    rotated = Keyring(keys.parse_key(keys.generate_key()), (ring.current,))
    assert keys.open_sealed("totp", sealed, b"user:1", rotated) == b"seed"
    assert keys.sealed_key_id(sealed) != rotated.current_id
    dropped = Keyring(rotated.current)
    with pytest.raises(SecretKeyUnavailable, match="not configured"):
        keys.open_sealed("totp", sealed, b"user:1", dropped)


def test_keyed_digests_group_equal_inputs_and_depend_on_key_and_use(ring: Keyring) -> None:
    digest = keys.keyed_digest("username", b"adm1n", ring)
    assert digest == keys.keyed_digest("username", b"adm1n", ring)
    assert digest != keys.keyed_digest("username", b"admin", ring)
    assert digest != keys.keyed_digest("other-use", b"adm1n", ring)
    other = Keyring(keys.parse_key(keys.generate_key()))
    assert digest != keys.keyed_digest("username", b"adm1n", other)


def test_the_process_keyring_is_loaded_once(
    tmp_path: Path, settings_env: Callable[..., None]
) -> None:
    settings_env(database_url=f"sqlite:///{tmp_path / 'app.db'}")
    keys.reset_keyring()
    try:
        assert keys.get_keyring() is keys.get_keyring()
        assert (tmp_path / "app.key").exists()
        assert os.stat(tmp_path / "app.key").st_mode & 0o077 == 0
    finally:
        keys.reset_keyring()
