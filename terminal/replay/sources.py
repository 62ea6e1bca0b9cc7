"""Where recorded traffic comes from: hex dumps, pcap captures, acqsim JSON-lines traces.

Each source yields :class:`Recorded` exchanges: the terminal's request (raw bytes when the source has them,
and always its dissected fields) and the host's recorded answer fields, paired by terminal id and STAN.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from terminal.replay.pcap import read_pcap
from wire.dissect import as_json, dissect_pos
from wire.errors import WireError
from wire.tpdu import TERMINAL_SRC
from wire.trace import read_trace


@dataclasses.dataclass(slots=True)
class Recorded:
    request_fields: dict[str, str]
    mti: str
    raw: bytes | None = None
    answer_fields: dict[str, str] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.request_fields.get("41", ""), self.request_fields.get("11", "")


def _pair(items: Iterable[tuple[bool, dict[str, Any], bytes | None]]) -> list[Recorded]:
    """``(to_host, dissection, raw)`` in time order → requests with their answers (matched by 41 + 11)."""
    exchanges: list[Recorded] = []
    waiting: dict[tuple[str, str], Recorded] = {}
    for to_host, dissection, raw in items:
        fields = dissection.get("fields", {})
        if to_host:
            recorded = Recorded(request_fields=fields, mti=dissection.get("mti", ""), raw=raw)
            exchanges.append(recorded)
            waiting[recorded.key] = recorded
        else:
            match = waiting.pop((fields.get("41", ""), fields.get("11", "")), None)
            if match is not None:
                match.answer_fields = fields
    return exchanges


def _dissected(payload: bytes) -> dict[str, Any]:
    return as_json(dissect_pos(payload))


def from_hex(path: Path) -> list[Recorded]:
    """One frame per line (hex, spaces allowed, with or without the 2-byte length)."""
    items = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = "".join(line.split())
        if not text or text.startswith("#"):
            continue
        try:
            data = bytes.fromhex(text)
        except ValueError:
            raise WireError(f"line {number} is not hex") from None
        if len(data) > 2 and int.from_bytes(data[:2], "big") == len(data) - 2:
            data = data[2:]
        dissection = _dissected(data)
        items.append((dissection["tpdu"]["src"] == TERMINAL_SRC, dissection, data))
    return _pair(items)


def from_pcap(path: Path) -> list[Recorded]:
    return _pair((f.to_host, _dissected(f.payload), f.payload) for f in read_pcap(path))


def from_trace(path: Path) -> list[Recorded]:
    """An acqsim trace (``nac.jsonl``): the terminal-side records. Masked: replayable by rebuilding only."""
    items = []
    for record in read_trace(path):
        message = record.get("message", {})
        tpdu = message.get("tpdu", {})
        if record.get("direction") == "in" and tpdu.get("src") == TERMINAL_SRC:
            items.append((True, message, None))
        elif record.get("direction") == "out" and tpdu.get("dst") == TERMINAL_SRC:
            items.append((False, message, None))
    return _pair(items)
