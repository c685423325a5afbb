"""The password policy: length, the common-password list, and zxcvbn's strength estimate
with the account's own words, on a bounded prefix."""

from __future__ import annotations

import logging
import random
import string
import sys
import threading

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from data.models import AuditEvent, Role
from services.errors import PasswordRejected
from services.password_policy import (
    ANALYSED_MAX_CHARS,
    analysed_prefix,
    check_password,
    common_passwords,
    enforce,
)
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
    assert "at least" not in _reasons("x7#Lq!9v")  # (8 characters are under 10^8 guesses)
    assert check_password("x7#Lq!9vR") == []
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
    ["1234567890123", "password1234", "PASSWORD1234", "  qazwsxedcrfvtgb  "],
)
def test_passwords_on_the_common_list_are_rejected(password):
    assert _reasons(password) == (
        "password is too common: it is on a list of frequently used passwords"
    )


@pytest.mark.parametrize(
    ("password", "feedback"),
    [
        ("aaaaaaaaaaaa", 'Repeats like "aaa" are easy to guess.'),
        ("123456789012", "This is similar to a commonly used password."),
        ("qwertyuiopas", "This is similar to a commonly used password."),
        ("abcabcabcabc", 'Repeats like "abcabcabc" are only slightly harder'),
        ("\t" * 12, 'Repeats like "aaa" are easy to guess.'),
        (" " * 16, 'Repeats like "aaa" are easy to guess.'),
        ("abcdefghijklmnop", 'Sequences like "abc" or "6543" are easy to guess.'),
        ("zxcvbnmasdfghjkl", "This is similar to a commonly used password."),
        ("P@ssw0rd2024!", "Predictable substitutions like '@' instead of 'a'"),
        ("Winter2024Winter2024", 'Repeats like "abcabcabc" are only slightly harder'),
    ],
)
def test_guessable_passwords_are_rejected_with_zxcvbns_feedback(password, feedback):
    [reason] = check_password(password)
    assert reason.startswith("password is too easy to guess: ")
    assert feedback in reason
    assert "Add another word or two." in reason  # what to do instead


@pytest.mark.parametrize(
    ("password", "username", "built_from"),
    [
        ("kowalczykowa1987", "Kowalczykowa", "the username"),
        ("aliceanderson2026", "alice.anderson", "the username"),
        ("alice" + "!" * 12, "alice", "the username"),
        ("Administrator1234", None, "a role name"),
        ("administrator2026", None, "a role name"),
        ("studio-auth-2026", None, "this service's name"),
    ],
)
def test_passwords_built_from_the_accounts_words_are_rejected(password, username, built_from):
    assert f"It is built from {built_from}." in _reasons(password, username=username)


def test_the_username_is_what_makes_it_guessable():
    assert check_password("kowalczykowa1987", username="someone.else") == []
    assert "built from the username" in _reasons("kowalczykowa1987", username="kowalczykowa")


def test_studio_name(settings_env):
    assert check_password("blacklotustattoo2026") == []
    settings_env(studio_name="Black Lotus Tattoo")
    assert "It is built from the studio's name." in _reasons("blacklotustattoo2026")
    assert check_password("a black lotus grows in my garden") == []


def test_names_inside_a_real_passphrase_are_fine():
    assert check_password("alice paints koi on tuesdays", username="alice") == []
    assert check_password("the artist who never sleeps") == []


def test_long_passwords_are_judged_by_a_bounded_prefix():
    assert analysed_prefix("x" * 4000) == "x" * ANALYSED_MAX_CHARS
    # The prefix alone decides: a weak one is refused whatever follows ...
    assert "too easy to guess" in _reasons("a" * ANALYSED_MAX_CHARS + "Zq8!vX2#mK0p-" * 20)
    # ... and what follows a strong one is not judged.
    assert check_password("Zq8!vX2#mK0p-velvet thunder" + "a" * 200) == []


_RNG = random.Random(18)
_L33T = "4@8({[<369!1|70$5+%2"  # every character zxcvbn reads as a l33t letter
CRAFTED = ["1|!7+$5%(<[{0234@698" * 5] + [
    ("".join(_RNG.sample(_L33T, len(_L33T))) * 8)[:100] for _ in range(20)
]
GENERATED = [
    "".join(_RNG.choice(string.ascii_letters + string.digits + string.punctuation)
            for _ in range(length))
    for length in (12, 16, 20, 64, 100) for _ in range(6)
]  # fmt: skip


@pytest.mark.parametrize("password", CRAFTED + GENERATED)
def test_l33t_characters_shorten_the_prefix_so_zxcvbns_work_stays_bounded(password):
    from zxcvbn.matching import L33T_TABLE, enumerate_l33t_subs, relevant_l33t_subtable

    prefix = analysed_prefix(password)
    assert password.startswith(prefix)
    # zxcvbn looks every substring up once per spelling, and once unsubstituted.
    spellings = len(enumerate_l33t_subs(relevant_l33t_subtable(prefix, L33T_TABLE)))
    assert (1 + spellings) * len(prefix) ** 2 <= 2 * ANALYSED_MAX_CHARS**2


@pytest.mark.parametrize("password", GENERATED)
def test_generated_passwords_full_of_symbols_are_still_accepted(password):
    assert check_password(password) == []


def test_concurrent_checks_see_only_their_own_username():
    """zxcvbn keeps each call's user inputs module-wide; the policy serializes calls."""
    done = threading.Event()

    def other_account() -> None:
        while not done.is_set():
            check_password("velvet thunder over the harbour", username="someone.else")

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    thread = threading.Thread(target=other_account)
    thread.start()
    try:
        refused = [bool(check_password("kowalczykowa1987", username="kowalczykowa"))
                   for _ in range(200)]  # fmt: skip
    finally:
        done.set()
        thread.join()
        sys.setswitchinterval(previous)
    assert all(refused)


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
    password = "alice!!!!"
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
        create_user(db, "winter", "Winter2024Winter2024", Role.ASSISTANT)
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
