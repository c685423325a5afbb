"""The bounded thread pools of the sign-in path.

bcrypt releases the GIL, so checks on separate threads use separate cores; but each one
holds a thread, memory and a database connection for a quarter of a second. At most
``workers`` run at once and at most ``queue`` more wait; a request beyond that is
refused at once (``Overloaded``, answered 503 with Retry-After) instead of piling up.

Who gets the places, and in which order, depends on the sign-in's standing:

- ``KNOWN``: from an address that has signed in successfully in this process before (a
  studio's front desk), or the work of a signed-in user (a password change, say);
- ``NEW``: any other sign-in without recent failures;
- ``SUSPECT``: recent failures under its name (the names a flood attacks) or many from
  its address.

A new sign-in cannot take the last ``reserved`` places and a suspect one the last
``spare`` (one round of workers, taken from the queue), and waiting work starts in that
order (first come, first served within a standing). A spray of guesses for unknown names
from fresh addresses looks like any new sign-in: it can fill the pool, but staff signing
in from their usual address still find a place and go first.

Before that, every attempt is counted by the throttle on a small pool of its own (one
thread on SQLite, which has one writer at a time), not on the framework's shared pool of
forty: under a flood of throttled attempts a few threads take the writes in turn instead
of dozens contending for the interpreter lock and the database's write lock.

Both pools are separate from the event loop that serves token-only requests
(``/auth/me``), so those never wait behind password checks, and the threads of both run
at a lower CPU priority than the loop: a flood of sign-in attempts, refused or checked,
takes the CPU only when the loop does not want it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from enum import IntEnum
from pathlib import Path
from typing import Any, TypeVar

from studio_auth.web.errors import Overloaded

T = TypeVar("T")

# How much lower than the event loop the sign-in pools' threads run (Linux "nice").
POOL_THREAD_NICENESS = 10


def _start_pool_thread() -> None:
    _name_for_the_os()
    _yield_to_requests()


def _name_for_the_os() -> None:
    """Give this thread its Python name (``password_0``, ``throttle_0``) in the OS too, as
    ``top -H``, ``ps -L`` and /proc show it, so an operator can tell the pools' CPU from
    the event loop's. Linux only (at most 15 characters); elsewhere this does nothing."""
    if not sys.platform.startswith("linux"):
        return
    comm = Path(f"/proc/self/task/{threading.get_native_id()}/comm")
    try:
        comm.write_text(threading.current_thread().name[:15])
    except OSError:  # a sandbox may refuse; the name is for operators only
        return


def _yield_to_requests() -> None:
    """Lower this pool thread's CPU priority.

    When bcrypt keeps every core busy, or a flood keeps the throttle counting, the event
    loop thread would otherwise wait its turn behind that work, and every cheap request
    (token checks, health) would pay up to a scheduler slice of latency. On Linux a
    thread's own id works with setpriority, so only the pool threads run nicer;
    elsewhere this does nothing.
    """
    if not hasattr(os, "setpriority") or not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + POOL_THREAD_NICENESS))
    except OSError:  # a sandbox may refuse; priorities are an optimisation only
        return


class BoundedPool:
    """Runs blocking work on ``workers`` threads with at most ``queue`` more jobs waiting;
    a job beyond that is refused at once (``Overloaded``). Waiting jobs start lowest
    ``rank`` first, in the order they came within a rank. The threads run at a lower CPU
    priority than the thread that started them, under their own names in the OS
    (``name_0``, ``name_1``...)."""

    def __init__(self, workers: int, queue: int, *, name: str) -> None:
        if workers < 1 or queue < 0:
            raise ValueError("workers must be >= 1 and queue >= 0")
        self.workers = workers
        self.capacity = workers + queue
        self._name = name
        self._lock = threading.Condition()
        # Guarded by the lock: jobs admitted and not yet finished, the waiting ones as a
        # heap of (rank, arrival, work, future), and the threads of the current start.
        self._admitted = 0
        self._waiting: list[tuple[int, int, Callable[[], Any], Future[Any]]] = []
        self._arrivals = itertools.count()
        self._threads: list[threading.Thread] = []
        self._generation = 0

    @property
    def admitted(self) -> int:
        """Jobs running or waiting now."""
        with self._lock:
            return self._admitted

    def check_capacity(self, *, keep: int = 0) -> None:
        """Raise Overloaded now if a job submitted now with ``keep`` would be refused."""
        with self._lock:
            self._refuse_if_full(keep=keep)

    def submit(self, work: Callable[[], T], *, rank: int = 0, keep: int = 0) -> Future[T]:
        """Queue ``work`` at ``rank`` or raise Overloaded at once when it would leave fewer
        than ``keep`` places free."""
        future: Future[T] = Future()
        with self._lock:
            self._refuse_if_full(keep=keep)
            # Threads start on first use and after a shutdown (an app can be started
            # again, as test clients do), before anything is admitted.
            if not self._threads:
                self._start_threads()
            self._admitted += 1
            heapq.heappush(self._waiting, (rank, next(self._arrivals), work, future))
            self._lock.notify()
        # A job cancelled while it waits (its client went away) gives its place back at
        # once; a running one keeps it until its work ends.
        future.add_done_callback(self._release_if_cancelled)
        return future

    async def run(self, work: Callable[[], T], *, rank: int = 0, keep: int = 0) -> T:
        """Run ``work`` in the pool and wait for it without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(work, rank=rank, keep=keep))

    def _refuse_if_full(self, *, keep: int) -> None:
        # Called with the lock held.
        if self._admitted >= self.capacity - keep:
            raise Overloaded

    def _start_threads(self) -> None:
        # Called with the lock held.
        generation = self._generation
        self._threads = [
            threading.Thread(
                target=self._serve, args=(generation,), name=f"{self._name}_{i}", daemon=True
            )
            for i in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()

    def _serve(self, generation: int) -> None:
        _start_pool_thread()
        while True:
            with self._lock:
                while not self._waiting and generation == self._generation:
                    self._lock.wait()
                if generation != self._generation:
                    return
                _rank, _arrival, work, future = heapq.heappop(self._waiting)
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while waiting: its place is already given back
            try:
                result = work()
            except BaseException as exc:  # noqa: BLE001 (handed to the caller, as an executor does)
                # The place is given back before the caller can see the outcome, so that
                # a caller who got its result always finds its place free again.
                self._release()
                future.set_exception(exc)
            else:
                self._release()
                future.set_result(result)

    def _release(self) -> None:
        with self._lock:
            self._admitted -= 1

    def _release_if_cancelled(self, future: Future[Any]) -> None:
        if future.cancelled():
            self._release()

    def shutdown(self) -> None:
        """Stop the threads after the running work; waiting work is cancelled."""
        with self._lock:
            threads, self._threads = self._threads, []
            waiting, self._waiting = self._waiting, []
            self._generation += 1
            self._lock.notify_all()
        for _rank, _arrival, _work, future in waiting:
            future.cancel()  # gives its place back
        for thread in threads:
            thread.join()


class Standing(IntEnum):
    """How far a password check's requester is trusted; lower goes first (see above)."""

    KNOWN = 0
    NEW = 1
    SUSPECT = 2


class PasswordLimiter(BoundedPool):
    """The password-check pool: its last ``reserved`` places are kept for known
    requesters, and its last ``spare`` (one round of workers) from suspect ones."""

    def __init__(self, workers: int, queue: int) -> None:
        super().__init__(workers, queue, name="password")
        self.spare = min(workers, queue)
        self.reserved = (self.spare + 1) // 2

    def keep_for(self, standing: Standing) -> int:
        """The places that work of ``standing`` may not take."""
        if standing is Standing.SUSPECT:
            return self.spare
        return self.reserved if standing is Standing.NEW else 0

    def check_standing(self, standing: Standing) -> None:
        """Raise Overloaded now if work of ``standing`` submitted now would be refused."""
        self.check_capacity(keep=self.keep_for(standing))

    def submit_as(self, work: Callable[[], T], standing: Standing) -> Future[T]:
        """Queue ``work`` for a requester of ``standing``, or raise Overloaded at once."""
        return self.submit(work, rank=standing, keep=self.keep_for(standing))

    async def run_as(self, work: Callable[[], T], standing: Standing) -> T:
        """``run`` for a requester of ``standing``."""
        return await self.run(work, rank=standing, keep=self.keep_for(standing))


class KnownAddresses:
    """Client addresses that signed in successfully in this process, at most ``limit``
    of them (the least recently successful are forgotten first). Only a correct password
    adds one, so a flood cannot fill it; a restart forgets it, which costs a known
    address its head start until its next sign-in."""

    def __init__(self, limit: int = 4096) -> None:
        self._limit = limit
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, address: object) -> bool:
        with self._lock:
            return isinstance(address, str) and address in self._seen

    def add(self, address: str | None) -> None:
        if address is None:
            return
        with self._lock:
            self._seen[address] = None
            self._seen.move_to_end(address)
            while len(self._seen) > self._limit:
                self._seen.popitem(last=False)
