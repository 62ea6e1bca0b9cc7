"""Reading traces back: one transaction's journey across the hops, as a timeline.

The front-end's records carry a correlation id (``T<terminal>-<STAN>``); the NAC never decodes bodies when it
forwards, so its records are matched by the terminal id and STAN of their dissected message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from wire.trace import read_trace

#: The HSM's records carry no transaction id (its messages name none): its hops show in the front-end's.
TRACE_FILES = ("nac.jsonl", "frontend.jsonl", "ledger.jsonl", "scheme.jsonl")
#: The front-ends of a pool (``acqsim up --frontends N``) each write ``frontend-K.jsonl``.
POOL_TRACE_GLOB = "frontend-*.jsonl"
#: Each issuer host behind the switch (``[scheme]``) writes ``issuer-<name>.jsonl``; its own HSM and ledger
#: (``issuer-<name>-hsm.jsonl``, ``-ledger.jsonl``) are its business: its hop shows its decision.
ISSUER_TRACE_GLOB = "issuer-*.jsonl"
_ISSUER_BACK_OFFICE = ("-hsm.jsonl", "-ledger.jsonl")


def load_records(trace_dir: Path) -> list[dict[str, Any]]:
    """Every record of the trace files in ``trace_dir``, dissected (compact records are dissected now), by
    time. Raises :class:`wire.trace.TraceFormatError` for a file acqsim cannot read."""
    records: list[dict[str, Any]] = []
    issuers = [p for p in sorted(trace_dir.glob(ISSUER_TRACE_GLOB)) if not p.name.endswith(_ISSUER_BACK_OFFICE)]
    for path in [*(trace_dir / name for name in TRACE_FILES), *sorted(trace_dir.glob(POOL_TRACE_GLOB)), *issuers]:
        if path.exists():
            records.extend(read_trace(path))
    records.sort(key=lambda r: r["time"])
    return records


def matches(record: dict[str, Any], terminal_id: str, stan: str) -> bool:
    if (record.get("correlation_id") or "") == f"T{terminal_id}-{stan}":
        return True
    fields = record.get("message", {}).get("fields", {})
    return bool(fields.get("11") == stan and fields.get("41") == terminal_id)


def last_transaction(records: list[dict[str, Any]]) -> tuple[str, str] | None:
    for record in reversed(records):
        cid = record.get("correlation_id") or ""
        if cid.startswith("T") and "-" in cid:
            terminal, stan = cid[1:].split("-")[:2]
            return terminal, stan
    return None


def describe_hop(record: dict[str, Any]) -> str:
    service, direction, link = record["service"], record["direction"], record["link"]
    message = record.get("message", {})
    if service == "nac":
        tpdu = message.get("tpdu", {})
        terminal_side = tpdu.get("src") == "0000" or tpdu.get("dst") == "0000"
        return {
            ("in", True): "NAC ← terminal",
            ("out", False): "NAC → front-end",
            ("in", False): "NAC ← front-end",
            ("out", True): "NAC → terminal",
        }[(direction, terminal_side)]
    if link == "switch":  # the scheme switch link: front-end ↔ switch ↔ issuer (docs/scheme.md)
        mti = message.get("fields", {}).get("t", "")
        here, there = {"frontend": ("front-end", "switch"), "scheme": ("switch", "front-end")}.get(
            service, ("issuer", "switch")
        )
        if service == "frontend" and direction == "in":  # the switch's answer, decoded in the front-end's trace
            return f"{here} ← {there} {mti} (39 = {record.get('note')})"
        if (service == "frontend") == (direction == "out"):
            return f"{here} → {there} {mti}" if direction == "out" else f"{here} ← {there} {mti}"
        return f"{here} {'→' if direction == 'out' else '←'} {there} (39 = {record.get('note')})"
    if service == "ledger":
        mti = message.get("mti", "")
        return f"ledger ← front-end {mti}" if direction == "in" else f"ledger → front-end (39 = {record.get('note')})"
    if link == "pos":
        mti = message.get("mti", "")
        code = message.get("fields", {}).get("39")
        return f"front-end ← NAC {mti}" if direction == "in" else f"front-end → NAC {mti} (39={code})"
    if link == "hsm":
        code = message.get("code", "")
        return f"front-end → HSM {code}" if direction == "out" else f"front-end ← HSM {code} ({record.get('note')})"
    mti = message.get("mti", "")
    return f"front-end → ledger {mti}" if direction == "out" else f"front-end ← ledger (39 = {record.get('note')})"


def render(records: list[dict[str, Any]], *, since: float | None = None, until: float | None = None) -> list[str]:
    """``+ms  hop`` lines, times relative to ``since`` (default: the first record)."""
    if not records:
        return []
    times = [dt.datetime.fromisoformat(r["time"]).timestamp() for r in records]
    origin = since if since is not None else times[0]
    lines = []
    for at, record in zip(times, records, strict=True):
        if until is not None and at > until:
            continue
        lines.append(f"{(at - origin) * 1000:9.2f} ms  {describe_hop(record)}")
    return lines


def exchange_records(
    trace_dir: Path, terminal_id: str, stan: str, *, since: float | None = None
) -> list[dict[str, Any]]:
    """The records of one exchange (terminal, STAN) in every service's trace, by time; with ``since`` only those
    written from then on (a reversal shares its original's STAN)."""
    records = [r for r in load_records(trace_dir) if matches(r, terminal_id, stan)]
    if since is not None:
        records = [r for r in records if dt.datetime.fromisoformat(r["time"]).timestamp() >= since]
    return records


def journey(
    trace_dir: Path, terminal_id: str, stan: str, *, since: float | None = None, until: float | None = None
) -> list[str]:
    return render(exchange_records(trace_dir, terminal_id, stan, since=since), since=since, until=until)


#: The services whose own records of an exchange carry its terminal and STAN, so that the front-end's record of a
#: message to one of them says that one has records to write (the HSM's own records carry neither).
_PEERS_TRACING_EXCHANGES: Final = frozenset({"nac", "ledger", "scheme"})


def exchange_complete(records: list[dict[str, Any]], *, also: Iterable[str] = ()) -> bool:
    """Whether every process of an exchange has written its part, given the exchange's records so far: the
    front-end's answer to the NAC; and, of each service the front-end exchanged with that traces exchanges (NAC,
    ledger, switch) and each service in ``also`` (an issuer behind the switch: only the switch knows that it asked),
    records with each of its peers both ways — a message in and the answer out, or out and its answer in. Each
    service writes its trace on its own time (in batches, off its event loop): a reader that shows an exchange
    waits for this first."""
    answered = any(
        r["service"].startswith("frontend") and r["direction"] == "out" and r.get("link") == "pos" for r in records
    )
    owed = {
        r.get("peer") for r in records if r["service"].startswith("frontend") and r["direction"] == "out"
    } & _PEERS_TRACING_EXCHANGES | set(also)
    ways: dict[str, dict[str, set[str]]] = {}  # service → peer → directions recorded
    for r in records:
        ways.setdefault(r["service"], {}).setdefault(r.get("peer") or "", set()).add(r["direction"])
    both = {"in", "out"}
    return answered and all(
        service in ways and all(directions == both for directions in ways[service].values()) for service in owed
    )
