"""The service's secret key: what a copy of the database alone must not reveal.

Second-factor seeds are encrypted with it (AES-256-GCM), and names typed at sign-in that
are no account's are kept only as keyed digests of it. The database never holds the key:
it comes from ``STUDIO_AUTH_SECRET_KEY`` or a key file (``STUDIO_AUTH_SECRET_KEY_FILE``,
by default beside a SQLite database, created with mode 0600 on first use). Keys replaced
by a rotation stay readable (``STUDIO_AUTH_PREVIOUS_SECRET_KEYS``, or the key file's later
lines) until everything is encrypted under the current key again.

Each use gets a key of its own, derived with HKDF-SHA256 from the secret and the use's
name, so a digest key can never decrypt a seed. Without a key, the operations that need
one fail closed (``SecretKeyUnavailable``) rather than store something readable.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.engine import make_url

from services.errors import Unavailable
from studio_auth.files import create_private_file
from studio_auth.settings import Settings, get_settings

KEY_BYTES = 32
NONCE_BYTES = 12  # AES-GCM's standard nonce; random, so at most 2**32 encryptions a key
_SEALED_VERSION = "v1"


class SecretKeyUnavailable(Unavailable):
    """No usable secret key: none configured, unreadable, or not the one a value needs."""


@dataclass(frozen=True)
class Keyring:
    """The current secret key and the previous ones that may still be needed to read."""

    current: bytes = field(repr=False)
    previous: tuple[bytes, ...] = field(default=(), repr=False)
    source: str = ""

    @property
    def current_id(self) -> str:
        return key_id(self.current)

    def key_with_id(self, wanted: str) -> bytes | None:
        for key in (self.current, *self.previous):
            if hmac.compare_digest(key_id(key), wanted):
                return key
        return None


def generate_key() -> str:
    """A new secret key as text (256 bits from the OS CSPRNG, unpadded base64url)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii").rstrip("=")


def parse_key(text: str) -> bytes:
    """The key bytes of ``text`` (base64url, padded or not), or ValueError saying what a
    key must look like. A passphrase is refused: a key must carry 256 random bits."""
    cleaned = text.strip()
    try:
        raw = base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) < KEY_BYTES:
        raise ValueError(
            f"a secret key is at least {KEY_BYTES} random bytes in base64url "
            "(make one with `studio-auth keys generate`)"
        )
    return raw


def key_id(key: bytes) -> str:
    """A short public name for ``key``, stored beside what it encrypted (reveals nothing
    about the key: an HMAC of a fixed label under it)."""
    return hmac.new(key, b"studio-auth key id", hashlib.sha256).hexdigest()[:12]


@functools.lru_cache(maxsize=32)
def _derived(key: bytes, purpose: str) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_BYTES,
        salt=None,
        info=f"studio-auth/{purpose}".encode(),
    )
    return hkdf.derive(key)


def keyed_digest(purpose: str, data: bytes, keyring: Keyring | None = None) -> str:
    """HMAC-SHA256 of ``data`` under the current key's subkey for ``purpose``, hex: equal
    inputs give equal digests, and nobody without the key can test a guess."""
    ring = keyring or get_keyring()
    return hmac.new(_derived(ring.current, purpose), data, hashlib.sha256).hexdigest()


def seal(purpose: str, plaintext: bytes, context: bytes, keyring: Keyring | None = None) -> str:
    """``plaintext`` encrypted (AES-256-GCM) under the current key's subkey for
    ``purpose``, bound to ``context`` (a row's identity: a sealed value copied to another
    row does not open there). Text: version, key id, then nonce and ciphertext."""
    ring = keyring or get_keyring()
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(_derived(ring.current, purpose)).encrypt(nonce, plaintext, context)
    body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii")
    return f"{_SEALED_VERSION}.{ring.current_id}.{body}"


def open_sealed(purpose: str, token: str, context: bytes, keyring: Keyring | None = None) -> bytes:
    """The plaintext of a ``seal`` result; SecretKeyUnavailable (fail closed) when the key
    it names is not configured or the value does not open with it."""
    ring = keyring or get_keyring()
    try:
        version, wanted, body = token.split(".")
        raw = base64.urlsafe_b64decode(body)
    except (ValueError, binascii.Error):
        raise SecretKeyUnavailable("a sealed value is malformed") from None
    key = ring.key_with_id(wanted) if version == _SEALED_VERSION else None
    if key is None:
        raise SecretKeyUnavailable(
            f"a sealed value needs the secret key {wanted!r}, which is not configured"
        )
    try:
        return AESGCM(_derived(key, purpose)).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context)
    except (InvalidTag, ValueError):
        raise SecretKeyUnavailable(f"a sealed value does not open with key {wanted!r}") from None


def sealed_key_id(token: str) -> str | None:
    """The id of the key a ``seal`` result was made with, or None if malformed."""
    parts = token.split(".")
    return parts[1] if len(parts) == 3 else None


def default_key_file(settings: Settings) -> Path | None:
    """Where the key file is: ``STUDIO_AUTH_SECRET_KEY_FILE``, else beside a SQLite
    database file (``studio_auth.db`` -> ``studio_auth.key``); None for other databases,
    which need the key set explicitly (several instances must share it)."""
    if settings.secret_key_file:
        return Path(settings.secret_key_file)
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    database = Path(url.database)
    return database.with_name(database.stem + ".key")


def load_keyring(settings: Settings) -> Keyring:
    """The configured keys: ``STUDIO_AUTH_SECRET_KEY`` (and the previous keys), else the
    key file, created when missing. SecretKeyUnavailable says what to do otherwise."""
    older = settings.previous_secret_keys
    older_text = older.get_secret_value() if older is not None else None
    previous = _parse_keys(older_text, "STUDIO_AUTH_PREVIOUS_SECRET_KEYS")
    if settings.secret_key is not None:
        current = _parse_keys(settings.secret_key.get_secret_value(), "STUDIO_AUTH_SECRET_KEY")
        if len(current) != 1:
            raise SecretKeyUnavailable("STUDIO_AUTH_SECRET_KEY must hold exactly one key")
        return Keyring(current[0], tuple(previous), "STUDIO_AUTH_SECRET_KEY")
    path = default_key_file(settings)
    if path is None:
        raise SecretKeyUnavailable(
            "no secret key: set STUDIO_AUTH_SECRET_KEY (make one with "
            "`studio-auth keys generate`; every instance must use the same key)"
        )
    keys = read_key_file(path) if path.exists() else create_key_file(path)
    return Keyring(keys[0], (*keys[1:], *previous), str(path))


def _parse_keys(text: str | None, source: str) -> list[bytes]:
    items = [item for item in (text or "").replace("\n", ",").split(",") if item.strip()]
    try:
        return [parse_key(item) for item in items]
    except ValueError as exc:
        raise SecretKeyUnavailable(f"{source}: {exc}") from None


def read_key_file(path: Path) -> list[bytes]:
    """The keys of a key file, current first. Refuses a file others can read or write
    (as ssh does a private key): the key is only as secret as its file."""
    try:
        if os.name == "posix":
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise SecretKeyUnavailable(
                    f"the key file {path} is open to other users (mode {mode:04o}): "
                    f"run `chmod 600 {path}`"
                )
        keys = _parse_keys(path.read_text("ascii"), str(path))
    except OSError as exc:
        raise SecretKeyUnavailable(f"the key file {path} cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise SecretKeyUnavailable(f"the key file {path} holds no key") from None
    if not keys:
        raise SecretKeyUnavailable(f"the key file {path} holds no key")
    return keys


def create_key_file(path: Path) -> list[bytes]:
    """Write a new key to ``path`` (mode 0600, never over an existing file) and return
    the file's keys; if another process made it first, theirs."""
    text = generate_key()
    try:
        _write_new_file(path, f"{text}\n")
    except FileExistsError:
        return read_key_file(path)
    return [parse_key(text)]


def replace_key_file(path: Path, keys: list[str]) -> None:
    """Write ``keys`` (current first) to ``path``, mode 0600, atomically: a reader sees
    the old file or the new one, never a part."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    _write_new_file(temporary, "".join(f"{key}\n" for key in keys))
    os.replace(temporary, path)


def _write_new_file(path: Path, text: str) -> None:
    """Create ``path`` readable by its owner only and write ``text``; FileExistsError if
    it exists."""
    try:
        out = create_private_file(path)
    except FileExistsError:
        raise
    except OSError as exc:
        reason = exc.strerror
        raise SecretKeyUnavailable(f"the key file {path} cannot be written ({reason})") from None
    with out:
        out.write(text.encode("ascii"))
        out.flush()
        os.fsync(out.fileno())


@functools.lru_cache(maxsize=1)
def _cached_keyring(settings: Settings) -> Keyring:
    return load_keyring(settings)


def get_keyring() -> Keyring:
    """The process's keys, loaded (and the key file created) on first use."""
    return _cached_keyring(get_settings())


def reset_keyring() -> None:
    """Forget the loaded keys (tests, and the CLI after a rotation)."""
    _cached_keyring.cache_clear()
