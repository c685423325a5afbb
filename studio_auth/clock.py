"""The one source of "now" for expiry, throttling and timestamps; tests swap it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


_clock: Clock = system_clock


def now() -> datetime:
    """The current time, tz-aware UTC."""
    return _clock()


@contextmanager
def use_clock(clock: Clock) -> Iterator[None]:
    """Make ``now()`` read ``clock`` inside the block (all threads)."""
    global _clock
    previous, _clock = _clock, clock
    try:
        yield
    finally:
        _clock = previous
