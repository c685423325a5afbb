"""Schemathesis, with every check, over every operation of a served instance (a real
``studio-auth serve`` process on 127.0.0.1), signed in as an admin: the OpenAPI document
is the contract a client generator reads, so any finding fails the test.

Run as a user would run it (``schemathesis run .../openapi.json --checks all``), in its
own process, on each database backend, bounded in examples per operation and in time.
Schemathesis signs in through ``POST /auth/login`` and signs in again whenever a request
gets 401 (it calls logout and revokes sessions too). What is not a finding is decided
in one place, ``schemathesis_hooks.py``, and said there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from data.models import Role, User
from tests.conftest import DEFAULT_PASSWORD
from tests.web.processes import serve

pytestmark = pytest.mark.slow

HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
# Operations whose 401 answers a wrong password in the body, which generated data never
# knows: schemathesis may warn that they only ever answered 401.
PASSWORD_CHECKS = {"POST /auth/password", "POST /auth/elevate"}
MAX_EXAMPLES = 25
RUN_TIMEOUT = 600
REQUEST_TIMEOUT = 30

CONFIG = f"""\
[auth.dynamic.openapi.HTTPBearer]
path = "/auth/login"
payload = {{ username = "root", password = "{DEFAULT_PASSWORD}" }}
extract_selector = "/access_token"

# Schemathesis's own list of refusals, and 413: a body over the size limit is refused
# before it is read, whatever else is wrong with it.
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422",
                     "428", "429", "5xx"]
"""


@pytest.fixture
def served(engine: Engine, make_user: Callable[..., User], tmp_path: Path) -> Iterator[str]:
    """A served instance on the ``engine`` database, with an admin, an assistant and an
    artist already there (so no one-time admin is made)."""
    make_user("root", role=Role.ADMIN)
    make_user("desk", role=Role.ASSISTANT)
    make_user("rin", role=Role.ARTIST)
    env = {
        "DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "STUDIO_AUTH_ENV": "test",
        "STUDIO_AUTH_BCRYPT_ROUNDS": "4",
        # Generated sign-ins fail by the hundred from 127.0.0.1 and some name "root":
        # with the default limits the throttle would soon refuse schemathesis's own
        # sign-in as the admin, and every later request would test only the 429.
        "STUDIO_AUTH_THROTTLE_FREE_FAILURES": "1000",
        "STUDIO_AUTH_THROTTLE_IP_MAX_FAILURES": "1000000",
    }
    with serve(env, tmp_path / "serve.log", cwd=tmp_path) as (base, _process):
        yield base


def test_schemathesis_finds_nothing(served: str, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        f"{served}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--generation-deterministic",  # the same requests every run, no example database
        "--workers",
        "1",
        "--request-timeout",
        str(REQUEST_TIMEOUT),
        "--no-color",
    ]
    done = subprocess.run(
        command,
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    # Every operation was tested, and signed in: a run that only ever got 401s passes too.
    selected = re.search(r"Selected: (\d+)/(\d+)", report)
    tested = re.search(r"Tested: (\d+)", report)
    assert selected and tested, report
    assert selected.group(1) == selected.group(2) == tested.group(1), report
    only_401 = re.search(r"401 Unauthorized \(\d+ operations?\):\n((?:  - .*\n)+)", report)
    refused = {line.strip()[2:] for line in only_401.group(1).splitlines()} if only_401 else set()
    assert refused <= PASSWORD_CHECKS, report
