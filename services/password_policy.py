"""The password policy applied whenever a password is set (NIST SP 800-63B 5.1.1.2).

Length, not composition: at least ``password_min_length`` characters (12 by default, never
below 8), anything up to 4096 bytes accepted, no rules about digits or symbols. A password is
rejected, with the reason, when it is one of the common passwords shipped in
``services/data`` or is built from the username, a role name or the studio's name.

Reasons never quote the password, and nothing here logs it.
"""

from __future__ import annotations

import gzip
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

from data.models import Role, normalize_username
from services import passwords
from services.errors import PasswordRejected
from studio_auth.settings import get_settings

COMMON_PASSWORDS = "data/common-passwords.txt.gz"
ROLE_WORDS = frozenset({r.value for r in Role} | {"administrator"})
# Below this many letters left once the personal words are taken out, a password is
# "built from" them: what remains is digits, symbols or a short word.
_MIN_OWN_LETTERS = 4
# Terms shorter than this (e.g. "jo") occur by chance in good passwords.
_MIN_TERM = 3
# Only the ends are stripped: "password2024!" is "password" with decorations.
_DECORATION = re.compile(r"^[\W\d_]+|[\W\d_]+$")
_SEPARATORS = re.compile(r"[\W_]+")
# Common character substitutions ("p@ssw0rd"); "1" is read both as "i" and as "l".
_LEET = [
    str.maketrans({"@": "a", "4": "a", "3": "e", "0": "o", "1": "i", "$": "s", "5": "s",
                   "7": "t", "!": "i"}),
    str.maketrans({"@": "a", "4": "a", "3": "e", "0": "o", "1": "l", "$": "s", "5": "s",
                   "7": "t", "!": "i"}),
]  # fmt: skip


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords (lower-case), read once, on first use."""
    resource = resources.files("services").joinpath(COMMON_PASSWORDS)
    with resource.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        return frozenset(word for line in lines if (word := line.strip()))


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def _variants(folded: str) -> list[str]:
    return [folded] + [folded.translate(table) for table in _LEET]


def _is_common(folded: str) -> bool:
    words = common_passwords()
    if folded.strip() in words:
        return True
    core = _DECORATION.sub("", folded)
    if len(core) < _MIN_OWN_LETTERS:
        return False
    return any(variant in words for variant in _variants(core))


def _terms(texts: Iterable[str]) -> set[str]:
    """A name and its parts: "ana.silva" gives "ana.silva", "anasilva", "ana", "silva"."""
    terms: set[str] = set()
    for text in texts:
        folded = _fold(text).strip()
        parts = [p for p in _SEPARATORS.split(folded) if p]
        terms.update({folded, "".join(parts), *parts})
    return {t for t in terms if len(t) >= _MIN_TERM}


def _built_from(folded: str, terms: set[str]) -> bool:
    if not terms:
        return False
    longest_first = sorted(terms, key=len, reverse=True)
    for variant in _variants(folded):
        rest, found = variant, False
        for term in longest_first:
            if term in rest:
                found = True
                rest = rest.replace(term, " ")
        if found and sum(ch.isalpha() for ch in rest) < _MIN_OWN_LETTERS:
            return True
    return False


def check_password(password: object, *, username: object = None, role: object = None) -> list[str]:
    """Why ``password`` breaks the policy: a list of reasons, empty when it is acceptable."""
    if not isinstance(password, str):
        return ["password must be text"]
    try:
        passwords.password_candidates(password)
    except ValueError as exc:  # the messages describe the input, never quote it
        return [str(exc)]
    normalized = unicodedata.normalize("NFKC", password)
    folded = _fold(password)
    reasons = []
    minimum = get_settings().password_min_length
    if len(normalized) < minimum:
        reasons.append(f"password must be at least {minimum} characters long")
    if _is_common(folded):
        reasons.append("password is too common: it is on a list of frequently used passwords")
    key = normalize_username(username)
    if key is not None and _built_from(folded, _terms([key])):
        reasons.append("password must not be built from the username")
    roles = set(ROLE_WORDS)
    if isinstance(role, str):
        roles.add(role)
    if _built_from(folded, _terms(roles)):
        reasons.append("password must not be built from a role name")
    studio = get_settings().studio_name
    if studio.strip() and _built_from(folded, _terms([studio])):
        reasons.append("password must not be built from the studio's name")
    return reasons


def enforce(password: object, *, username: object = None, role: object = None) -> str:
    """Return ``password`` if the policy accepts it; raise PasswordRejected(reasons)."""
    reasons = check_password(password, username=username, role=role)
    if reasons:
        raise PasswordRejected(reasons)
    assert isinstance(password, str)
    return password
