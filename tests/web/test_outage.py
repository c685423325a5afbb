"""When the database goes away, every endpoint that needs it answers 503 problem details
and grants nothing; when it comes back, the service recovers by itself."""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from data.db.session import make_engine, make_sessionmaker
from data.models import Role, User
from services import passwords
from studio_auth.settings import Settings
from studio_auth.web.app import create_app
from tests.conftest import DEFAULT_PASSWORD
from tests.web.conftest import assert_problem, bearer


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a server; ``stop`` cuts every connection and refuses
    new ones, ``start`` listens again on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.start()

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self._listener is not listener:
                client.close()
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self._listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone may not.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()


@dataclass
class Outage:
    engine: Engine
    cut: Callable[[], None]
    restore: Callable[[], None]


@pytest.fixture
def outage(engine: Engine, tmp_path: Path) -> Iterator[Outage]:
    """An engine whose database can be taken away and given back."""
    if engine.dialect.name == "sqlite":
        folder, gone = tmp_path / "live", tmp_path / "gone"
        folder.mkdir()
        assert engine.url.database
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copy(engine.url.database, folder / "auth.db")
        flaky = make_engine(f"sqlite:///{folder / 'auth.db'}")

        def cut() -> None:
            flaky.dispose()  # open files would outlive the rename
            folder.rename(gone)

        def restore() -> None:
            gone.rename(folder)

        yield Outage(flaky, cut, restore)
        flaky.dispose()
        return
    assert engine.url.host and engine.url.port
    proxy = TcpProxy(engine.url.host, engine.url.port)
    url = engine.url.set(host="127.0.0.1", port=proxy.port)
    flaky = make_engine(url.render_as_string(hide_password=False), pool_timeout=5)
    try:
        yield Outage(flaky, proxy.stop, proxy.start)
    finally:
        flaky.dispose()
        proxy.stop()


def test_database_outage_is_503_then_recovers(outage: Outage) -> None:
    with make_sessionmaker(outage.engine)() as db:
        db.add(
            User(
                username="ana",
                password_hash=passwords.hash_password(DEFAULT_PASSWORD),
                role=Role.ADMIN,
            )
        )
        db.commit()
    credentials = {"username": "ana", "password": DEFAULT_PASSWORD}
    app = create_app(Settings(), engine=outage.engine)
    with TestClient(app) as client:
        token = client.post("/auth/login", json=credentials).json()["access_token"]
        assert client.get("/auth/me", headers=bearer(token)).status_code == 200

        outage.cut()
        if app.state.loop_reader is not None:
            # The event-loop reader's open file would outlive the rename too.
            app.state.loop_reader.dispose()
        try:
            for response in [
                client.get("/auth/me", headers=bearer(token)),
                client.post("/auth/login", json=credentials),
                client.post("/auth/login", json={"username": "ana", "password": "wrong"}),
                client.get("/users", headers=bearer(token)),
                client.post("/auth/logout", headers=bearer(token)),
                client.get("/readyz"),
            ]:
                problem = assert_problem(response, 503)
                assert response.headers["retry-after"]
                assert "access_token" not in response.text
                assert DEFAULT_PASSWORD not in response.text
                assert problem["type"] in (
                    "urn:studio-auth:problem:unavailable",
                    "urn:studio-auth:problem:not-ready",
                )
            assert client.get("/healthz").status_code == 200
        finally:
            outage.restore()

        # Back without a restart: the same token works, and so does signing in.
        assert client.get("/auth/me", headers=bearer(token)).status_code == 200
        assert client.get("/readyz").status_code == 200
        assert client.post("/auth/login", json=credentials).status_code == 200
        assert client.get("/users", headers=bearer(token)).status_code == 200
