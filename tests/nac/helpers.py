"""Frames and tables shared by the NAC tests."""

from __future__ import annotations

from nac.routes import Member, RouteTable
from wire.tpdu import Tpdu

HEADER = bytes.fromhex("603100000000")
ECHO_MARKER = b"|echo"


def table(*members: int, dst: str = "0003") -> RouteTable:
    """One route ``dst`` → a group of loopback members on ``members`` ports (default: one dummy)."""
    ports = members or (1,)
    return RouteTable(routes={dst: dst}, groups={dst: tuple(Member(host="127.0.0.1", port=p) for p in ports)})


def request(body: bytes = b"\x08\x00body", *, dst: str = "0003", src: str = "0000") -> bytes:
    """A terminal's frame payload: TPDU, POS header, body (opaque to the NAC)."""
    return Tpdu(dst=dst, src=src).to_bytes() + HEADER + body


def echo_answer(up: bytes) -> bytes:
    """What the echo front-end answers: TPDU swapped, everything else echoed, plus a marker."""
    return Tpdu.parse(up).swapped().to_bytes() + up[5:] + ECHO_MARKER
