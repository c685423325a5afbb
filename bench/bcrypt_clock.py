"""The time a call spends inside bcrypt, measured in place.

Figure 1 asks what ``authenticate()`` adds to the bcrypt check it runs. Comparing the
median of whole calls with the median of separate raw checks carries bcrypt's own
spread between single checks, far larger than what a call adds, into that difference.
Timing the bcrypt calls inside each call as well, the difference is measured on the
same call and bcrypt's spread cancels.

Standard library only: ``bench/peers/django_app.py`` imports it inside Django's
virtualenv too.
"""

from __future__ import annotations

import functools
import statistics
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any


class BcryptClock:
    """Wraps ``checkpw`` and ``hashpw`` of the ``bcrypt`` module (looked up by callers
    at call time, as pyca/bcrypt's users do) to add up the time spent in them on the
    measuring thread. ``raw_checkpw`` is the unwrapped function."""

    def __init__(self, bcrypt: ModuleType) -> None:
        self.raw_checkpw: Callable[[bytes, bytes], bool] = bcrypt.checkpw
        self._local = threading.local()
        for name in ("checkpw", "hashpw"):
            setattr(bcrypt, name, self._timed(getattr(bcrypt, name)))

    def _timed(self, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def timed(*args: Any) -> Any:
            start = time.perf_counter()
            try:
                return func(*args)
            finally:
                self._local.spent = getattr(self._local, "spent", 0.0) + (
                    time.perf_counter() - start
                )

        return timed

    def measure(self, call: Callable[[], object]) -> tuple[float, float]:
        """Run ``call``: its whole time and the time it spent inside bcrypt, in seconds."""
        self._local.spent = 0.0
        start = time.perf_counter()
        call()
        whole = time.perf_counter() - start
        return whole, self._local.spent


def in_place_ratio(added: list[float], raw: list[float]) -> float:
    """1 + the median time a path adds to its bcrypt work, over the median raw check."""
    return 1 + statistics.median(added) / statistics.median(raw)
