"""The tasks that answer one connection's frames concurrently, kept for the next frames instead of a task per
frame.

A server that answers the frames of one link concurrently (the NAC multiplexes many terminals on one link)
would start a task per frame; on anyio each task also makes a cancel scope and an event, several times the
cost of waking a task that already waits (docs/benchmarks.md). :class:`FrameWorkers` keeps the link's workers:
the reader hands each frame to one that waits (:meth:`FrameWorkers.hand_over`), starts one more while fewer
than the limit run (:meth:`FrameWorkers.may_start`, the caller starts it in its task group), or else waits for
one to finish (:meth:`FrameWorkers.room`). A worker asks for its next frame with
:meth:`FrameWorkers.next_frame`, which gives ``None`` once the reader is done (:meth:`FrameWorkers.close`).
No task outlives the caller's task group; a worker cancelled while it waits is never handed a frame, since
only a cancelled task group cancels it, and then the reader is cancelled too.
"""

from __future__ import annotations

import anyio


class _Waiting:
    """A worker waiting for its next frame (``None``: the link is done)."""

    __slots__ = ("frame", "wake")

    def __init__(self) -> None:
        self.wake = anyio.Event()
        self.frame: bytes | None = None


class FrameWorkers:
    """The tasks answering one link's frames: at most ``limit``, started as frames come and kept for the next
    ones. Handing a frame to a waiting worker costs one wake-up, a task of its own per frame several times that
    (anyio makes each a cancel scope and an event). When all ``limit`` are busy, the reader waits for one: as
    many frames are in flight at most as before, and TCP holds the rest back."""

    __slots__ = ("_closed", "_limit", "_room", "_started", "_waiting")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._started = 0
        self._waiting: list[_Waiting] = []
        self._room: anyio.Event | None = None  # set when a worker comes to wait while the reader waits for one
        self._closed = False

    def hand_over(self, frame: bytes) -> bool:
        """Give ``frame`` to a waiting worker; ``False`` when none waits."""
        if not self._waiting:
            return False
        waiting = self._waiting.pop()  # the one that waited least: its stack is the warmest
        waiting.frame = frame
        waiting.wake.set()
        return True

    def may_start(self) -> bool:
        """Whether one more worker may start (counted as started)."""
        if self._started >= self._limit:
            return False
        self._started += 1
        return True

    async def room(self) -> None:
        """Wait until a worker waits for a frame."""
        while not self._waiting:
            self._room = anyio.Event()
            await self._room.wait()

    async def next_frame(self) -> bytes | None:
        """A worker's next frame, or ``None`` once the link is done."""
        if self._closed:
            return None
        waiting = _Waiting()
        self._waiting.append(waiting)
        if self._room is not None:
            self._room.set()
            self._room = None
        await waiting.wake.wait()
        return waiting.frame

    def close(self) -> None:
        """No more frames: every waiting worker ends, and each busy one when it is done."""
        self._closed = True
        for waiting in self._waiting:
            waiting.wake.set()
        self._waiting.clear()
