"""On asyncio (uvloop included), a plain TCP stream read and written through its transport, without anyio's
per-call overhead — the same behaviour, about half the CPU per frame.

anyio's asyncio ``SocketStream.send`` writes to the transport and then always yields a loop turn (a shielded
checkpoint), and its ``receive`` yields a turn even when data is already there: on a link that carries one
small frame per request, those turns, the guards and the cancel checks cost more than the system calls
themselves (a framed round trip over loopback, both ends in one process: about 87 µs of CPU through anyio,
40 µs this way; docs/benchmarks.md). This module keeps what matters of anyio's behaviour and drops the rest:

- ``send`` writes at once when nothing is waiting in the transport's buffer; if the kernel took only part,
  it waits until the rest is written (anyio's protocol keeps a write-buffer limit of 0, so its ``write_event``
  is set exactly when the buffer is empty) — backpressure as before;
- ``receive`` reads only while a caller waits (reading is resumed for the wait and paused after it, as anyio
  does), so a peer that floods a connection nobody reads is held back by TCP, not by our memory;
- small frames sent during one turn of the event loop leave together, in one write at the end of that turn
  (:data:`GATHER_MAX_BYTES`): a server whose answers to many requests are ready in the same turn (a batch of
  HSM answers read at once wakes as many transactions) makes one system call, not one each. Such a ``send``
  returns once its frame is queued for that write, as uvloop's ``transport.write`` returns once the kernel or
  the transport's buffer holds it: "sent" never meant "delivered". A write that finds the transport closing
  is dropped, as the connection is lost anyway (its reader meets the end or the error); ``flush`` writes what
  is queued at once (:meth:`acqkit.netio.FramedConnection.aclose` calls it before closing);
- anything unusual — a closing transport, an error, the end of the stream — goes through anyio's own call,
  so the errors raised are anyio's, unchanged.

It reads anyio's private attributes of its asyncio stream (``_transport``, ``_protocol``); :meth:`of` checks
they are what this module expects and returns ``None`` otherwise (another anyio version, TLS, trio): the
caller then uses the stream as anyio offers it. ``tests/acqkit/test_directsocket.py`` fails if the pinned anyio
stops matching, so the fast path cannot be lost silently.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Final, Protocol

import anyio.abc

#: The anyio stream class this module knows the inside of.
_ANYIO_ASYNCIO_STREAM: Final = ("anyio._backends._asyncio", "SocketStream")
#: What anyio's asyncio stream protocol must have for the direct path.
_PROTOCOL_ATTRIBUTES: Final = ("read_queue", "read_event", "write_event", "is_at_eof", "exception")
#: What the transport must offer (uvloop's transports are not ``asyncio.Transport`` subclasses: duck-typed).
_TRANSPORT_METHODS: Final = ("write", "is_closing", "resume_reading", "pause_reading")
#: Largest chunk anyio's own receive is asked for (the fallback path).
READ_CHUNK: Final = 65536
#: Frames up to this size sent in one loop turn are gathered into one write at its end; a larger one is written
#: at once (after those gathered before it) and its sender waits until the kernel has it all (backpressure).
GATHER_MAX_BYTES: Final = 16 * 1024


class _StreamProtocol(Protocol):
    """The parts of anyio's asyncio ``StreamProtocol`` used here."""

    read_queue: deque[bytes]
    read_event: asyncio.Event
    write_event: asyncio.Event
    is_at_eof: bool
    exception: Exception | None


class DirectSocket:
    """The transport under an anyio asyncio ``SocketStream``, with the stream kept for the unusual cases."""

    __slots__ = ("_gathered", "_loop", "_protocol", "_stream", "_transport")

    def __init__(self, stream: anyio.abc.ByteStream, transport: asyncio.Transport, protocol: _StreamProtocol) -> None:
        self._stream, self._transport, self._protocol = stream, transport, protocol
        #: Small frames sent in this loop turn, written together at its end (``None``: no write is due).
        self._gathered: list[bytes] | None = None
        self._loop = asyncio.get_running_loop()

    @classmethod
    def of(cls, stream: anyio.abc.ByteStream) -> DirectSocket | None:
        """The direct path under ``stream``, or ``None`` where there is none (trio, TLS, another anyio)."""
        kind = type(stream)
        if (kind.__module__, kind.__name__) != _ANYIO_ASYNCIO_STREAM:
            return None
        transport, protocol = getattr(stream, "_transport", None), getattr(stream, "_protocol", None)
        if not all(hasattr(transport, name) for name in _TRANSPORT_METHODS) or not all(
            hasattr(protocol, name) for name in _PROTOCOL_ATTRIBUTES
        ):
            return None
        return cls(stream, transport, protocol)  # type: ignore[arg-type]  # every attribute used was checked

    async def send(self, data: bytes) -> None:
        """Write ``data`` (anyio's errors on a closed or broken link): a small frame with the others of this loop
        turn, at its end; a larger one at once, returning when the kernel has all of it."""
        gathered = self._gathered
        if gathered is not None and len(data) <= GATHER_MAX_BYTES:
            gathered.append(data)  # after the frames sent before it in this turn: the order is kept
            return
        if gathered is not None:
            self.flush()  # what was sent before goes first
        protocol, transport = self._protocol, self._transport
        if not protocol.write_event.is_set() or transport.is_closing() or protocol.exception is not None:
            await self._stream.send(data)  # waits for room, or raises the right error
            return
        if len(data) <= GATHER_MAX_BYTES:
            self._gathered = [data]
            self._loop.call_soon(self.flush)  # runs after every task already woken in this turn has run
            return
        transport.write(data)  # uvloop sends at once; what the kernel does not take waits in the buffer
        if not protocol.write_event.is_set():  # the buffer is not empty: wait until it is (backpressure)
            await protocol.write_event.wait()
            if protocol.exception is not None:
                raise anyio.BrokenResourceError from protocol.exception

    def flush(self) -> None:
        """Write the frames gathered in this loop turn now (nothing when none is due)."""
        gathered, self._gathered = self._gathered, None
        if not gathered or self._transport.is_closing():
            return  # a closing transport: the connection is lost, and its reader meets the end or the error
        self._transport.write(gathered[0] if len(gathered) == 1 else b"".join(gathered))

    async def receive(self) -> bytes:
        """The next chunk read (anyio's ``EndOfStream`` and broken/closed-resource errors as anyio raises them)."""
        protocol, transport = self._protocol, self._transport
        if not protocol.read_event.is_set() and not transport.is_closing() and not protocol.is_at_eof:
            transport.resume_reading()  # read only while someone waits: a peer nobody reads is held back by TCP
            try:
                await protocol.read_event.wait()
            finally:
                transport.pause_reading()
        queue = protocol.read_queue
        if not queue:
            return await self._stream.receive(READ_CHUNK)  # the end of the stream or an error: anyio's answer
        chunk = queue.popleft()
        if not queue:
            protocol.read_event.clear()
        return chunk
