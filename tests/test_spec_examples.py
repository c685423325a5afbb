"""Every code example of the specification runs as written and prints what a reader expects."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_python

# The specification, kept in the repository verbatim, so this check runs in every checkout.
SPEC = Path(__file__).resolve().parents[1] / "docs" / "specification.md"

HASH_EXAMPLE = """from services.auth import hash_password

# Hash a password for storage
hashed = hash_password("my_secure_password")
print(hashed)
"""

VERIFY_EXAMPLE = """from services.auth import verify_password

# Verify user login
stored_hash = "$2b$12$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
user_input = "my_secure_password"

if verify_password(user_input, stored_hash):
    print("Password is correct")
else:
    print("Invalid password")
"""

LOOKUP_EXAMPLE = """from services.auth import get_user_by_username
from data.db.session import SessionLocal

with SessionLocal() as db:
    user = get_user_by_username(db, "admin")
    if user:
        print(f"Found user: {user.username}, Role: {user.role}")
    else:
        print("User not found")
"""

AUTHENTICATE_EXAMPLE = """from services.auth import authenticate
from data.db.session import SessionLocal

with SessionLocal() as db:
    user_data = authenticate(db, "admin", "password123")

    if user_data:
        print(f"Login successful!")
        print(f"User ID: {user_data['id']}")
        print(f"Role: {user_data['role']}")
        print(f"Artist ID: {user_data.get('artist_id')}")
    else:
        print("Invalid credentials or inactive user")
"""

EXAMPLES = [HASH_EXAMPLE, VERIFY_EXAMPLE, LOOKUP_EXAMPLE, AUTHENTICATE_EXAMPLE]


def test_examples_are_the_specifications_own() -> None:
    assert SPEC.is_file(), f"the specification is missing: {SPEC}"
    spec = SPEC.read_text(encoding="utf-8")
    for example in EXAMPLES:
        assert example.strip() in spec


@pytest.fixture
def url(engine, make_user) -> str:
    make_user("admin", "password123", role="admin")
    return engine.url.render_as_string(hide_password=False)


def test_hash_example(url: str, tmp_path: Path) -> None:
    out = run_python(HASH_EXAMPLE, url, tmp_path).stdout.strip()
    assert out.startswith("$2b$04$") and len(out) == 60


def test_verify_example(url: str, tmp_path: Path) -> None:
    # The specification's stored hash is an illustration, not a hash of that input.
    assert run_python(VERIFY_EXAMPLE, url, tmp_path).stdout == "Invalid password\n"


def test_lookup_example(url: str, tmp_path: Path) -> None:
    assert run_python(LOOKUP_EXAMPLE, url, tmp_path).stdout == "Found user: admin, Role: admin\n"


def test_authenticate_example(url: str, tmp_path: Path) -> None:
    out = run_python(AUTHENTICATE_EXAMPLE, url, tmp_path).stdout
    assert out == "Login successful!\nUser ID: 1\nRole: admin\nArtist ID: None\n"


def test_authenticate_example_with_wrong_password(engine, make_user, tmp_path: Path) -> None:
    make_user("admin", "another password", role="admin")
    url = engine.url.render_as_string(hide_password=False)
    assert (
        run_python(AUTHENTICATE_EXAMPLE, url, tmp_path).stdout
        == "Invalid credentials or inactive user\n"
    )
