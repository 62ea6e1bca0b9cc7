"""Where a transaction's time goes, stage by stage, from the services' trace records — sans-IO: records in,
stage durations out (``acqsim trace stages`` reads the files and prints what :func:`stage_report` returns).

Every record of a transaction becomes an *event* at the time its service traced it: ``NAC ← terminal``,
``NAC → front-end``, ``front-end ← NAC``, ``front-end → HSM``, …, ``NAC → terminal``. The services share one
clock (one machine), so the events of the NAC, the front-end(s) and the ledger order into one timeline.
Consecutive events of one kind are one step (the front-end asks the HSM M8 and DC together, and goes on when
both answered): a step starts at its first event and ends at its last. A *stage* runs from the end of one step
to the end of the next, so a transaction's stages add up to its time from the NAC's arrival to the NAC's
answer. The stage ``front-end ← HSM → front-end → ledger`` is named "front-end between the HSM and the ledger"
(its journal commit), and so on (:data:`STAGE_NAMES`); a pair with no name is shown as its two events.

What the traces cannot show: the terminal's own send and receive (the terminal traces nothing: the load
generator's latency minus the NAC-to-NAC total is the terminal's side), and the HSM's own in → out (its records
carry no transaction id: the HSM round trip is the front-end's, wire both ways included).

A terminal's STAN can recur in one trace folder (a restarted run): a new ``NAC ← terminal`` starts a new
transaction of that terminal and STAN.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
from collections.abc import Iterable, Sequence
from typing import Any, Final

from acqsim.web.hops import transaction_of
from wire.tpdu import TERMINAL_SRC

#: The percentiles each stage is reported at (nearest rank, :func:`percentile`).
PERCENTILES: Final = (50.0, 99.0)

NAC_FROM_TERMINAL: Final = "NAC ← terminal"
NAC_TO_FRONTEND: Final = "NAC → front-end"
FRONTEND_FROM_NAC: Final = "front-end ← NAC"
FRONTEND_TO_HSM: Final = "front-end → HSM"
FRONTEND_FROM_HSM: Final = "front-end ← HSM"
FRONTEND_TO_LEDGER: Final = "front-end → ledger"
LEDGER_FROM_FRONTEND: Final = "ledger ← front-end"
LEDGER_TO_FRONTEND: Final = "ledger → front-end"
FRONTEND_FROM_LEDGER: Final = "front-end ← ledger"
FRONTEND_TO_NAC: Final = "front-end → NAC"
NAC_FROM_FRONTEND: Final = "NAC ← front-end"
NAC_TO_TERMINAL: Final = "NAC → terminal"

#: The front-end's peers by link, as its events name them.
_FRONTEND_PEERS: Final = {"pos": "NAC", "hsm": "HSM", "host": "ledger", "switch": "switch", "wallet": "wallet"}

#: Stage names for the pairs of steps a purchase passes through; ``{codes}`` is the HSM commands of the step.
STAGE_NAMES: Final[dict[tuple[str, str], str]] = {
    (NAC_FROM_TERMINAL, NAC_TO_FRONTEND): "NAC in → out, to the front-end",
    (NAC_TO_FRONTEND, FRONTEND_FROM_NAC): "NAC → front-end (wire, front-end's read)",
    (FRONTEND_FROM_NAC, FRONTEND_TO_HSM): "front-end before the HSM",
    (FRONTEND_TO_HSM, FRONTEND_FROM_HSM): "HSM round trip {codes}",
    (FRONTEND_FROM_HSM, FRONTEND_TO_LEDGER): "front-end between the HSM and the ledger (journal commit)",
    (FRONTEND_FROM_NAC, FRONTEND_TO_LEDGER): "front-end before the ledger (journal commit)",
    (FRONTEND_TO_LEDGER, LEDGER_FROM_FRONTEND): "front-end → ledger (wire, ledger's read)",
    (LEDGER_FROM_FRONTEND, LEDGER_TO_FRONTEND): "ledger in → out (authorise, post, commit)",
    (LEDGER_TO_FRONTEND, FRONTEND_FROM_LEDGER): "ledger → front-end (wire, front-end's read)",
    (FRONTEND_TO_LEDGER, FRONTEND_FROM_LEDGER): "ledger round trip (no ledger trace)",
    (FRONTEND_FROM_LEDGER, FRONTEND_TO_HSM): "front-end after the ledger",
    (FRONTEND_FROM_LEDGER, FRONTEND_TO_NAC): "front-end after the ledger, answering",
    (FRONTEND_FROM_HSM, FRONTEND_TO_NAC): "front-end after the HSM, answering",
    (FRONTEND_FROM_NAC, FRONTEND_TO_NAC): "front-end in → out",
    (FRONTEND_TO_NAC, NAC_FROM_FRONTEND): "front-end → NAC (wire, NAC's read)",
    (NAC_FROM_FRONTEND, NAC_TO_TERMINAL): "NAC in → out, to the terminal",
}
#: The row that sums a transaction's stages.
TOTAL: Final = "total: NAC ← terminal … NAC → terminal"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One traced record of a transaction: when (µs since the epoch), and what (``front-end → HSM``)."""

    at_us: int
    kind: str
    hsm_code: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Stage:
    """One stage of one transaction: its name and how long it took."""

    name: str
    micros: int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StageFigures:
    """One stage over many transactions: how many had it, its mean, percentiles and maximum (ms; the means of
    the stages add up to the mean total, their percentiles do not), and where it usually falls in a transaction
    (its mean position, for ordering the rows)."""

    name: str
    count: int
    mean_ms: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    position: float

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "position"}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class KindReport:
    """The stages of the transactions of one request MTI (``0200``), in the order they happen, and the total."""

    mti: str
    transactions: int
    stages: tuple[StageFigures, ...]
    total: StageFigures | None

    def as_json(self) -> dict[str, Any]:
        return {
            "mti": self.mti,
            "transactions": self.transactions,
            "stages": [s.as_json() for s in self.stages],
            "total": self.total.as_json() if self.total else None,
        }


def event_of(record: dict[str, Any]) -> Event | None:
    """The event a trace record (as :func:`wire.trace.read_trace` gives it) stands for, or ``None`` for a record
    that is no step of a transaction (the HSM's own records, which name no transaction)."""
    service, direction, link = str(record.get("service", "")), record.get("direction"), str(record.get("link"))
    message = record.get("message", {})
    if service == "nac" and link == "pos":
        tpdu = message.get("tpdu", {})
        if direction == "in":
            kind = NAC_FROM_TERMINAL if tpdu.get("src") == TERMINAL_SRC else NAC_FROM_FRONTEND
        else:
            kind = NAC_TO_TERMINAL if tpdu.get("dst") == TERMINAL_SRC else NAC_TO_FRONTEND
    elif service.startswith("frontend"):  # frontend, or frontend-K of a pool
        peer = _FRONTEND_PEERS.get(link, link)
        kind = f"front-end {'→' if direction == 'out' else '←'} {peer}"
    elif service == "ledger" and link == "host":
        kind = LEDGER_FROM_FRONTEND if direction == "in" else LEDGER_TO_FRONTEND
    else:
        return None
    when = dt.datetime.fromisoformat(str(record["time"]))
    at_us = round(when.timestamp() * 1_000_000)
    code = message.get("code") if link == "hsm" else None
    return Event(at_us=at_us, kind=kind, hsm_code=str(code) if code else None)


def request_mti(record: dict[str, Any]) -> str | None:
    """The MTI of a terminal's request as the NAC received it (``0200``), else ``None``."""
    if record.get("service") == "nac" and record.get("direction") == "in":
        mti = record.get("message", {}).get("mti")
        if mti and record.get("message", {}).get("tpdu", {}).get("src") == TERMINAL_SRC:
            return str(mti)
    return None


@dataclasses.dataclass(slots=True)
class _Transaction:
    mti: str | None
    events: list[Event]


def transactions(records: Iterable[dict[str, Any]]) -> list[_Transaction]:
    """The records joined into transactions: by terminal and STAN, a new one at each ``NAC ← terminal``; each
    transaction's events in time order."""
    by_key: dict[str, list[tuple[Event, str | None]]] = {}
    for record in records:
        event = event_of(record)
        key = transaction_of(record)
        if event is None or not key:
            continue
        by_key.setdefault(key, []).append((event, request_mti(record)))
    joined: list[_Transaction] = []
    for events in by_key.values():
        events.sort(key=lambda pair: pair[0].at_us)
        current: _Transaction | None = None
        for event, mti in events:
            starts = event.kind == NAC_FROM_TERMINAL
            if current is None or (starts and any(e.kind == NAC_FROM_TERMINAL for e in current.events)):
                current = _Transaction(mti=mti, events=[])
                joined.append(current)
            if starts and current.mti is None:
                current.mti = mti
            current.events.append(event)
    return joined


@dataclasses.dataclass(frozen=True, slots=True)
class _Step:
    kind: str
    codes: str
    end_us: int


def _steps(events: Sequence[Event]) -> list[_Step]:
    """Consecutive events of one kind as one step, ending at its last event; the HSM codes it carried."""
    steps: list[_Step] = []
    codes: list[str] = []
    for event in events:
        if steps and steps[-1].kind == event.kind:
            codes = codes if event.hsm_code is None or event.hsm_code in codes else [*codes, event.hsm_code]
            steps[-1] = _Step(event.kind, "+".join(codes), event.at_us)
        else:
            codes = [event.hsm_code] if event.hsm_code else []
            steps.append(_Step(event.kind, "+".join(codes), event.at_us))
    return steps


def stage_name(first: _Step, second: _Step) -> str:
    named = STAGE_NAMES.get((first.kind, second.kind))
    if named is None:
        return f"{first.kind} … {second.kind}"
    return named.format(codes=first.codes or second.codes).rstrip()


def stages_of(events: Sequence[Event]) -> list[Stage]:
    """One transaction's stages, in order (its events in time order)."""
    steps = _steps(events)
    return [
        Stage(name=stage_name(first, second), micros=second.end_us - first.end_us)
        for first, second in itertools.pairwise(steps)
    ]


def percentile(sorted_values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile ``share`` (0–100) of values sorted ascending (not empty)."""
    rank = max(1, math.ceil(share / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _figures(name: str, micros: list[int], positions: list[int]) -> StageFigures:
    values = sorted(m / 1000 for m in micros)
    p50, p99 = (percentile(values, share) for share in PERCENTILES)
    return StageFigures(
        name=name,
        count=len(values),
        mean_ms=sum(values) / len(values),
        p50_ms=p50,
        p99_ms=p99,
        max_ms=values[-1],
        position=sum(positions) / len(positions),
    )


def stage_report(records: Iterable[dict[str, Any]], *, since: dt.datetime | None = None) -> list[KindReport]:
    """Stage figures by request MTI (most transactions first), of the transactions that began at ``since`` or
    later (default: all). The total counts only transactions traced from the NAC's arrival to its answer."""
    since_us = None if since is None else round(since.timestamp() * 1_000_000)
    by_mti: dict[str, list[_Transaction]] = {}
    for transaction in transactions(records):
        if since_us is not None and transaction.events[0].at_us < since_us:
            continue
        by_mti.setdefault(transaction.mti or "?", []).append(transaction)
    reports = []
    for mti, group in by_mti.items():
        micros: dict[str, list[int]] = {}
        positions: dict[str, list[int]] = {}
        totals: list[int] = []
        for transaction in group:
            for position, stage in enumerate(stages_of(transaction.events)):
                micros.setdefault(stage.name, []).append(stage.micros)
                positions.setdefault(stage.name, []).append(position)
            kinds = [e.kind for e in transaction.events]
            if kinds and kinds[0] == NAC_FROM_TERMINAL and kinds[-1] == NAC_TO_TERMINAL:
                totals.append(transaction.events[-1].at_us - transaction.events[0].at_us)
        figures = sorted(
            (_figures(name, values, positions[name]) for name, values in micros.items()), key=lambda f: f.position
        )
        total = _figures(TOTAL, totals, [0]) if totals else None
        reports.append(KindReport(mti=mti, transactions=len(group), stages=tuple(figures), total=total))
    reports.sort(key=lambda r: -r.transactions)
    return reports


def render(reports: Sequence[KindReport]) -> list[str]:
    """The report as text: per MTI, a row per stage (count, mean, p50, p99, max in ms)."""
    lines: list[str] = []
    for report in reports:
        rows = [*report.stages, *([report.total] if report.total else [])]
        width = max((len(row.name) for row in rows), default=10)
        lines.append(f"MTI {report.mti}: {report.transactions} transaction(s)")
        lines.append(f"  {'stage':<{width}}  {'count':>7}  {'mean ms':>8}  {'p50 ms':>8}  {'p99 ms':>8}  {'max ms':>8}")
        lines.extend(
            f"  {row.name:<{width}}  {row.count:>7}  {row.mean_ms:>8.2f}  {row.p50_ms:>8.2f}  {row.p99_ms:>8.2f}"
            f"  {row.max_ms:>8.2f}"
            for row in rows
        )
    return lines
