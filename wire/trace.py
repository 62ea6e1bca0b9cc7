"""Trace records, one JSON-lines file per service (``<trace_dir>/<service>.jsonl``), written in batches off
the service's event loop in a compact form, and read back (:func:`read_trace`) as the records every reader
shows: time (ISO 8601 UTC, microseconds), service, direction, link, peer, correlation id, note, and the
dissected, masked message (POS, host and switch links) — for the HSM link only header, command and error code,
never a key or PIN block.

A compact record (format 2, docs/wire.md "Traces") is one JSON object with short keys::

    {"v":2,"us":<µs since the epoch, UTC>,"s":service,"d":"in"|"out","l":link,"p":peer,"c":correlation id,
     "o":note,"n":frame length,"x":<the compact frame, hex>}

``x`` is :func:`wire.tracecompact.compact_frame`: the frame's own bytes with card data and secrets
overwritten, dissected when read. A frame without a compact form (the switch link, 55, 59, a batch upload's
48, anything malformed) is dissected when written instead: ``"m":<dissection>`` in place of ``x``. Format 1
(one full record per line, ``"message"`` dissected; acqsim before 2026-12) still reads as it is.

:meth:`TraceWriter.record` only keeps a record (a tuple appended to a bounded queue: about a microsecond on the
event loop); :meth:`TraceWriter.flush_pending` — a worker thread's job (``acqkit/traceflush.py``) — compacts
and writes every record kept so far in one write. When ``MAX_PENDING_RECORDS`` wait, a new record is dropped
and counted (:attr:`TraceWriter.dropped`; the ``acqsim_trace_records_dropped_total`` metric) rather than
slowing the payment path. Writing a trace never raises into the service: a failure is logged once and the
trace turns itself off.
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
import json
import logging
import pathlib
import threading
import time
from collections.abc import Iterator
from typing import Any, Final, Literal, TextIO

from wire.dissect import as_json, dissect_host, dissect_pos
from wire.errors import WireError
from wire.switchlink import describe_switch
from wire.tracecompact import HSM_CODE_LEN, HSM_ERROR_LEN, HSM_HEADER_LEN, HSM_REQUEST_CODES, BatchMemo

log = logging.getLogger("acqsim.trace")

Direction = Literal["in", "out"]
Link = Literal["pos", "host", "hsm", "switch"]


def correlation_id(terminal_id: str, stan: str, local_date: str | None = None) -> str:
    """``T<terminal>-<STAN>`` (``-<MMDD>`` when the date is known): the key a transaction is traced under."""
    return f"T{terminal_id}-{stan}" + (f"-{local_date}" if local_date else "")


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
    shown = HSM_HEADER_LEN + HSM_CODE_LEN + HSM_ERROR_LEN
    text = payload[:shown].decode("ascii", "replace")
    code = text[HSM_HEADER_LEN : HSM_HEADER_LEN + HSM_CODE_LEN]
    # A request's bytes after its code are fields (keys, PIN blocks): only an answer's error code is shown.
    is_answer = code not in HSM_REQUEST_CODES and len(text) == shown
    return {
        "header": text[:HSM_HEADER_LEN],
        "code": code,
        "error": text[HSM_HEADER_LEN + HSM_CODE_LEN :] if is_answer else None,
        "length": len(payload),
    }


#: The compact record format :class:`TraceWriter` writes (``"v"``); records without ``"v"`` are format 1.
TRACE_FORMAT: Final = 2
#: Records kept and not yet written, at most: beyond it a record is dropped and counted, never waited for.
#: At ~20 records per purchase this is a few seconds of a stalled disk at full load, ~15 MB at most.
MAX_PENDING_RECORDS: Final = 50_000
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NS_PER_US: Final = 1000

#: A kept record: (ns since the epoch, direction, link, peer, payload, correlation id, note).
_Kept = tuple[int, Direction, Link, str, bytes, str | None, str | None]


@functools.lru_cache(maxsize=4096)  # peers, correlation ids and notes repeat
def _json_text(text: str | None) -> str:
    """A JSON string (or ``null``): as it is when nothing in it needs escaping, else through the encoder."""
    if text is None:
        return "null"
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return _LINE_ENCODER.encode(text)


class TraceFormatError(ValueError):
    """A trace file this acqsim cannot read: not JSON lines, or a record format it does not know."""

    def __init__(self, path: pathlib.Path | str, line: int, reason: str) -> None:
        super().__init__(f"{path}, line {line}: {reason}")
        self.path, self.line, self.reason = path, line, reason


class TraceWriter:
    """Keeps trace records and appends them, compacted, to ``<path>/<service>.jsonl`` (or to ``path`` if it
    names a file) when :meth:`flush_pending` is called — by a worker thread (``acqkit/traceflush.py``, which
    every service runs beside its server) — and at :meth:`close`.

    ``path=None`` turns tracing off at no cost. :meth:`record` is for one event loop; :meth:`flush_pending`
    may run in another thread. Never raises into the service.
    """

    def __init__(self, path: pathlib.Path | None, service: str) -> None:
        self.service = service
        self._service_json = _json_text(service)
        #: Records dropped because ``MAX_PENDING_RECORDS`` were waiting (the writer fell behind).
        self.dropped = 0
        self.max_pending = MAX_PENDING_RECORDS
        self._lock = threading.Lock()  # the file: a flush and a close never interleave
        self._file: TextIO | None = None
        self._describe_failure_logged = False
        # deque: append (event loop) and popleft (worker thread) are atomic, no lock on the payment path
        self._pending: collections.deque[_Kept] = collections.deque()
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
        """Records kept and not written yet."""
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
        """Keep one record (its time taken now); nothing is described, encoded or written here."""
        if self._file is None:
            return
        if len(self._pending) >= self.max_pending:
            self.dropped += 1
            return
        self._pending.append((time.time_ns(), direction, link, peer, payload, correlation_id, note))

    def flush_pending(self) -> int:
        """Compact and write the records kept since the last flush, in one write; how many there were."""
        pending = self._pending
        records = [pending.popleft() for _ in range(len(pending))]
        if records:
            self._write(self._lines(records))
        return len(records)

    def _described(self, link: Link, payload: bytes) -> dict[str, Any]:
        try:
            return describe(link, payload)
        except Exception as exc:  # a bug in a printer must not reach the service: record what we can
            if not self._describe_failure_logged:  # once; the type only, a message could hold a value
                log.warning("trace for %s cannot describe a %s payload (%s)", self.service, link, type(exc).__name__)
                self._describe_failure_logged = True
            return {"undescribed": True, "length": len(payload)}

    def _lines(self, records: list[_Kept]) -> str:
        """The records' lines, formatted by hand: a JSON encoder costs several times as much a line, and this loop
        is most of a trace's CPU (the names it uses are bound once a batch)."""
        compact = BatchMemo().compact
        text = _json_text
        head = f'{{"v":{TRACE_FORMAT},"us":'
        service = f',"s":{self._service_json},"d":"'
        lines = []
        for ns, direction, link, peer, payload, correlation, note in records:
            frame = compact(link, payload)
            body = (
                f'"x":"{frame.hex()}"'
                if frame is not None
                else f'"m":{_LINE_ENCODER.encode(self._described(link, payload))}'
            )
            lines.append(
                f'{head}{ns // _NS_PER_US}{service}{direction}","l":"{link}","p":{text(peer)},"c":{text(correlation)},'
                f'"o":{text(note)},"n":{len(payload)},{body}}}\n'
            )
        return "".join(lines)

    def _write(self, lines: str) -> None:
        try:
            with self._lock:
                if self._file is None:  # closed meanwhile
                    return
                self._file.write(lines)
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


def expand(record: dict[str, Any]) -> dict[str, Any]:
    """A trace record as every reader shows it (time, service, direction, link, peer, correlation_id, note,
    message): a compact record is dissected now; a format 1 record is already that. Raises ``ValueError`` (or
    ``KeyError``) for a record it cannot read."""
    version = record.get("v")
    if version is None:
        if "message" not in record or "time" not in record:
            raise ValueError("not an acqsim trace record")
        return record
    if version != TRACE_FORMAT:
        raise ValueError(f"trace record format {version!r}: this acqsim reads formats 1 and {TRACE_FORMAT}")
    link: Link = record["l"]
    if "x" in record:
        message = describe(link, bytes.fromhex(record["x"]))
        if "length" in message:
            message["length"] = record["n"]  # the HSM link keeps only the bytes it shows
    else:
        message = record["m"]
    when = _EPOCH + dt.timedelta(microseconds=record["us"])
    return {
        "time": when.isoformat(timespec="microseconds"),
        "service": record["s"],
        "direction": record["d"],
        "link": link,
        "peer": record["p"],
        "correlation_id": record["c"],
        "note": record["o"],
        "message": message,
    }


def parse_line(line: str | bytes) -> dict[str, Any]:
    """One trace line, expanded (:func:`expand`). Raises ``ValueError`` for a line that is no trace record."""
    record = json.loads(line)
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")  # noqa: TRY004 - a bad line, as for a line that is not JSON
    try:
        return expand(record)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"a trace record without {exc}") from None


def iter_trace(path: pathlib.Path) -> Iterator[dict[str, Any]]:
    """Every record of a trace file, expanded; a last line still being written (no newline yet) is left for
    later. Raises :class:`TraceFormatError` naming the file and line of a record it cannot read."""
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    for number, line in enumerate(lines[:-1], start=1):  # the last piece: empty, or a line being written
        if not line.strip():
            continue
        try:
            yield parse_line(line)
        except ValueError as exc:
            raise TraceFormatError(path, number, str(exc)) from None


def read_trace(path: pathlib.Path) -> list[dict[str, Any]]:
    """:func:`iter_trace` as a list."""
    return list(iter_trace(path))
