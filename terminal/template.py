"""A financial request encoded once and patched per request: the load terminals' fast path.

A terminal that sends the same kind of request for the same card and amount under the same keys and batch
(every load terminal, thousands of times a second) builds the same body each time but for four fields: the
STAN (11), the local time (12) and date (13) — fixed-length BCD, at fixed offsets — and the MAC (64), the
body's last 8 bytes. The PIN block (52) is the same too: ISO 9564 format 0 under the same PIK is
deterministic. So :class:`RequestTemplate` keeps the body of one full encode (``wire.codec``) with the offsets
of 11, 12 and 13, and each request writes the new STAN, time and date there and MACs the result: the same bytes
as a full encode (``tests/terminal/test_template.py`` proves it with hypothesis for arbitrary values), in a
fraction of the time. :meth:`RequestTemplate.of` declines (``None``) a body whose layout it cannot prove —
the session then encodes each request in full, as before.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Final

from wire.codec import MAC_LEN, encode_pos_body, pos_body_mac

#: The fields patched per request, in body order: STAN (n6), local time hhmmss (n6), local date MMDD (n4).
PATCHED_FIELDS: Final = ("11", "12", "13")
#: Their length on the wire: packed BCD, two digits a byte.
_PATCHED_LEN: Final = 8
#: Byte ``n`` (0–99) as packed BCD.
_BCD: Final = tuple((n // 10) << 4 | n % 10 for n in range(100))


@dataclasses.dataclass(frozen=True, slots=True)
class RequestTemplate:
    """One request's body (MAC included, to be replaced) and where 11 ‖ 12 ‖ 13 start in it."""

    body: bytes
    stan_offset: int

    @classmethod
    def of(cls, fields: Mapping[str, str], body: bytes) -> RequestTemplate | None:
        """The template of ``body``, the full encode of ``fields`` plus a MAC (64); ``None`` unless the body ends
        with a MAC and 11, 12 and 13 are six, six and four digits found as packed BCD back to back where the
        codec put them."""
        if pos_body_mac(body) is None or not all(key in fields for key in PATCHED_FIELDS):
            return None
        patched = "".join(fields[key] for key in PATCHED_FIELDS)
        if len(patched) != 2 * _PATCHED_LEN or not (patched.isascii() and patched.isdigit()):
            return None
        # 11 starts where the fields before it end: the length of the body of the MTI and those fields alone
        # (fields ≤ 64 only, so the bitmap has the same length in both).
        before = {key: value for key, value in fields.items() if key == "t" or (key.isdigit() and int(key) < 11)}
        offset = len(encode_pos_body(before))
        if body[offset : offset + _PATCHED_LEN] != bytes.fromhex(patched):
            return None
        return cls(body=body, stan_offset=offset)

    def render(self, stan: str, now: dt.datetime, mac: Callable[[bytes], bytes]) -> bytes:
        """The body with STAN ``stan`` (six digits), local time and date of ``now``, MACed by ``mac``."""
        body = bytearray(self.body)
        start = self.stan_offset
        body[start : start + _PATCHED_LEN] = bytes.fromhex(stan) + bytes(
            (_BCD[now.hour], _BCD[now.minute], _BCD[now.second], _BCD[now.month], _BCD[now.day])
        )
        body[-MAC_LEN:] = mac(bytes(body[:-MAC_LEN]))
        return bytes(body)
