"""The dates the front-end formats by hand on every purchase read exactly as strftime writes them."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from frontend.flows.answer import month_day

#: strftime pads %Y to four digits only from year 1000 on (glibc); a terminal's clock is never earlier.
TIMES = st.datetimes(min_value=dt.datetime(1000, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59))


@given(TIMES)
def test_field_15_is_strftime_month_day(now: dt.datetime) -> None:
    assert month_day(now) == now.strftime("%m%d")
