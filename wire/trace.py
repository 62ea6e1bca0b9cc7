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
from typing import Any, Final, Literal, NamedTuple, TextIO

from wire.dissect import as_json, dissect_host, dissect_pos
from wire.errors import WireError
from wire.switchlink import describe_switch

log = logging.getLogger("acqsim.trace")

Direction = Literal["in", "out"]
Link = Literal["pos", "host", "hsm", "switch"]


def correlation_id(terminal_id: str, stan: str, local_date: str | None = None) -> str:
    """``T<terminal>-<STAN>`` (``-<MMDD>`` when the date is known): the key a transaction is traced under."""
    return f"T{terminal_id}-{stan}" + (f"-{local_date}" if local_date else "")


#: HSM request command codes (PROTOCOL.md §4); any other code is an answer, which carries an error code.
HSM_REQUEST_CODES: Final = frozenset({"NC", "A0", "A6", "BU", "M6", "M8", "CA", "CC", "DC", "EC"})
_HSM_HEADER_LEN: Final = 4
#: One encoder for every line (``json.dumps`` with any option builds a new encoder per call).
_LINE_ENCODER: Final = json.JSONEncoder(separators=(",", ":"))


def describe(link: Link, payload: bytes) -> dict[str, Any]:
    """The traced form of a payload: the masked dissection, or for the HSM only header, code and error code; an
    empty payload (a hop that got no answer: its note says why) is just its length."""
    if not payload:
        return {"length": 0}
    try:
        if link == "pos":
            return as_json(dissect_pos(payload, with_views=False))
        if link == "host":
            return as_json(dissect_host(payload, with_views=False))
        if link == "switch":
            return describe_switch(payload)
    except WireError as exc:
        return {"undecodable": str(exc), "length": len(payload)}
    text = payload[: _HSM_HEADER_LEN + 4].decode("ascii", "replace")
    code = text[_HSM_HEADER_LEN : _HSM_HEADER_LEN + 2]
    # A request's bytes after its code are fields (keys, PIN blocks): only an answer's error code is shown.
    is_answer = code not in HSM_REQUEST_CODES and len(text) == _HSM_HEADER_LEN + 4
    return {
        "header": text[:_HSM_HEADER_LEN],
        "code": code,
        "error": text[_HSM_HEADER_LEN + 2 :] if is_answer else None,
        "length": len(payload),
    }


class _Record(NamedTuple):
    time: dt.datetime
    direction: Direction
    link: Link
    peer: str
    payload: bytes
    correlation_id: str | None
    note: str | None


class TraceWriter:
    """Appends one JSON line per message to ``<path>/<service>.jsonl`` (or to ``path`` if it names a file).

    ``path=None`` turns tracing off at no cost. Thread-safe; never raises into the service.

    With ``batched``, :meth:`record` only keeps the record (its time taken then); :meth:`flush_pending`
    describes and writes every record kept so far in one write — for a service's worker thread, off its event
    loop (``acqkit/traceflush.py``) — and :meth:`close` writes what is left.
    """

    def __init__(self, path: pathlib.Path | None, service: str, *, batched: bool = False) -> None:
        self.service = service
        self.batched = batched
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        self._describe_failure_logged = False
        self._pending: list[_Record] = []
        if path is not None:
            target = path / f"{service}.jsonl" if path.is_dir() or not path.suffix else path
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                self._file = target.open("a", encoding="utf-8")
            except OSError as exc:
                log.warning("trace for %s is off: cannot open %s (%s)", service, target, exc.strerror)

    @property
    def enabled(self) -> bool:
        return self._file is not None

    @property
    def pending(self) -> int:
        """Records kept and not written yet (batched only)."""
        return len(self._pending)

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
        record = _Record(dt.datetime.now(dt.UTC), direction, link, peer, payload, correlation_id, note)
        if self.batched:
            with self._lock:
                self._pending.append(record)
            return
        self._write([self._line(record)])

    def flush_pending(self) -> int:
        """Describe and write the records kept since the last flush, in one write; how many there were."""
        with self._lock:
            records, self._pending = self._pending, []
        if records:
            self._write([self._line(record) for record in records])
        return len(records)

    def _line(self, record: _Record) -> str:
        try:
            message = describe(record.link, record.payload)
        except Exception as exc:  # a bug in a printer must not reach the service: record what we can
            if not self._describe_failure_logged:  # once; the type only, a message could hold a value
                log.warning(
                    "trace for %s cannot describe a %s payload (%s)", self.service, record.link, type(exc).__name__
                )
                self._describe_failure_logged = True
            message = {"undescribed": True, "length": len(record.payload)}
        entry = {
            "time": record.time.isoformat(timespec="microseconds"),
            "service": self.service,
            "direction": record.direction,
            "link": record.link,
            "peer": record.peer,
            "correlation_id": record.correlation_id,
            "note": record.note,
            "message": message,
        }
        return _LINE_ENCODER.encode(entry) + "\n"

    def _write(self, lines: list[str]) -> None:
        try:
            with self._lock:
                if self._file is None:  # closed meanwhile
                    return
                self._file.write("".join(lines))
                self._file.flush()
        except (OSError, ValueError) as exc:
            log.warning("trace for %s stopped: %s", self.service, exc)
            self._close_quietly()

    def _close_quietly(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except (OSError, ValueError):
                log.debug("trace file for %s did not close cleanly", self.service)

    def close(self) -> None:
        self.flush_pending()
        with self._lock:
            self._close_quietly()
