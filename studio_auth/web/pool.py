"""A bounded pool of worker threads for blocking work (bcrypt checks, throttle writes).

Work runs on ``workers`` threads with at most ``queue`` more jobs waiting; a job beyond
that is refused at once (``Overloaded``, answered 503 with Retry-After) instead of piling
up threads, memory and database connections. Waiting jobs start by priority, then in
order of arrival. The threads run at a lower CPU priority than the event loop, so that
work on them yields the CPU to the cheap requests the loop answers (``/auth/me``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from enum import IntEnum
from pathlib import Path
from typing import Any, TypeVar

from studio_auth.web.errors import Overloaded

T = TypeVar("T")

# How much lower than the event loop the pools' threads run (Linux "nice").
POOL_THREAD_NICENESS = 10


class Priority(IntEnum):
    """Which waiting job starts first: HIGH, then NORMAL, then LOW (a lower value first).
    A pool may also reserve its last slots for the higher priorities."""

    HIGH = 0
    NORMAL = 1
    LOW = 2


def _start_pool_thread() -> None:
    _set_os_thread_name()
    _lower_thread_priority()


def _set_os_thread_name() -> None:
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


def _lower_thread_priority() -> None:
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
    """Runs blocking work on ``workers`` threads with at most ``queue`` more jobs waiting:
    ``capacity`` slots in all, one per job from submission until its work ends. A job
    beyond that is refused at once (``Overloaded``). Waiting jobs start by ``Priority``,
    in the order they came within a priority. The threads are named ``name_0``,
    ``name_1``... in Python and in the OS."""

    def __init__(self, workers: int, queue: int, *, name: str) -> None:
        if workers < 1 or queue < 0:
            raise ValueError("workers must be >= 1 and queue >= 0")
        self.workers = workers
        self.capacity = workers + queue
        self._name = name
        self._lock = threading.Condition()
        # Guarded by the lock: jobs admitted and not yet finished, the waiting ones as a
        # heap of (priority, arrival, work, future), and the threads of the current start.
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

    def reserved_above(self, priority: Priority) -> int:
        """How many of the last slots are reserved for work above ``priority``, which may
        not take them. A plain pool reserves none."""
        return 0

    def check_capacity(self, priority: Priority) -> None:
        """Raise Overloaded now if a job of ``priority`` submitted now would be refused."""
        reserved = self.reserved_above(priority)
        with self._lock:
            self._refuse_if_full(reserved)

    def submit(self, work: Callable[[], T], priority: Priority) -> Future[T]:
        """Queue ``work`` at ``priority``, or raise Overloaded at once when it would take
        a slot reserved for higher priorities, or there is none."""
        reserved = self.reserved_above(priority)
        future: Future[T] = Future()
        with self._lock:
            self._refuse_if_full(reserved)
            # Threads start on first use and after a shutdown (an app can be started
            # again, as test clients do), before anything is admitted.
            if not self._threads:
                self._start_threads()
            self._admitted += 1
            heapq.heappush(self._waiting, (priority, next(self._arrivals), work, future))
            self._lock.notify()
        # A job cancelled while it waits (its client went away) frees its slot at once;
        # a running one keeps it until its work ends.
        future.add_done_callback(self._free_slot_if_cancelled)
        return future

    async def run(self, work: Callable[[], T], priority: Priority) -> T:
        """Run ``work`` in the pool at ``priority`` and wait for it without blocking the
        event loop."""
        return await asyncio.wrap_future(self.submit(work, priority))

    def _refuse_if_full(self, reserved: int) -> None:
        # Called with the lock held.
        if self._admitted >= self.capacity - reserved:
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
                _priority, _arrival, work, future = heapq.heappop(self._waiting)
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while waiting: its slot is already free
            try:
                result = work()
            except BaseException as exc:  # noqa: BLE001 (handed to the caller, as an executor does)
                # The slot is freed before the caller can see the outcome, so that a
                # caller who got its result always finds its slot free again.
                self._free_slot()
                future.set_exception(exc)
            else:
                self._free_slot()
                future.set_result(result)

    def _free_slot(self) -> None:
        with self._lock:
            self._admitted -= 1

    def _free_slot_if_cancelled(self, future: Future[Any]) -> None:
        if future.cancelled():
            self._free_slot()

    def shutdown(self) -> None:
        """Stop the threads after the running work; waiting work is cancelled."""
        with self._lock:
            threads, self._threads = self._threads, []
            waiting, self._waiting = self._waiting, []
            self._generation += 1
            self._lock.notify_all()
        for _priority, _arrival, _work, future in waiting:
            future.cancel()  # frees its slot
        for thread in threads:
            thread.join()
