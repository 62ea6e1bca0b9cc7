"""What the NAC needs of a frame tracer (structural, so that ``wire.trace`` stays optional for the NAC)."""

from __future__ import annotations

from typing import Literal, Protocol

from acqkit.traceflush import BatchedTrace


class FrameTracer(BatchedTrace, Protocol):
    """The part of ``wire.trace.TraceWriter`` the NAC uses: it keeps records, the NAC's flusher writes them."""

    def record(
        self,
        *,
        direction: Literal["in", "out"],
        link: Literal["pos", "host", "hsm"],
        peer: str,
        payload: bytes,
        correlation_id: str | None = None,
        note: str | None = None,
    ) -> None: ...

    def close(self) -> None: ...
