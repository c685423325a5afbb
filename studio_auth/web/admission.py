"""Sign-in admission: which priority a password check gets, and the password pool whose
last slots are reserved for the higher priorities.

- ``HIGH``: a sign-in from an address that has signed in successfully in this process
  (a studio's front desk), or the work of a signed-in user (a password change, say);
- ``NORMAL``: any other sign-in without recent failures;
- ``LOW``: a sign-in with recent failures under its name (the names a flood attacks) or
  many from its address.

A spray of guesses for unknown names from fresh addresses looks like any new sign-in:
it can fill the slots open to NORMAL work, but staff signing in from their usual address
still find a slot and go first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from services.throttle import Attempt
from studio_auth.web.pool import BoundedPool, Priority


class PasswordPool(BoundedPool):
    """The pool that checks passwords. LOW work may not take its last
    ``reserved_above_low`` slots (one round of workers, taken from the queue), NORMAL
    work not the last ``reserved_above_normal`` (half a round, rounded up); HIGH work may
    take every slot."""

    def __init__(self, workers: int, queue: int) -> None:
        super().__init__(workers, queue, name="password")
        self.reserved_above_low = min(workers, queue)
        self.reserved_above_normal = (self.reserved_above_low + 1) // 2

    def reserved_above(self, priority: Priority) -> int:
        if priority is Priority.LOW:
            return self.reserved_above_low
        return self.reserved_above_normal if priority is Priority.NORMAL else 0


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


def priority_of_address(known: KnownAddresses, address: str | None) -> Priority:
    """A sign-in's priority before its attempt is counted: HIGH from a known address."""
    return Priority.HIGH if address in known else Priority.NORMAL


def priority_of_attempt(attempt: Attempt, address_priority: Priority) -> Priority:
    """A sign-in's priority once its attempt is counted: recent failures (under the name,
    or many from the address) outweigh a known address."""
    return Priority.LOW if attempt.has_recent_failures else address_priority
