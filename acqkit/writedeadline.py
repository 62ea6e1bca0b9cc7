"""A writer task's send deadline as one cancel scope for the task's whole life, armed only around each write.

``with anyio.fail_after(...)`` around every write builds and enters a cancel scope each time (about 20 µs of
CPU on this project's 2-core test machine, on uvloop); moving the deadline of one scope the task already holds
costs about a quarter of that. A task that writes in a loop (an outbox, a link writer, a server answering a
connection) enters :attr:`WriteDeadline.scope` once, calls :meth:`arm` before each write and :meth:`disarm`
after it, and checks :attr:`expired` when the scope has ended::

    deadline = WriteDeadline(SEND_TIMEOUT_S)
    with deadline.scope:
        while ...:
            await wait_for_something_to_write()   # disarmed: no deadline while waiting for work
            deadline.arm()
            await conn.send_many(batch)
            deadline.disarm()
    if deadline.expired:
        ...  # a write took longer than the timeout: the task was cancelled out of it

A scope whose deadline only has to be pushed back while work keeps coming (an idle timeout, a busy connection's
send timeout) uses :func:`push_deadline`, which moves it about once per ``slack`` instead of on every call.
"""

from __future__ import annotations

import math

import anyio


def push_deadline(scope: anyio.CancelScope, timeout: float, slack: float) -> None:
    """Leave ``scope``'s deadline between ``timeout`` and ``timeout + slack`` from now: moved (to the far end)
    only when it is not already there, so a caller pushing it on every message moves it about once per ``slack``.
    A wait so bounded ends at least ``timeout`` and at most ``timeout + slack`` after the last push."""
    now = anyio.current_time()
    if not timeout <= scope.deadline - now <= timeout + slack:
        scope.deadline = now + timeout + slack


class WriteDeadline:
    """``timeout`` seconds for each write between :meth:`arm` and :meth:`disarm`; :meth:`cancel` ends the task's
    scope from outside (not an expiry)."""

    __slots__ = ("_armed", "_cancelled", "armed_for", "scope", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.scope = anyio.CancelScope()
        self._armed = False
        self._cancelled = False
        #: The timeout of the last :meth:`arm` (which wait expired, where one scope serves several).
        self.armed_for = timeout

    def arm(self, timeout: float | None = None) -> None:
        """The deadline: ``timeout`` (default: the writer's) from now."""
        self._armed = True
        self.armed_for = self.timeout if timeout is None else timeout
        self.scope.deadline = anyio.current_time() + self.armed_for

    def disarm(self) -> None:
        self._armed = False
        self.scope.deadline = math.inf

    def cancel(self) -> None:
        self._cancelled = True
        self.scope.cancel()

    @property
    def expired(self) -> bool:
        """The scope ended because a write outlived its deadline (not by :meth:`cancel`)."""
        return self.scope.cancelled_caught and self._armed and not self._cancelled
