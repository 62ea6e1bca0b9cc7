"""Field 13, the local transaction date (MMDD), names a day without its year: the business date it means is that
MMDD in the year (the clock's, or the one before or after) closest to a clock's date. One rule for every service
that keys something by day from it: the ledger's business date and PIN-failure days, the front-end's PIN tries
(so a terminal whose clock has passed midnight before the host's counts on the same day at both)."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Final

#: How a business date is written (the ledger's stores, the front-end's PIN-try keys).
BUSINESS_DATE_FORMAT: Final = "%Y%m%d"


def business_date(local_date: str, now: dt.datetime) -> str:
    """YYYYMMDD for a MMDD field: the year (now's, or the one before / after) closest to ``now``."""
    return _business_date_on(local_date, now.date())


@functools.lru_cache(maxsize=64)  # every request asks, with a handful of distinct (date, today) pairs a day
def _business_date_on(local_date: str, today: dt.date) -> str:
    candidates = []
    for year in (today.year - 1, today.year, today.year + 1):
        try:
            day = dt.date(year, int(local_date[:2]), int(local_date[2:]))
        except ValueError:
            continue
        candidates.append((abs((day - today).days), day))
    if not candidates:
        return f"{today.year:04d}{local_date}"
    return min(candidates)[1].strftime(BUSINESS_DATE_FORMAT)
