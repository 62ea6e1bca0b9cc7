"""Sales analytics for ``acqsim merchant report``: sales by hour, by method (card, QR, cash), the average
ticket and the top items, from the platform's sales log. Pure functions; the chart needs the ``plot`` extra."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Any, Final

from acqkit.amounts import yuan
from acqkit.extras import require
from merchant.model import Sale
from wire.merchantlink import METHODS

TOP_ITEMS: Final = 5
HOURS: Final = 24


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    merchant_id: str
    count: int
    total: int
    by_hour: tuple[tuple[int, int], ...]  # per hour 0..23: (count, amount)
    by_method: dict[str, tuple[int, int]]  # method → (count, amount)
    top_items: tuple[tuple[str, int, int], ...]  # (name, quantity, amount), best sellers by amount

    @property
    def average_ticket(self) -> int:
        return self.total // self.count if self.count else 0

    def as_json(self) -> dict[str, Any]:
        return {
            "merchant_id": self.merchant_id,
            "count": self.count,
            "total": self.total,
            "average_ticket": self.average_ticket,
            "by_hour": [{"hour": h, "count": c, "amount": a} for h, (c, a) in enumerate(self.by_hour) if c],
            "by_method": {m: {"count": c, "amount": a} for m, (c, a) in self.by_method.items()},
            "top_items": [{"name": n, "quantity": q, "amount": a} for n, q, a in self.top_items],
        }


def report(sales: Iterable[Sale], merchant_id: str, *, tz: dt.tzinfo | None = None) -> Report:
    """The report of ``merchant_id``'s sales; hours in ``tz`` (default: the local time zone)."""
    mine = [s for s in sales if s.merchant_id == merchant_id]
    hours = [[0, 0] for _ in range(HOURS)]
    methods = {method: [0, 0] for method in METHODS}
    items: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for sale in mine:
        hour = dt.datetime.fromtimestamp(sale.at, tz).hour
        hours[hour][0] += 1
        hours[hour][1] += sale.amount
        methods[sale.method][0] += 1
        methods[sale.method][1] += sale.amount
        for name, quantity, price in sale.items:
            items[name][0] += quantity
            items[name][1] += quantity * price
    top = sorted(items.items(), key=lambda kv: (-kv[1][1], kv[0]))[:TOP_ITEMS]
    return Report(
        merchant_id=merchant_id,
        count=len(mine),
        total=sum(s.amount for s in mine),
        by_hour=tuple((c, a) for c, a in hours),
        by_method={m: (c, a) for m, (c, a) in methods.items()},
        top_items=tuple((name, q, a) for name, (q, a) in top),
    )


def text(rep: Report) -> str:
    lines = [
        f"merchant {rep.merchant_id}: {rep.count} sales, {yuan(rep.total)} CNY, "
        f"average ticket {yuan(rep.average_ticket)}",
        "by method: " + ", ".join(f"{m} {c} / {yuan(a)}" for m, (c, a) in rep.by_method.items()),
        "by hour:",
    ]
    lines += [f"  {h:02d}:00  {c:4d}  {yuan(a):>12}" for h, (c, a) in enumerate(rep.by_hour) if c]
    lines.append("top items:")
    lines += [f"  {name:<20} x{q:<4} {yuan(a):>12}" for name, q, a in rep.top_items]
    return "\n".join(lines)


def plot(rep: Report, path: str) -> None:
    """Sales by hour, by method and the top items, as one PNG (needs the ``plot`` extra)."""
    require("matplotlib", "plot", "acqsim merchant report --plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (hourly, methods, top) = plt.subplots(1, 3, figsize=(15, 4.5))
    hourly.bar(range(HOURS), [a / 100 for _, a in rep.by_hour])
    hourly.set_xlabel("hour")
    hourly.set_ylabel("sales (CNY)")
    hourly.set_title(f"sales by hour (average ticket {yuan(rep.average_ticket)})")
    methods.bar(list(rep.by_method), [a / 100 for _, a in rep.by_method.values()])
    methods.set_title("by method")
    top.barh([name for name, _, _ in rep.top_items][::-1], [a / 100 for _, _, a in rep.top_items][::-1])
    top.set_title("top items (CNY)")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
