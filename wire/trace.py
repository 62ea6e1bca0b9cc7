"""JSON-lines trace records, one file per service (``<trace_dir>/<service>.jsonl``).

Each record: time (ISO 8601 UTC, microseconds), service, direction, link, peer, correlation id, note, and the
dissected, masked message (POS and host links) — for the HSM link only header, command and error code,
never a key or PIN block. Writing a trace never raises into the service: a failure is logged once and the
trace turns itself off.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import pathlib
import threading
from typing import Any, Literal

from wire.dissect import as_json, dissect_host, dissect_pos
from wire.errors import WireError

log = logging.getLogger("acqsim.trace")

Direction = Literal["in", "out"]
Link = Literal["pos", "host", "hsm"]


def correlation_id(terminal_id: str, stan: str, local_date: str | None = None) -> str:
    """``T<terminal>-<STAN>`` (``-<MMDD>`` when the date is known): the key a transaction is traced under."""
    return f"T{terminal_id}-{stan}" + (f"-{local_date}" if local_date else "")


def describe(link: Link, payload: bytes) -> dict[str, Any]:
    try:
        if link == "pos":
            return as_json(dissect_pos(payload))
        if link == "host":
            return as_json(dissect_host(payload))
    except WireError as exc:
        return {"undecodable": str(exc), "length": len(payload)}
    text = payload[:8].decode("ascii", "replace")
    return {
        "header": text[:4],
        "code": text[4:6],
        "error": text[6:8] if len(text) >= 8 else None,
        "length": len(payload),
    }


class TraceWriter:
    def __init__(self, path: pathlib.Path | None, service: str) -> None:
        self.service = service
        self._lock = threading.Lock()
        self._file = None
        if path is not None:
            target = path / f"{service}.jsonl" if path.is_dir() or not path.suffix else path
            target.parent.mkdir(parents=True, exist_ok=True)
            self._file = target.open("a", encoding="utf-8")

    @property
    def enabled(self) -> bool:
        return self._file is not None

    def record(
        self,
        *,
        direction: Direction,
        link: Link,
        peer: str,
        payload: bytes,
        correlation_id: str | None = None,
        note: str | None = None,
    ) -> None:
        if self._file is None:
            return
        entry = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
            "service": self.service,
            "direction": direction,
            "link": link,
            "peer": peer,
            "correlation_id": correlation_id,
            "note": note,
            "message": describe(link, payload),
        }
        try:
            with self._lock:
                self._file.write(json.dumps(entry, separators=(",", ":")) + "\n")
                self._file.flush()
        except (OSError, ValueError) as exc:
            log.warning("trace for %s stopped: %s", self.service, exc)
            self._file = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
