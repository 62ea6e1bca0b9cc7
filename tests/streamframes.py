"""Reading a raw stream's length-prefixed frames to its end: for tests where the client half-closes (a framed
connection of :mod:`acqkit.netio` reads ahead, so they use anyio's own stream)."""

from __future__ import annotations

import anyio
import anyio.abc

from wire.framing import END_OF_STREAM, NEED_DATA, LengthPrefixFramer


async def frames_until_end(stream: anyio.abc.ByteStream, deadline_s: float) -> list[bytes]:
    """Every frame the peer sends until it closes, within ``deadline_s``."""
    framer, frames = LengthPrefixFramer(), list[bytes]()
    with anyio.fail_after(deadline_s):
        while (item := framer.next_frame()) is not END_OF_STREAM:
            if item is NEED_DATA:
                try:
                    framer.receive_data(await stream.receive())
                except anyio.EndOfStream:
                    framer.receive_data(b"")
                continue
            assert isinstance(item, bytes)
            frames.append(item)
    return frames
