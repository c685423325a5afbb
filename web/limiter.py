"""The bounded thread pools of the sign-in path.

bcrypt releases the GIL, so checks on separate threads use separate cores; but each one
holds a thread, memory and a database connection for a quarter of a second. At most
``workers`` run at once and at most ``queue`` more wait; a request beyond that is
refused at once (``Overloaded``, answered 503 with Retry-After) instead of piling up.
The last ``min(workers, queue)`` places are kept for clean sign-ins: a suspect sign-in
(for a name with recent failures, the names a flood attacks, or from an address with
many) is refused when only those are left.

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
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from web.errors import Overloaded

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
    a job beyond that is refused at once (``Overloaded``). Its threads run at a lower CPU
    priority than the thread that started them, under their own names in the OS."""

    def __init__(self, workers: int, queue: int, *, name: str) -> None:
        if workers < 1 or queue < 0:
            raise ValueError("workers must be >= 1 and queue >= 0")
        self.workers = workers
        self.capacity = workers + queue
        self._name = name
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._admitted = 0

    @property
    def admitted(self) -> int:
        """Jobs running or waiting now."""
        with self._lock:
            return self._admitted

    def check_capacity(self) -> None:
        """Raise Overloaded now if a job submitted now would be refused."""
        with self._lock:
            self._refuse_if_full(keep=0)

    def submit(self, work: Callable[[], T], *, keep: int = 0) -> Future[T]:
        """Queue ``work`` or raise Overloaded at once when it would leave fewer than
        ``keep`` places free."""
        with self._lock:
            self._refuse_if_full(keep=keep)
            self._admitted += 1
            # Threads start on first use and after a shutdown (an app can be started
            # again, as test clients do).
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.workers,
                    thread_name_prefix=self._name,
                    initializer=_start_pool_thread,
                )
            executor = self._executor
        try:
            future = executor.submit(work)
        except BaseException:
            self._release()
            raise
        # Released when the work ends, not when the caller stops waiting: a client that
        # disconnects does not free a slot whose thread is still busy.
        future.add_done_callback(lambda _done: self._release())
        return future

    async def run(self, work: Callable[[], T]) -> T:
        """Run ``work`` in the pool and wait for it without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(work))

    def _refuse_if_full(self, *, keep: int) -> None:
        # Called with the lock held.
        if self._admitted >= self.capacity - keep:
            raise Overloaded

    def _release(self) -> None:
        with self._lock:
            self._admitted -= 1

    def shutdown(self) -> None:
        """Stop the threads after the running work; queued work is cancelled."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


class PasswordLimiter(BoundedPool):
    """The password-check pool: its last ``spare`` places are kept for clean sign-ins."""

    def __init__(self, workers: int, queue: int) -> None:
        super().__init__(workers, queue, name="password")
        # Places kept for clean sign-ins: one round of workers, taken from the queue.
        self.spare = min(workers, queue)

    def submit(self, work: Callable[[], T], *, keep: int = 0, suspect: bool = False) -> Future[T]:
        """Queue ``work`` or raise Overloaded at once when the pool and queue are full.

        ``suspect`` work (a sign-in with recent failures under its name, or many from its
        address) is refused already when only ``spare`` places are left, so that a flood
        of attempts on attacked names cannot take every place from clean sign-ins.
        """
        return super().submit(work, keep=max(keep, self.spare if suspect else 0))

    async def run(self, work: Callable[[], T], *, suspect: bool = False) -> T:
        """Run ``work`` in the pool and wait for it without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(work, suspect=suspect))
