"""Password hashing: bcrypt, with an HMAC-SHA256 pre-hash for passwords bcrypt cannot take.

bcrypt reads at most 72 bytes of a password. Rather than truncate, longer passwords are
pre-hashed in passlib's documented ``bcrypt-sha256`` v2 format, so the hashes stay readable
by passlib. Passwords are NFKC-normalized first (NIST SP 800-63B 5.1.1.2), so the same
password typed on two keyboards matches.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import bcrypt

from studio_auth.settings import get_settings

MAX_PASSWORD_BYTES = 4096
BCRYPT_MAX_BYTES = 72
MIN_ROUNDS = 4

_B64 = r"[./A-Za-z0-9]"
_BCRYPT = re.compile(rf"\$(2[aby])\$(\d\d)\$({_B64}{{22}})({_B64}{{31}})")
_SHA256_V2 = re.compile(rf"\$bcrypt-sha256\$v=2,t=(2b),r=(\d\d?)\$({_B64}{{22}})\$({_B64}{{31}})")
_SHA256_V1 = re.compile(rf"\$bcrypt-sha256\$(2[ab]),(\d\d?)\$({_B64}{{22}})\$({_B64}{{31}})")

Scheme = Literal["bcrypt", "bcrypt-sha256-v2", "bcrypt-sha256-v1"]


@dataclass(frozen=True)
class ParsedHash:
    scheme: Scheme
    ident: str
    rounds: int
    salt: str
    checksum: str

    @property
    def bcrypt_hash(self) -> bytes:
        """The inner bcrypt string that ``bcrypt.checkpw`` reads."""
        return f"${self.ident}${self.rounds:02d}${self.salt}{self.checksum}".encode("ascii")


@dataclass(frozen=True)
class Verification:
    ok: bool
    needs_rehash: bool


def parse_hash(hashed: object) -> ParsedHash | None:
    """The parts of a supported hash, or None for anything else (including ``$2x$``, the
    mode for hashes made by the broken pre-2011 implementation, and costs out of range)."""
    if not isinstance(hashed, str) or len(hashed) > 128:
        return None
    scheme: Scheme
    if match := _BCRYPT.fullmatch(hashed):
        scheme = "bcrypt"
    elif match := _SHA256_V2.fullmatch(hashed):
        scheme = "bcrypt-sha256-v2"
    elif match := _SHA256_V1.fullmatch(hashed):
        scheme = "bcrypt-sha256-v1"
    else:
        return None
    ident, rounds_text, salt, checksum = match.groups()
    rounds = int(rounds_text)
    # A stored cost above the ceiling would make one check run for hours or days: refuse it.
    if not MIN_ROUNDS <= rounds <= get_settings().bcrypt_max_rounds:
        return None
    return ParsedHash(scheme, ident, rounds, salt, checksum)


def password_candidates(plain: object) -> list[bytes]:
    """The byte strings to try for ``plain``: its NFKC form, then the raw text when that
    differs (hashes made before normalization still verify).

    Raises TypeError for a non-string and ValueError for an empty password, NUL bytes, lone
    surrogates or more than 4096 bytes.
    """
    if not isinstance(plain, str):
        raise TypeError("password must be a str")
    if not plain:
        raise ValueError("password must not be empty")
    if "\x00" in plain:
        raise ValueError("password must not contain NUL characters")
    try:
        raw = plain.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("password is not valid Unicode (lone surrogate)") from None
    normalized = unicodedata.normalize("NFKC", plain).encode("utf-8")
    if max(len(raw), len(normalized)) > MAX_PASSWORD_BYTES:
        raise ValueError(f"password is longer than {MAX_PASSWORD_BYTES} bytes")
    return [normalized] if normalized == raw else [normalized, raw]


def _sha256_v2_key(secret: bytes, salt: str) -> bytes:
    return base64.b64encode(hmac.new(salt.encode("ascii"), secret, hashlib.sha256).digest())


def _sha256_v1_key(secret: bytes) -> bytes:
    return base64.b64encode(hashlib.sha256(secret).digest())


def hash_password(plain: str, rounds: int | None = None) -> str:
    """A new ``$2b$`` hash (or ``$bcrypt-sha256$`` beyond 72 bytes) with a fresh salt."""
    secret = password_candidates(plain)[0]
    rounds = get_settings().bcrypt_rounds if rounds is None else rounds
    salt_config = bcrypt.gensalt(rounds=rounds, prefix=b"2b")
    if len(secret) <= BCRYPT_MAX_BYTES:
        return bcrypt.hashpw(secret, salt_config).decode("ascii")
    salt = salt_config.decode("ascii")[-22:]
    checksum = bcrypt.hashpw(_sha256_v2_key(secret, salt), salt_config).decode("ascii")[-31:]
    return f"$bcrypt-sha256$v=2,t=2b,r={rounds:02d}${salt}${checksum}"


def _check_one(secret: bytes, parsed: ParsedHash) -> bool:
    """Exactly one bcrypt run, whatever the inputs."""
    if parsed.scheme == "bcrypt-sha256-v2":
        return bcrypt.checkpw(_sha256_v2_key(secret, parsed.salt), parsed.bcrypt_hash)
    if parsed.scheme == "bcrypt-sha256-v1":
        return bcrypt.checkpw(_sha256_v1_key(secret), parsed.bcrypt_hash)
    if len(secret) > BCRYPT_MAX_BYTES:
        # A plain bcrypt hash can only hold 72 bytes: never a match, but pay the same cost
        # so that long guesses cannot tell hash formats (and so accounts) apart.
        bcrypt.checkpw(_sha256_v2_key(secret, parsed.salt), parsed.bcrypt_hash)
        return False
    return bcrypt.checkpw(secret, parsed.bcrypt_hash)


def check(candidates: list[bytes], hashed: object) -> Verification | None:
    """Check prepared password candidates against ``hashed``.

    Returns None, without running bcrypt, when the hash is unusable; otherwise one bcrypt
    run per candidate until one matches.
    """
    parsed = parse_hash(hashed)
    if parsed is None:
        return None
    for index, secret in enumerate(candidates):
        try:
            matched = _check_one(secret, parsed)
        except ValueError:
            return None
        if matched:
            return Verification(True, index > 0 or _outdated(parsed, secret))
    return Verification(False, False)


def _outdated(parsed: ParsedHash, secret: bytes) -> bool:
    preferred: Scheme = "bcrypt" if len(secret) <= BCRYPT_MAX_BYTES else "bcrypt-sha256-v2"
    return (
        parsed.scheme != preferred
        or parsed.ident != "2b"
        or parsed.rounds < get_settings().bcrypt_rounds
    )


@lru_cache(maxsize=4)
def _dummy_hash(rounds: int) -> str:
    return hash_password(secrets.token_urlsafe(32), rounds)


def dummy_hash() -> str:
    """A valid hash of a random password at the configured cost, made once per process:
    checking against it costs what checking a real account costs."""
    return _dummy_hash(get_settings().bcrypt_rounds)
