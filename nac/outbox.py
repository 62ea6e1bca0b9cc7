"""One terminal connection's answers on their way out: a bounded queue and the one task that writes it.

The upstream reader only queues (:meth:`TerminalOutbox.put` never waits), so a terminal that does not read
can never stall an upstream connection. The writer starts with the terminal's first answer and ends with the
connection, so a terminal that never transacts costs no task; it writes every answer queued meanwhile in one
write, through the runtime's write path (:meth:`acqkit.netio.FramedConnection.send_many`).
"""

from __future__ import annotations

import collections
import logging
from typing import Protocol

import anyio
import anyio.abc

from acqkit.netio import FramedConnection
from acqkit.writedeadline import WriteDeadline
from nac.limits import NacLimits

log = logging.getLogger("acqsim.nac")


class OutboxOwner(Protocol):
    """Who is told what became of the answers (the NAC's core, :class:`nac.core.NacCore`: one object shared by
    every outbox, so that an idle terminal costs no callbacks of its own)."""

    def answer_written(self, peer: str, payload: bytes) -> None: ...

    def terminal_send_failed(self, lost: int) -> None:
        """A write failed or took over ``send_timeout_s``: ``lost`` answers were not written (the connection
        is then closed, and its reader ends the terminal in the router)."""


class TerminalOutbox:
    """At most ``limits.max_in_flight`` answers; each write within ``limits.send_timeout_s``."""

    __slots__ = ("_pending", "_task_group", "_wakeup", "_writer", "conn", "limits", "owner")

    def __init__(
        self, conn: FramedConnection, limits: NacLimits, owner: OutboxOwner, task_group: anyio.abc.TaskGroup
    ) -> None:
        """``task_group``: where the writer task runs (started with the first answer)."""
        self.conn, self.limits, self.owner = conn, limits, owner
        self._task_group = task_group
        self._pending: collections.deque[bytes] = collections.deque()
        self._wakeup: anyio.Event | None = None  # set when an answer is queued while the writer waits
        self._writer: WriteDeadline | None = None  # the writer task's scope and send deadline, once started

    def put(self, payload: bytes) -> bool:
        """Queue an answer (starting the writer with the first); ``False`` if the queue is full."""
        if len(self._pending) >= self.limits.max_in_flight:
            return False
        self._pending.append(payload)
        if self._writer is None:
            self._writer = WriteDeadline(self.limits.send_timeout_s)
            self._task_group.start_soon(self._write_all, self._writer)
        elif self._wakeup is not None:
            self._wakeup.set()
        return True

    def __len__(self) -> int:
        """Answers queued and not yet written (a gauge of the metrics)."""
        return len(self._pending)

    def close(self) -> None:
        """The connection has ended: stop the writer (answers still queued are not written)."""
        if self._writer is not None:
            self._writer.cancel()

    async def _write_all(self, deadline: WriteDeadline) -> None:
        try:
            with deadline.scope:
                while True:
                    if not self._pending:
                        self._wakeup = anyio.Event()
                        await self._wakeup.wait()
                        continue
                    batch = list(self._pending)  # left queued until written, so a failed write counts as lost
                    deadline.arm()
                    await self.conn.send_many(batch)
                    deadline.disarm()
                    for _ in batch:
                        self.owner.answer_written(self.conn.peer, self._pending.popleft())
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the write failed
        else:
            if not deadline.expired:
                return  # closed
        log.info("terminal %s: cannot send, closing", self.conn.peer)
        lost = len(self._pending)
        self._pending.clear()
        self.owner.terminal_send_failed(lost)
        await self.conn.aclose()
