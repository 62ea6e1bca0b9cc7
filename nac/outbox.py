"""One terminal connection's answers on their way out: a bounded queue and the one task that writes it.

The upstream reader only queues (:meth:`TerminalOutbox.put` never waits), so a terminal that does not read
can never stall an upstream connection. The writer starts with the terminal's first answer and ends with the
connection, so a terminal that never transacts costs no task; it writes every answer queued meanwhile in one
write, through the runtime's write path (:meth:`acqkit.netio.FramedConnection.send_many`).
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable

import anyio
import anyio.abc

from acqkit.netio import FramedConnection

log = logging.getLogger("acqsim.nac")


class TerminalOutbox:
    """``on_written(payload)`` is told of each answer written; ``on_failed(lost)`` once, when a write fails or
    takes over ``send_timeout_s`` (``lost`` answers were not written; the connection is then closed, and its
    reader ends the terminal in the router)."""

    __slots__ = ("_on_failed", "_on_written", "_pending", "_wakeup", "_writer", "conn", "max_pending", "send_timeout_s")

    def __init__(
        self,
        conn: FramedConnection,
        *,
        max_pending: int,
        send_timeout_s: float,
        on_written: Callable[[bytes], None],
        on_failed: Callable[[int], None],
    ) -> None:
        self.conn = conn
        self.max_pending, self.send_timeout_s = max_pending, send_timeout_s
        self._on_written, self._on_failed = on_written, on_failed
        self._pending: collections.deque[bytes] = collections.deque()
        self._wakeup: anyio.Event | None = None  # set when an answer is queued while the writer waits
        self._writer: anyio.CancelScope | None = None  # the writer task's scope, once started

    def put(self, payload: bytes, tg: anyio.abc.TaskGroup) -> bool:
        """Queue an answer (starting the writer in ``tg`` with the first); ``False`` if the queue is full."""
        if len(self._pending) >= self.max_pending:
            return False
        self._pending.append(payload)
        if self._writer is None:
            self._writer = anyio.CancelScope()
            tg.start_soon(self._write_all, self._writer)
        elif self._wakeup is not None:
            self._wakeup.set()
        return True

    def close(self) -> None:
        """The connection has ended: stop the writer (answers still queued are not written)."""
        if self._writer is not None:
            self._writer.cancel()

    async def _write_all(self, scope: anyio.CancelScope) -> None:
        with scope:
            try:
                while True:
                    if not self._pending:
                        self._wakeup = anyio.Event()
                        await self._wakeup.wait()
                        continue
                    batch = list(self._pending)  # left queued until written, so a failed write counts as lost
                    with anyio.fail_after(self.send_timeout_s):
                        await self.conn.send_many(batch)
                    for _ in batch:
                        self._on_written(self._pending.popleft())
            except (TimeoutError, OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                log.info("terminal %s: cannot send, closing", self.conn.peer)
                lost = len(self._pending)
                self._pending.clear()
                self._on_failed(lost)
                await self.conn.aclose()
