"""From the services' trace records to the messages of a sequence diagram, sans-IO.

Each message is drawn once, as it crosses one hop between two lanes (terminal, NAC, front-end, HSM, ledger),
at the time its *sender* traced it — except the terminal's requests, which only the NAC traces (on arrival).
Records that would draw a message a second time (the receiver's copy) are left out. The HSM traces no
transaction id, so its hops are the front-end's records of what it asked and what it got back.

:class:`TraceFollower` reads what the trace files gained since the last call (whole lines only) and turns it
into :class:`Hop` values; the web server polls it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from acqkit.config import MAX_FRONTENDS
from acqsim.web.explain import explain_hop, field_views
from wire.tpdu import TERMINAL_SRC
from wire.trace import parse_line

log = logging.getLogger("acqsim.web")

LANES: Final = ("terminal", "nac", "frontend", "hsm", "ledger")
#: The trace files a follower reads (the HSM's own file carries no transaction id: see the module doc).
#: The front-ends of a pool (``acqsim up --frontends N``) trace to ``frontend-K.jsonl``; absent files are skipped.
FOLLOWED: Final = ("nac", "frontend", *(f"frontend-{k}" for k in range(1, MAX_FRONTENDS + 1)), "ledger")
#: Hops sent to a page when it connects: the most recent ones.
BACKLOG: Final = 400


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Hop:
    seq: int
    time: float
    source: str
    target: str
    link: str
    transaction: str
    label: str
    explain_en: str
    explain_zh: str
    message: dict[str, Any]
    note: str | None

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def lanes_of(record: dict[str, Any]) -> tuple[str, str] | None:
    """(from lane, to lane) of a record, or ``None`` when the record is the receiver's copy of a message."""
    service, direction, link = record.get("service"), record.get("direction"), record.get("link")
    if service == "nac":
        tpdu = record.get("message", {}).get("tpdu", {})
        if direction == "in":
            return ("terminal", "nac") if tpdu.get("src") == TERMINAL_SRC else None
        return ("nac", "terminal") if tpdu.get("dst") == TERMINAL_SRC else ("nac", "frontend")
    if service == "frontend":
        peer = {"pos": "nac", "hsm": "hsm", "host": "ledger"}.get(str(link))
        if peer is None:
            return None
        if direction == "out":
            return "frontend", peer
        return (peer, "frontend") if link == "hsm" else None  # the NAC's and ledger's own records come first
    if service == "ledger" and direction == "out":
        return "ledger", "frontend"
    return None


def transaction_of(record: dict[str, Any]) -> str:
    """``T<terminal>-<STAN>``: the record's correlation id, or (NAC records) read from fields 41 and 11."""
    correlation = record.get("correlation_id") or ""
    if correlation.startswith("T") and "-" in correlation:
        return "-".join(correlation.split("-")[:2])
    fields = record.get("message", {}).get("fields", {})
    if "41" in fields and "11" in fields:
        return f"T{fields['41']}-{fields['11']}"
    return ""


def _label(record: dict[str, Any]) -> str:
    message = record.get("message", {})
    if record.get("link") == "hsm":
        return str(message.get("code", "HSM"))
    mti = str(message.get("mti", "?"))
    code = message.get("fields", {}).get("39")
    return f"{mti} 39={code}" if code else mti


def to_hop(seq: int, record: dict[str, Any]) -> Hop | None:
    lanes = lanes_of(record)
    if lanes is None:
        return None
    message = dict(record.get("message", {}))
    if record.get("link") in ("pos", "host") and "fields" in message:
        message["views"] = field_views(str(record["link"]), message)
    en, zh = explain_hop(lanes, record)
    note = record.get("note")
    if isinstance(note, str) and note.startswith("rule "):  # a rules file acted here: say so on the hop
        en, zh = f"{en} Scripted: {note}.", f"{zh}（规则：{note}）"
    return Hop(
        seq=seq,
        time=dt.datetime.fromisoformat(record["time"]).timestamp(),
        source=lanes[0],
        target=lanes[1],
        link=str(record.get("link", "")),
        transaction=transaction_of(record),
        label=_label(record),
        explain_en=en,
        explain_zh=zh,
        message=message,
        note=record.get("note"),
    )


class TraceFollower:
    """Reads the lines appended to ``<trace_dir>/{nac,frontend,frontend-K,ledger}.jsonl`` since the last ``poll``."""

    def __init__(self, trace_dir: Path, *, files: Iterable[str] = FOLLOWED) -> None:
        self.paths = [trace_dir / f"{name}.jsonl" for name in files]
        self._offsets = dict.fromkeys(self.paths, 0)
        self._partial = dict.fromkeys(self.paths, b"")
        self._seq = 0

    def _new_records(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for path in self.paths:
            try:
                with path.open("rb") as file:
                    file.seek(self._offsets[path])
                    data = file.read()
            except FileNotFoundError:
                continue
            self._offsets[path] += len(data)
            data = self._partial[path] + data
            complete, _, self._partial[path] = data.rpartition(b"\n")
            for line in complete.splitlines():
                try:
                    records.append(parse_line(line))  # a compact record is dissected here, when shown
                except ValueError as exc:
                    log.warning("skipping a trace line of %s: %s", path.name, exc)
        records.sort(key=lambda r: str(r.get("time", "")))
        return records

    def poll(self) -> list[Hop]:
        hops = []
        for record in self._new_records():
            hop = to_hop(self._seq + 1, record)
            if hop is not None:
                self._seq += 1
                hops.append(hop)
        return hops
