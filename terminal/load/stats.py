"""Latency and outcome statistics of a load run: an HDR histogram (microsecond resolution, up to 60 s).

Memory does not grow with the run: the histogram is a fixed array (about 200 KB at 3 significant digits up to
60 s), outcome codes are counters, and the latency-over-time plot draws from a uniform random sample of at
most ``PLOT_SAMPLES`` requests (reservoir sampling), not from every request.
"""

from __future__ import annotations

import collections
import dataclasses
import random
from typing import Any, Final

from hdrh.histogram import HdrHistogram

from acqkit.extras import require

LOWEST_US: Final = 1
HIGHEST_US: Final = 60_000_000
SIGNIFICANT_DIGITS: Final = 3
NO_ANSWER: Final = "no answer"
#: Requests kept for the latency-over-time plot, whatever the run's length.
PLOT_SAMPLES: Final = 20_000


@dataclasses.dataclass
class LoadStats:
    histogram: HdrHistogram = dataclasses.field(
        default_factory=lambda: HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
    )
    codes: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    #: (seconds since start of the due time, latency in ms) of a uniform sample of requests, for the plot
    samples: list[tuple[float, float]] = dataclasses.field(default_factory=list)
    sent: int = 0
    not_sent: int = 0  # due before the end of the run but still queued at their terminal
    recorded: int = 0
    _sampler: random.Random = dataclasses.field(default_factory=lambda: random.Random(0), repr=False)

    def record(self, due_s: float, latency_s: float, code: str) -> None:
        self.histogram.record_value(max(LOWEST_US, min(HIGHEST_US, int(latency_s * 1_000_000))))
        self.codes[code] += 1
        self.recorded += 1
        if len(self.samples) < PLOT_SAMPLES:
            self.samples.append((due_s, latency_s * 1000))
        else:  # reservoir sampling: every request so far is in the sample with the same chance
            slot = self._sampler.randrange(self.recorded)
            if slot < PLOT_SAMPLES:
                self.samples[slot] = (due_s, latency_s * 1000)

    def percentile_ms(self, percentile: float) -> float:
        return float(self.histogram.get_value_at_percentile(percentile)) / 1000

    @property
    def completed(self) -> int:
        return sum(self.codes.values())

    def summary(self, elapsed_s: float) -> dict[str, Any]:
        answered = self.completed - self.codes.get(NO_ANSWER, 0)
        return {
            "sent": self.sent,
            "not_sent": self.not_sent,
            "completed": self.completed,
            "elapsed_s": round(elapsed_s, 3),
            "tps": round(answered / elapsed_s, 1) if elapsed_s > 0 else 0.0,
            "approved_tps": round(self.codes.get("00", 0) / elapsed_s, 1) if elapsed_s > 0 else 0.0,
            "p50_ms": round(self.percentile_ms(50), 3),
            "p90_ms": round(self.percentile_ms(90), 3),
            "p99_ms": round(self.percentile_ms(99), 3),
            "p999_ms": round(self.percentile_ms(99.9), 3),
            "max_ms": round(float(self.histogram.get_max_value()) / 1000, 3),
            "counts": dict(sorted(self.codes.items())),
        }


def table(summary: dict[str, Any]) -> str:
    lines = [
        f"sent {summary['sent']}, completed {summary['completed']} in {summary['elapsed_s']} s"
        + (f" ({summary['not_sent']} due but still queued when the run ended)" if summary["not_sent"] else ""),
        f"throughput {summary['tps']} answers/s ({summary['approved_tps']} approved/s)",
        "latency ms   p50 {p50_ms}   p90 {p90_ms}   p99 {p99_ms}   p99.9 {p999_ms}   max {max_ms}".format(**summary),
        "response codes: " + ", ".join(f"{k}: {v}" for k, v in summary["counts"].items()),
    ]
    return "\n".join(lines)


def plot(stats: LoadStats, path: str) -> None:
    """Latency over time and the latency histogram, as one PNG (needs the ``plot`` extra)."""
    require("matplotlib", "plot", "acqsim load --plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (over_time, histogram) = plt.subplots(1, 2, figsize=(12, 4.5))
    if stats.samples:
        times, latencies = zip(*stats.samples, strict=True)
        over_time.scatter(times, latencies, s=2)
        histogram.hist(latencies, bins=60)
    over_time.set_xlabel("due time (s)")
    over_time.set_ylabel("latency (ms, from the due time)")
    over_time.set_title("latency over time")
    histogram.set_xlabel("latency (ms)")
    histogram.set_ylabel("requests")
    histogram.set_title("latency histogram")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
