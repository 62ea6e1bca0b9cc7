"""Open-loop pacing and the transaction mix, sans-IO.

Request *i* is due at ``start + i / rate`` whatever happened to earlier requests, and its latency is measured
from that due time — so a slow system shows up as latency (queueing included) instead of silently lowering
the offered load (coordinated omission).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from typing import Final

KINDS: Final = ("purchase", "balance", "preauth")
#: Kinds drawn at a time by :meth:`Mix.kinds`.
_DRAW_BATCH: Final = 1024


@dataclasses.dataclass(frozen=True, slots=True)
class OpenLoopSchedule:
    rate: float  # requests per second
    duration: float  # seconds

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.duration <= 0:
            raise ValueError("rate and duration must be positive")

    @property
    def count(self) -> int:
        return int(self.rate * self.duration)

    def due(self, index: int) -> float:
        """Seconds after the start at which request ``index`` is due."""
        return index / self.rate


@dataclasses.dataclass(frozen=True, slots=True)
class Mix:
    weights: tuple[tuple[str, int], ...]

    @classmethod
    def parse(cls, text: str) -> Mix:
        weights = []
        for part in text.split(","):
            kind, sep, weight = part.partition("=")
            if not sep or kind.strip() not in KINDS or not weight.strip().isdigit():
                raise ValueError(f"mix part {part!r} is not KIND=WEIGHT with KIND one of {', '.join(KINDS)}")
            weights.append((kind.strip(), int(weight)))
        if not weights or sum(w for _, w in weights) == 0:
            raise ValueError("the mix needs a positive weight")
        return cls(tuple(weights))

    def kinds(self, seed: int = 0) -> Iterator[str]:
        """The kind of each request in turn, drawn with the mix's weights as they are needed (a run of any
        length holds no plan); the same sequence as :meth:`plan` for a seed."""
        rng = random.Random(seed)
        kinds = [k for k, _ in self.weights]
        weights = [w for _, w in self.weights]
        while True:
            yield from rng.choices(kinds, weights=weights, k=_DRAW_BATCH)

    def plan(self, count: int, seed: int = 0) -> list[str]:
        """The kind of each request, drawn with the mix's weights (repeatable for a seed)."""
        rng = random.Random(seed)
        kinds = [k for k, _ in self.weights]
        return rng.choices(kinds, weights=[w for _, w in self.weights], k=count)
