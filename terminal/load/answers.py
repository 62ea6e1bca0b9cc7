"""Answers read at fixed offsets: the load engine's fast path for answers shaped like one it has decoded.

An engine learns which terminal an answer is for (41), whether it answers that terminal's exchange (11) and
its response code (39) — the rest of a financial answer it does not use. A host answers a load run's
purchases with bodies of one shape: the same MTI and bitmap, the same length, each variable-length field the
same length. :class:`AnswerLayouts` learns that shape from one answer the codec decoded in full — where each
field starts, the length prefix of each variable-length field — and reads a later body of the same shape (MTI,
bitmap, length and every length prefix equal, checked before anything is read) by slicing 11, 39 and 41 out
where they must be. A body of any other shape, or whose 39 or 41 are not ASCII, is not read (``None``): the
engine decodes it in full, as before, and learns its shape. The answer's MAC is verified either way, over the
whole body, by the session. ``tests/terminal/load/test_answers.py`` proves the fast reading equals the full
decode for arbitrary answers (hypothesis).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final

from wire.codec import encode_pos_body
from wire.errors import WireError
from wire.specs import POS_BITMAP_OFFSET, POS_SPEC

#: What a fast reading gives: 11, 39 and 41, and the MTI.
READ_FIELDS: Final = ("t", "11", "39", "41")
#: Shapes an engine keeps (then it starts afresh): a host answers a run's requests in one or a few.
MAX_LAYOUTS: Final = 64
_HEAD_LEN: Final = POS_BITMAP_OFFSET + 8  # MTI (BCD) and the primary bitmap
_SECONDARY_BITMAP: Final = 0x80  # bit 1 of the primary bitmap
_STAN_LEN: Final = 3  # n6, packed BCD
_CODE_LEN: Final = 2  # an2
_TERMINAL_LEN: Final = 8  # ans8
_VARIABLE: Final = frozenset(key for key, spec in POS_SPEC.items() if key.isdigit() and spec["len_type"] > 0)


@dataclasses.dataclass(frozen=True, slots=True)
class _Layout:
    #: (offset, bytes) of every variable-length field's length prefix: equal prefixes, equal shape.
    prefixes: tuple[tuple[int, bytes], ...]
    stan_at: int
    code_at: int
    terminal_at: int


class AnswerLayouts:
    """The shapes of answers decoded in full, and fast reading of answers of those shapes."""

    def __init__(self) -> None:
        self._layouts: dict[tuple[bytes, int], _Layout] = {}

    def read(self, body: bytes) -> dict[str, str] | None:
        """MTI, 11, 39 and 41 of ``body`` if it has a learnt shape, else ``None``."""
        layout = self._layouts.get((body[:_HEAD_LEN], len(body)))
        if layout is None:
            return None
        for offset, prefix in layout.prefixes:
            if body[offset : offset + len(prefix)] != prefix:
                return None
        try:
            code = body[layout.code_at : layout.code_at + _CODE_LEN].decode("ascii")
            terminal = body[layout.terminal_at : layout.terminal_at + _TERMINAL_LEN].decode("ascii")
        except UnicodeDecodeError:
            return None
        stan = body[layout.stan_at : layout.stan_at + _STAN_LEN].hex()
        if not stan.isdigit():
            return None
        return {"t": body[:POS_BITMAP_OFFSET].hex(), "11": stan, "39": code, "41": terminal}

    def learn(self, body: bytes, fields: Mapping[str, str]) -> None:
        """Remember the shape of ``body``, which the codec decoded to ``fields``, if it carries 11, 39 and 41
        and the codec encodes ``fields`` back to ``body`` (so the offsets found by encoding hold in it)."""
        if body[POS_BITMAP_OFFSET] & _SECONDARY_BITMAP or not all(key in fields for key in READ_FIELDS):
            return  # (a secondary bitmap would move every field of a partial encode)
        if encode_pos_body(fields) != body:
            return
        starts: dict[str, int] = {}
        before = {"t": fields["t"]}
        try:
            for key in sorted((key for key in fields if key.isdigit()), key=int):
                starts[key] = len(encode_pos_body(before))  # field n starts where the MTI and fields < n end
                before[key] = fields[key]
        except WireError:  # a part the codec refuses alone (it took the whole): no shape to learn
            return
        prefixes = tuple(
            (start, body[start : start + POS_SPEC[key]["len_type"]])
            for key, start in starts.items()
            if key in _VARIABLE
        )
        if len(self._layouts) >= MAX_LAYOUTS:
            self._layouts.clear()
        self._layouts[(body[:_HEAD_LEN], len(body))] = _Layout(
            prefixes=prefixes, stan_at=starts["11"], code_at=starts["39"], terminal_at=starts["41"]
        )
