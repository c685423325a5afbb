"""The bounded worker pool: slots, refusal when full, priority order, cancellation,
shutdown, and its threads' CPU priority and OS names."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError
from pathlib import Path

import pytest

from studio_auth.web.admission import PasswordPool
from studio_auth.web.errors import Overloaded
from studio_auth.web.pool import POOL_THREAD_NICENESS, BoundedPool, Priority
from tests.web.conftest import wait_for


def test_pool_refuses_at_once_beyond_workers_plus_queue() -> None:
    pool = BoundedPool(1, 1, name="password")
    release = threading.Event()
    try:
        first = pool.submit(release.wait, Priority.NORMAL)
        second = pool.submit(release.wait, Priority.NORMAL)  # queued
        with pytest.raises(Overloaded):
            pool.submit(release.wait, Priority.NORMAL)
        with pytest.raises(Overloaded):
            pool.check_capacity(Priority.HIGH)
        assert pool.admitted == 2
        release.set()
        assert first.result(timeout=10) and second.result(timeout=10)
        # Slots come back once the work is done.
        assert asyncio.run(pool.run(lambda: 42, Priority.NORMAL)) == 42
    finally:
        release.set()
        pool.shutdown()
    assert pool.admitted == 0


def test_waiting_work_starts_by_priority_then_in_order_of_arrival() -> None:
    pool = BoundedPool(1, 5, name="password")
    release = threading.Event()
    started: list[str] = []
    try:
        busy = pool.submit(release.wait, Priority.HIGH)
        jobs = [
            pool.submit(lambda name=name: started.append(name), priority)
            for name, priority in [
                ("low", Priority.LOW),
                ("normal 1", Priority.NORMAL),
                ("high", Priority.HIGH),
                ("normal 2", Priority.NORMAL),
            ]
        ]
        release.set()
        busy.result(timeout=10)
        for job in jobs:
            job.result(timeout=10)
    finally:
        release.set()
        pool.shutdown()
    assert started == ["high", "normal 1", "normal 2", "low"]


def test_a_failing_job_raises_to_its_caller_and_frees_its_slot_first() -> None:
    pool = BoundedPool(1, 0, name="throttle")

    def fail() -> None:
        raise ValueError("from the worker")

    try:
        with pytest.raises(ValueError, match="from the worker"):
            pool.submit(fail, Priority.NORMAL).result(timeout=10)
        assert pool.admitted == 0
        assert pool.submit(lambda: 3, Priority.NORMAL).result(timeout=10) == 3
    finally:
        pool.shutdown()


def test_a_job_cancelled_while_waiting_frees_its_slot_at_once() -> None:
    pool = BoundedPool(1, 1, name="throttle")
    release = threading.Event()
    try:
        running = pool.submit(release.wait, Priority.NORMAL)
        waiting = pool.submit(lambda: "never", Priority.NORMAL)
        with pytest.raises(Overloaded):
            pool.submit(lambda: "no room", Priority.NORMAL)
        assert waiting.cancel()  # its client went away
        assert pool.admitted == 1
        replacement = pool.submit(lambda: "room", Priority.NORMAL)
        release.set()
        assert running.result(timeout=10) is True
        assert replacement.result(timeout=10) == "room"
        assert pool.admitted == 0
    finally:
        release.set()
        pool.shutdown()


def test_shutdown_cancels_waiting_work_and_the_pool_starts_again() -> None:
    pool = BoundedPool(1, 2, name="throttle")
    release = threading.Event()
    running = pool.submit(release.wait, Priority.NORMAL)
    wait_for(running.running)
    waiting = [pool.submit(lambda: 1, Priority.NORMAL) for _ in range(2)]
    stopper = threading.Thread(target=pool.shutdown)
    stopper.start()
    for job in waiting:
        with pytest.raises(CancelledError):
            job.result(timeout=10)
    release.set()
    stopper.join(timeout=10)
    assert not stopper.is_alive()
    assert running.result(timeout=10) is True
    assert pool.admitted == 0
    try:
        # New threads, same pool.
        assert pool.submit(lambda: 2, Priority.NORMAL).result(timeout=10) == 2
    finally:
        pool.shutdown()


def test_pool_uses_several_threads_at_once() -> None:
    pool = BoundedPool(2, 0, name="password")
    barrier = threading.Barrier(2, timeout=10)
    try:
        # Both must be running at the same time for the barrier to open.
        jobs = [pool.submit(barrier.wait, Priority.NORMAL) for _ in range(2)]
        assert sorted(job.result(timeout=10) for job in jobs) == [0, 1]
    finally:
        pool.shutdown()


def _niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")
@pytest.mark.parametrize(
    "make_pool",
    [lambda: PasswordPool(1, 0), lambda: BoundedPool(1, 0, name="throttle")],
    ids=["password", "throttle"],
)
def test_sign_in_pool_threads_run_below_the_thread_that_started_them(
    make_pool: Callable[[], BoundedPool],
) -> None:
    # Under a flood, refused attempts and password checks must not delay the event loop
    # that answers token checks: both pools' threads run nicer than it.
    pool = make_pool()
    try:
        inside = pool.submit(_niceness, Priority.HIGH).result(timeout=10)
    finally:
        pool.shutdown()
    assert inside == min(19, _niceness() + POOL_THREAD_NICENESS)


def _os_thread_name() -> str:
    return Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc thread names are Linux's")
@pytest.mark.parametrize(
    ("make_pool", "expected"),
    [
        (lambda: PasswordPool(1, 0), "password_0"),
        (lambda: BoundedPool(1, 0, name="throttle"), "throttle_0"),
    ],
    ids=["password", "throttle"],
)
def test_sign_in_pool_threads_carry_their_names_in_the_os(
    make_pool: Callable[[], BoundedPool], expected: str
) -> None:
    # top -H and ps -L tell an operator which pool is using the CPU.
    before = _os_thread_name()
    pool = make_pool()
    try:
        inside = pool.submit(_os_thread_name, Priority.HIGH).result(timeout=10)
    finally:
        pool.shutdown()
    assert inside == expected
    assert _os_thread_name() == before  # the caller's thread keeps its own name
