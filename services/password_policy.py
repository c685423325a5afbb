"""The password policy applied whenever a password is set (NIST SP 800-63B rev 4, 3.1.1.2;
OWASP ASVS 5.0 V6.2).

Length, not composition (ASVS 6.2.5): at least ``password_min_length`` characters (12 by
default, never below 8; ASVS 6.2.1), anything up to 4096 bytes accepted (ASVS 6.2.9). A
password is refused, with the reasons, when it is on the list of common passwords shipped
in ``services/data`` (ASVS 6.2.4), or when the zxcvbn strength estimator rates it
guessable within about 10^8 guesses. zxcvbn finds repeats, sequences, keyboard walks,
dates, common words and l33t spellings, and is given the words an attacker of this
account tries first: the username, the role names, the studio's name and this service's
name (800-63B's context-specific words; ASVS 6.2.11).

Reasons never quote the password, and nothing here logs it.
"""

from __future__ import annotations

import gzip
import re
import threading
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

from zxcvbn import zxcvbn
from zxcvbn.matching import L33T_TABLE, enumerate_l33t_subs, relevant_l33t_subtable

from data.models import Role, normalize_username
from services import passwords
from services.errors import PasswordRejected
from studio_auth.settings import get_settings

COMMON_PASSWORDS = "data/common-passwords.txt.gz"
ROLE_WORDS = frozenset({r.value for r in Role} | {"administrator"})
SERVICE_WORDS = ("studio-auth", "studioauth", "studio auth")
# zxcvbn's score 3 and up: an estimated 10^8 guesses or more, which its authors rate safe
# from online guessing and moderately safe offline against a slow hash such as bcrypt.
MIN_SCORE = 3
# Parts of a name shorter than this ("jo") occur by chance in good passwords.
_MIN_PART = 3
_SEPARATORS = re.compile(r"[\W_]+")

# zxcvbn's matching is super-linear: it looks every substring up in its dictionaries, once
# per l33t spelling of the password, and the spellings multiply with each distinct l33t
# character, so a crafted or long input costs far more CPU than the bcrypt hash that
# follows the check (its README: send it "only the first 100 characters or so";
# zxcvbn-python 4.5 refuses over 72 after a reported denial of service,
# dwolfhub/zxcvbn-python#70). Only a prefix is analysed: at most ANALYSED_MAX_CHARS
# characters, and fewer where l33t characters would make the lookups cost more than those
# of that many characters with one spelling. Characters past it are not judged; a
# password is accepted only if its prefix alone is hard to guess.
ANALYSED_MAX_CHARS = 64
_MATCHING_BUDGET = 2 * ANALYSED_MAX_CHARS**2
_L33T_CHARACTERS = frozenset(c for substitutes in L33T_TABLE.values() for c in substitutes)

# zxcvbn keeps the user inputs of a call in a module-wide dictionary: two checks running
# at once would see each other's username. One check at a time.
_ZXCVBN_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords (lower-case), read once, on first use."""
    resource = resources.files("services").joinpath(COMMON_PASSWORDS)
    with resource.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        return frozenset(word for line in lines if (word := line.strip()))


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def analysed_prefix(password: str) -> str:
    """The part of ``password`` the strength estimate reads (see ANALYSED_MAX_CHARS)."""
    seen = ""
    spellings = 0
    for end, char in enumerate(password[:ANALYSED_MAX_CHARS], start=1):
        if char in _L33T_CHARACTERS and char not in seen:
            seen += char
            # zxcvbn's own count: it tries each of these spellings.
            spellings = len(enumerate_l33t_subs(relevant_l33t_subtable(seen, L33T_TABLE)))
        if (1 + spellings) * end * end > _MATCHING_BUDGET:
            return password[: end - 1]
    return password[:ANALYSED_MAX_CHARS]


def _context_words(username: object, role: object) -> dict[str, str]:
    """The words an attacker of this account tries first, each with what it is."""
    named: list[tuple[str, Iterable[str]]] = [
        ("this service's name", SERVICE_WORDS),
        ("the studio's name", [get_settings().studio_name]),
        ("a role name", sorted(ROLE_WORDS | ({role} if isinstance(role, str) else set()))),
    ]
    key = normalize_username(username)
    if key is not None:
        named.append(("the username", [key]))
    words: dict[str, str] = {}
    for what, texts in named:  # the username last: it names a shared word best
        for text in texts:
            whole = _fold(text).strip()
            parts = [p for p in _SEPARATORS.split(whole) if p]
            for word in {whole, "".join(parts), *(p for p in parts if len(p) >= _MIN_PART)}:
                if word:
                    words[word] = what
    return words


def _guessable(text: str, username: object, role: object) -> list[str]:
    """Why zxcvbn rates ``text`` guessable, in its words; empty when it does not."""
    context = _context_words(username, role)
    with _ZXCVBN_LOCK:
        result = zxcvbn(analysed_prefix(text), user_inputs=list(context))
    if result["score"] >= MIN_SCORE:
        return []
    feedback = result["feedback"]
    used = sorted(
        {
            f"It is built from {context[match['matched_word']]}."
            for match in result["sequence"]
            if match.get("dictionary_name") == "user_inputs"
            and match.get("matched_word") in context
        }
    )
    sentences = [feedback["warning"], *used, *feedback["suggestions"]]
    return ["password is too easy to guess: " + " ".join(s for s in sentences if s)]


def check_password(password: object, *, username: object = None, role: object = None) -> list[str]:
    """Why ``password`` breaks the policy: a list of reasons, empty when it is acceptable."""
    if not isinstance(password, str):
        return ["password must be text"]
    try:
        passwords.password_candidates(password)
    except ValueError as exc:  # the messages describe the input, never quote it
        return [str(exc)]
    normalized = unicodedata.normalize("NFKC", password)
    reasons = []
    minimum = get_settings().password_min_length
    if len(normalized) < minimum:
        reasons.append(f"password must be at least {minimum} characters long")
    if _fold(password).strip() in common_passwords():
        reasons.append("password is too common: it is on a list of frequently used passwords")
    else:
        reasons.extend(_guessable(normalized, username, role))
    return reasons


def enforce(password: object, *, username: object = None, role: object = None) -> str:
    """Return ``password`` if the policy accepts it; raise PasswordRejected(reasons)."""
    reasons = check_password(password, username=username, role=role)
    if reasons:
        raise PasswordRejected(reasons)
    assert isinstance(password, str)
    return password
