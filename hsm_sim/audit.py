"""The HSM audit log: one JSON line per command, appended to a file (default ``data_dir/hsm-audit.jsonl``).

Each entry: ``ts`` (UTC, ISO 8601, milliseconds), ``client`` (verified identity, or ``anonymous``), ``peer``
(address), ``command``, ``key_types`` (the types the command named), ``outcome`` (the error code answered),
``true_outcome`` (only where the answer hid it: DC's 20 behind 01) and ``reason`` (why it was refused; the
handlers' reasons never hold key, PIN or PAN material). Never: PINs, PIN blocks, keys in any form, MAC data,
account numbers. A refused connection is one entry with command ``--`` and outcome ``refused``.

Entries are buffered and written together: at most every ``AUDIT_FLUSH_INTERVAL_S``, as soon as
``MAX_AUDIT_BUFFERED`` are waiting, and when the server stops — not a write per command under load.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import anyio

from hsm_sim.keys import KeyType
from hsm_sim.processor import Outcome

log = logging.getLogger("acqsim.hsm.audit")

AUDIT_FILE_NAME: Final = "hsm-audit.jsonl"
AUDIT_FLUSH_INTERVAL_S: Final = 1.0
MAX_AUDIT_BUFFERED: Final = 4096
#: ``command`` and ``outcome`` of the entry for a connection refused before any command.
CONNECTION_COMMAND: Final = "--"
REFUSED: Final = "refused"


#: One encoder for every entry (``json.dumps`` builds one per call).
_encode: Final = json.JSONEncoder(separators=(",", ":")).encode


class _Clock:
    """UTC timestamps to the millisecond; the date and time of day formatted once a second, not per entry."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def now(self) -> str:
        moment = time.time()
        second = int(moment)
        if second != self._second:
            self._second = second
            self._prefix = dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._prefix}.{int((moment - second) * 1000):03d}Z"


_now: Final = _Clock().now
#: A JSON string literal, escaped as ``json.dumps`` escapes it (ASCII only).
_quoted: Final = json.encoder.encode_basestring_ascii


@functools.lru_cache(maxsize=64)
def _key_types(key_types: tuple[KeyType, ...]) -> str:
    """The ``key_types`` list as JSON (a command names one of a few combinations)."""
    return _encode([str(t) for t in key_types])


@functools.lru_cache(maxsize=256)
def _who(client: str, peer: str) -> str:
    """The ``client`` and ``peer`` members of an entry, with their comma (the same for a connection's life)."""
    return f'"client":{_quoted(client)},"peer":{_quoted(peer)},'


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._pending: list[str] = []

    def record(self, client: str, peer: str, outcome: Outcome) -> None:
        # The line json.dumps would write for the entry (same keys, order and escaping), built directly: one
        # per command on the HSM's hot path.
        # The codes are StrEnums: quoted as their values.
        line = (
            f'{{"ts":"{_now()}",{_who(client, peer)}'
            f'"command":{_quoted(outcome.command)},"key_types":{_key_types(outcome.key_types)},'
            f'"outcome":{_quoted(outcome.answered)}'
        )
        if outcome.true_code is not outcome.answered:
            line += f',"true_outcome":{_quoted(outcome.true_code)}'
        if outcome.reason:
            line += f',"reason":{_quoted(outcome.reason)}'
        self._pending.append(line + "}")
        if len(self._pending) >= MAX_AUDIT_BUFFERED:
            self.flush()

    def refused(self, client: str, peer: str, reason: str) -> None:
        self._append(
            {
                "ts": _now(),
                "client": client,
                "peer": peer,
                "command": CONNECTION_COMMAND,
                "key_types": [],
                "outcome": REFUSED,
                "reason": reason,
            }
        )

    def _append(self, entry: dict[str, Any]) -> None:
        self._pending.append(_encode(entry))
        if len(self._pending) >= MAX_AUDIT_BUFFERED:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        lines, self._pending = self._pending, []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                out.write("\n".join(lines) + "\n")
        except OSError:
            log.exception("HSM audit log %s: %d entries lost", self.path, len(lines))

    async def run_flusher(self) -> None:
        """Flush every ``AUDIT_FLUSH_INTERVAL_S`` until cancelled, and once more then."""
        try:
            while True:
                await anyio.sleep(AUDIT_FLUSH_INTERVAL_S)
                self.flush()
        finally:
            self.flush()


def read_audit(path: Path, last: int | None = None) -> list[dict[str, Any]]:
    """The log's entries (the ``last`` N only, if given); a line that is not JSON is skipped."""
    lines: Iterable[str]
    with path.open(encoding="utf-8") as f:
        lines = deque(f, maxlen=last) if last is not None else list(f)
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def format_entry(entry: dict[str, Any]) -> str:
    types = ",".join(entry.get("key_types", [])) or "-"
    extra = f" (true {entry['true_outcome']})" if "true_outcome" in entry else ""
    reason = f"  {entry['reason']}" if "reason" in entry else ""
    return (
        f"{entry.get('ts', '?')}  {entry.get('client', '?'):<12} {entry.get('peer', '?'):<22} "
        f"{entry.get('command', '?')}  {types:<9} {entry.get('outcome', '?')}{extra}{reason}"
    )
