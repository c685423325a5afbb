"""Sign-in admission: the password pool's reserved slots, known addresses, and the
priority a sign-in gets."""

from __future__ import annotations

import asyncio
import threading

import pytest

from services.throttle import Attempt
from studio_auth.web.admission import (
    KnownAddresses,
    PasswordPool,
    priority_of_address,
    priority_of_attempt,
)
from studio_auth.web.errors import Overloaded
from studio_auth.web.pool import Priority


def test_password_pool_reserves_its_last_slots_by_priority() -> None:
    pool = PasswordPool(workers=2, queue=4)
    assert (pool.reserved_above_low, pool.reserved_above_normal) == (2, 1)
    release = threading.Event()
    try:
        jobs = [pool.submit(release.wait, Priority.LOW) for _ in range(4)]
        with pytest.raises(Overloaded):
            pool.submit(release.wait, Priority.LOW)
        jobs.append(pool.submit(release.wait, Priority.NORMAL))
        with pytest.raises(Overloaded):
            pool.check_capacity(Priority.NORMAL)
        with pytest.raises(Overloaded):
            pool.submit(release.wait, Priority.NORMAL)
        pool.check_capacity(Priority.HIGH)
        jobs.append(pool.submit(release.wait, Priority.HIGH))
        with pytest.raises(Overloaded):
            pool.submit(release.wait, Priority.HIGH)
        assert pool.admitted == 6
        release.set()
        assert all(job.result(timeout=10) for job in jobs)
    finally:
        release.set()
        pool.shutdown()


@pytest.mark.parametrize(
    ("workers", "queue", "reserved_above_low", "reserved_above_normal"),
    [(1, 0, 0, 0), (2, 1, 1, 1), (1, 4, 1, 1), (2, 4, 2, 1), (8, 4, 4, 2)],
)
def test_reserved_slots_never_shut_any_priority_out(
    workers: int, queue: int, reserved_above_low: int, reserved_above_normal: int
) -> None:
    pool = PasswordPool(workers=workers, queue=queue)
    assert (pool.reserved_above_low, pool.reserved_above_normal) == (
        reserved_above_low,
        reserved_above_normal,
    )
    assert pool.capacity - pool.reserved_above_low >= workers
    for priority in Priority:
        assert asyncio.run(pool.run(lambda: 7, priority)) == 7
    pool.shutdown()


def test_known_addresses_keep_the_most_recent_within_their_limit() -> None:
    known = KnownAddresses(limit=2)
    for address in ("192.0.2.1", "192.0.2.2", "192.0.2.1", "192.0.2.3"):
        known.add(address)
    known.add(None)
    assert "192.0.2.1" in known and "192.0.2.3" in known
    assert "192.0.2.2" not in known  # the least recently successful went first
    assert None not in known


def test_a_known_address_gets_high_priority_and_any_other_normal() -> None:
    known = KnownAddresses()
    known.add("192.0.2.1")
    assert priority_of_address(known, "192.0.2.1") is Priority.HIGH
    assert priority_of_address(known, "198.51.100.9") is Priority.NORMAL
    assert priority_of_address(known, None) is Priority.NORMAL


@pytest.mark.parametrize("address_priority", [Priority.HIGH, Priority.NORMAL])
def test_recent_failures_outweigh_a_known_address(address_priority: Priority) -> None:
    def attempt(has_recent_failures: bool) -> Attempt:
        return Attempt(
            user_key="ana",
            ip_key=None,
            ip_window_start=None,
            allowed=True,
            has_recent_failures=has_recent_failures,
        )

    assert priority_of_attempt(attempt(True), address_priority) is Priority.LOW
    assert priority_of_attempt(attempt(False), address_priority) is address_priority
