"""Real ``studio-auth serve`` processes for tests: free port, start, wait, stop."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _command() -> list[str]:
    found = shutil.which("studio-auth", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-c", "from studio_auth.cli import main; main()"]


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End the process group: SIGTERM, then SIGKILL if it has not gone in 10 s."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextlib.contextmanager
def serve(
    env: dict[str, str], log: Path, *, cwd: Path | None = None, timeout: float = 60.0
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run ``studio-auth serve`` on a free 127.0.0.1 port with ``env`` added to this
    process's environment; yield its base URL and process once ``/readyz`` answers 200.
    Output goes to ``log``; the process is always stopped on the way out."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited with {proc.returncode}:\n{log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"serve did not become ready:\n{log.read_text()}")
            time.sleep(0.1)
        yield url, proc
    finally:
        stop(proc)
