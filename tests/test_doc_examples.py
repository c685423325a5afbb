"""The examples of README.md, docs/api.md and docs/cli.md run as written on a fresh install:
a real ``studio-auth serve`` on an empty database, which prints the first admin's one-time
password.

The fenced blocks are read from the files. Only what cannot be known in advance is
substituted, as the docs say: the port in ``http://127.0.0.1:8000`` and
``PRINTED-PASSWORD``. Shell blocks run in order in one bash (``-euo pipefail``), with
curl told to fail on an HTTP error (a ``.curlrc`` in ``CURL_HOME``, so the commands stay
as written); Python blocks run in order, each in a fresh interpreter.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import run_python
from tests.web.processes import serve

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("curl") is None, reason="the examples need curl"),
]

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTED_URL = "http://127.0.0.1:8000"
PASSWORD_PLACEHOLDER = "PRINTED-PASSWORD"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
PRINTED = re.compile(r"one-time password[^:]*: (\S+)")


def fenced(path: str, language: str) -> list[str]:
    """The fenced blocks of ``path`` (from the repository root) in ``language``."""
    text = (ROOT / path).read_text(encoding="utf-8")
    return [body for lang, body in FENCE.findall(text) if lang == language]


@dataclass
class FreshInstall:
    url: str
    printed_password: str
    database_url: str
    home: Path

    def substitute(self, block: str) -> str:
        return block.replace(DOCUMENTED_URL, self.url).replace(
            PASSWORD_PLACEHOLDER, self.printed_password
        )

    def run_shell(self, blocks: list[str], **env: str) -> str:
        """Run ``blocks`` in order in one bash; fail the test on the first that fails."""
        assert blocks
        script = ["set -euo pipefail"]
        for number, block in enumerate(blocks, 1):
            script += [f"echo '--- example {number}' >&2", self.substitute(block)]
        (self.home / ".curlrc").write_text("fail-with-body\nshow-error\nno-progress-meter\n")
        bin_dir = str(Path(sys.executable).parent)
        done = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            env={
                **os.environ,
                "CURL_HOME": str(self.home),
                "DATABASE_URL": self.database_url,
                "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
                **env,
            },
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"{done.stderr[-4000:]}\n{done.stdout[-4000:]}"
        return done.stdout


@pytest.fixture
def fresh_install(tmp_path: Path) -> Iterator[FreshInstall]:
    database_url = f"sqlite:///{tmp_path / 'studio_auth.db'}"
    env = {
        "DATABASE_URL": database_url,
        "STUDIO_AUTH_ENV": "test",
        "STUDIO_AUTH_BCRYPT_ROUNDS": "4",
    }
    out = tmp_path / "serve.log"
    with serve(env, out, cwd=tmp_path) as (url, _process):
        printed = PRINTED.search(out.read_text())
        assert printed, out.read_text()
        yield FreshInstall(url, printed.group(1), database_url, tmp_path)


def test_the_api_examples(fresh_install: FreshInstall) -> None:
    examples = [block for block in fenced("docs/api.md", "sh") if "curl " in block]
    assert len(examples) >= 15
    out = fresh_install.run_shell(examples)
    # What the examples say they get on a fresh install.
    assert '"username":"rin","role":"artist","artist_id":1,"must_change_password":true' in out
    assert '{"id":1,"name":"Rin Okabe-Hart"' in out
    assert '{"session_id":4,' in out


def test_the_readme_examples(fresh_install: FreshInstall) -> None:
    curl = [block for block in fenced("README.md", "sh") if "curl " in block]
    out = fresh_install.run_shell(curl)
    assert '"must_change_password":true' in out  # the first admin's first sign-in
    python = fenced("README.md", "python")
    assert len(python) == 3
    outputs = [
        run_python(example, fresh_install.database_url, fresh_install.home).stdout
        for example in python
    ]
    assert outputs[1] == "True\n"
    assert outputs[2].startswith(
        "{'id': 2, 'username': 'ana', 'role': 'assistant', 'artist_id': None,"
    )


def test_the_cli_examples(fresh_install: FreshInstall) -> None:
    out = fresh_install.run_shell(
        fenced("docs/cli.md", "sh"), PASSWORD="velvet thunder over the harbour"
    )
    assert '"id": 1' in out
    assert "deactivated: rin" in out
