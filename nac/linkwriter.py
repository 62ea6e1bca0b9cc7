"""One upstream connection's requests on their way out: queued by the terminals' readers without waiting, and
written by the one task of :meth:`LinkWriter.run` — everything queued while it waited in one write.

A terminal's reader never waits on the upstream write (no cancel scope, no task per frame): requests that
arrive together from many terminals share one system call and one send deadline. The queue needs no bound of
its own: every request queued holds one of the router's return addresses on this link, of which there are at
most ``ADDRESS_POOL_SIZE`` (:mod:`nac.limits`, :mod:`nac.addresses`).
"""

from __future__ import annotations

import collections
import logging

import anyio

from acqkit.netio import FramedConnection
from acqkit.writedeadline import WriteDeadline

log = logging.getLogger("acqsim.nac")


class LinkWriter:
    """Each write within ``send_timeout_s``; a write that fails or takes longer closes the connection (its
    reader then tells the router, which counts the requests in flight on it as dropped)."""

    __slots__ = ("_closing", "_pending", "_wakeup", "conn", "send_timeout_s")

    def __init__(self, conn: FramedConnection, send_timeout_s: float) -> None:
        self.conn = conn
        self.send_timeout_s = send_timeout_s
        self._pending: collections.deque[bytes] = collections.deque()
        self._wakeup: anyio.Event | None = None  # set when a request is queued while the writer waits
        self._closing = False

    def send(self, payload: bytes) -> None:
        """Queue a request frame's payload; never waits."""
        self._pending.append(payload)
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None

    def close(self) -> None:
        """Close the connection once what is queued is written (its reader then sees the end)."""
        self._closing = True
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None

    def __len__(self) -> int:
        return len(self._pending)

    async def run(self) -> None:
        """Write what is queued until cancelled or the connection fails."""
        deadline = WriteDeadline(self.send_timeout_s)
        try:
            with deadline.scope:
                while True:
                    if not self._pending:
                        if self._closing:
                            break
                        self._wakeup = anyio.Event()
                        await self._wakeup.wait()
                        continue
                    batch = list(self._pending)
                    self._pending.clear()
                    deadline.arm()
                    await self.conn.send_many(batch)
                    deadline.disarm()
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the write failed
        else:
            if not deadline.expired:
                if self._closing:
                    await self.conn.aclose()
                return
        log.warning("upstream %s: send failed, closing that connection", self.conn.peer)
        await self.conn.aclose()
