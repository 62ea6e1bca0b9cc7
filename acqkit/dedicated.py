"""A worker thread of one's own: blocking calls (SQLite commits, file writes) handed to ONE long-lived thread
through a plain queue, their results handed back to the event loop by the loop's own thread-safe callback.

Why not ``anyio.to_thread.run_sync``: on uvloop it costs about 70–110 µs of CPU per call (its pool's
``queue.Queue`` and ``Condition``, a cancel scope, a context copy, idle-worker upkeep), where this costs about
18–25 µs — and the front-end's journal and the ledger make one such call per group commit, i.e. up to two per
purchase (``bench``: see docs/benchmarks.md, "perfcore"). Calls run one at a time, in the order handed over.

Cancellation is as ``to_thread.run_sync``'s default: a call that has been handed over is not abandoned — its
caller waits for it, shielded — so a write is never left half-known. ``stop()`` lets the thread end after the
calls already handed over; the thread is a daemon, so a write hung in the kernel cannot keep the process alive.
Works on asyncio (uvloop included) and trio.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, Final, Generic, TypeVar

import anyio
import anyio.lowlevel

Result = TypeVar("Result")

#: What the queue carries to make the thread end.
_STOP: Final = None


class HandedOver(Generic[Result]):
    """One call handed to the thread: what to run, and — once run — its result or exception, handed back with
    ``done`` (:meth:`outcome`)."""

    __slots__ = ("args", "done", "error", "func", "result")

    def __init__(self, func: Callable[..., Result], args: tuple[Any, ...]) -> None:
        self.func, self.args = func, args
        self.done = anyio.Event()
        self.result: Result | None = None
        self.error: BaseException | None = None

    def outcome(self) -> Result:
        """The call's result once ``done``, or the exception it raised."""
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]  # set by the thread when there was no error


_Queue = queue.SimpleQueue[tuple[HandedOver[Any], Callable[[Callable[[], object]], object]] | None]


def _loop_callback() -> Callable[[Callable[[], object]], object]:
    """The running loop's "call this soon, from any thread" (asyncio: ``call_soon_threadsafe``; trio: the
    token's ``run_sync_soon``)."""
    native = anyio.lowlevel.current_token().native_token
    if isinstance(native, asyncio.AbstractEventLoop):
        return native.call_soon_threadsafe
    run_sync_soon: Callable[[Callable[[], object]], object] = native.run_sync_soon  # type: ignore[attr-defined]
    return run_sync_soon


class DedicatedThread:
    """One thread, started on first use; :meth:`run` hands it a blocking call and waits for the result."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._calls: _Queue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    async def run(self, func: Callable[..., Result], *args: Any) -> Result:
        """``func(*args)`` in the thread: its result, or the exception it raised."""
        call = self.hand_over(func, *args)
        with anyio.CancelScope(shield=True):  # handed over: never abandoned half-done
            await call.done.wait()
        return call.outcome()

    def hand_over(self, func: Callable[..., Result], *args: Any) -> HandedOver[Result]:
        """Hand ``func(*args)`` to the thread and return at once: wait on the call's ``done``, then take its
        ``outcome()``. For a caller that keeps deadlines of its own while the call runs (a group commit); the
        call runs to its end whether or not anyone waits."""
        if self._thread is None or not self._thread.is_alive():
            self._calls = queue.SimpleQueue()  # a thread of its own queue: an ending one takes nothing new
            self._thread = threading.Thread(target=_serve, args=(self._calls,), name=self.name, daemon=True)
            self._thread.start()
        call: HandedOver[Result] = HandedOver(func, args)
        self._calls.put((call, _loop_callback()))
        return call

    def stop(self) -> None:
        """Let the thread end once the calls already handed over are done (it is restarted if used again)."""
        if self._thread is not None:
            self._calls.put(_STOP)
            self._thread = None


def _serve(calls: _Queue) -> None:
    while (entry := calls.get()) is not _STOP:
        call, call_soon = entry
        try:
            call.result = call.func(*call.args)
        except BaseException as exc:  # handed to the caller, who raises it
            call.error = exc
        try:
            call_soon(call.done.set)
        except RuntimeError:  # the loop is gone: nobody is waiting any more
            return
