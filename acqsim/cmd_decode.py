"""``acqsim decode HEX|-``: dissect a POS-link (default) or host-link frame given as hex.

The hex may contain spaces and newlines and may start with the 2-byte length prefix (recognised when it
equals the number of bytes after it). Bad input exits 2 with one line naming what is wrong and where.
"""

from __future__ import annotations

import argparse
import json
import sys

from wire.dissect import as_json, as_text, dissect_host, dissect_pos
from wire.errors import WireError
from wire.framing import LENGTH_PREFIX_LEN


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("hex", help="the frame as hex, or - to read it from standard input")
    parser.add_argument("--link", choices=("pos", "host"), default="pos", help="which link's format (default pos)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--unmask", action="store_true", help="show everything: cards, tracks, ICC data, keys, the encrypted PIN block"
    )


def read_frame(text: str) -> tuple[bytes, int]:
    """The payload and the offset it starts at in the given bytes (2 when a length prefix was given)."""
    cleaned = "".join(text.split())
    if len(cleaned) % 2 or any(c not in "0123456789abcdefABCDEF" for c in cleaned):
        bad = next((i for i, c in enumerate(cleaned) if c not in "0123456789abcdefABCDEF"), len(cleaned) - 1)
        raise WireError("input is not hex" if len(cleaned) % 2 == 0 else "odd number of hex digits", offset=bad // 2)
    data = bytes.fromhex(cleaned)
    if len(data) > LENGTH_PREFIX_LEN and int.from_bytes(data[:2], "big") == len(data) - LENGTH_PREFIX_LEN:
        return data[LENGTH_PREFIX_LEN:], LENGTH_PREFIX_LEN
    return data, 0


def run(args: argparse.Namespace) -> int:
    try:
        text = sys.stdin.read() if args.hex == "-" else args.hex
    except UnicodeDecodeError as exc:
        print(f"acqsim decode: standard input is not text (offset {exc.start})", file=sys.stderr)
        return 2
    try:
        payload, start = read_frame(text)
        try:
            dissection = (dissect_pos if args.link == "pos" else dissect_host)(payload, unmask=args.unmask)
        except WireError as exc:
            if exc.offset is not None:
                exc.offset += start
            raise
    except WireError as exc:
        where = ", ".join(
            p
            for p in (
                f"field {exc.field}" if exc.field else "",
                f"offset {exc.offset}" if exc.offset is not None else "",
            )
            if p
        )
        print(f"acqsim decode: {exc.reason}" + (f" ({where})" if where else ""), file=sys.stderr)
        return 2
    if start:
        dissection["length"] = len(payload)
    if args.json:
        print(json.dumps(as_json(dissection)))
    else:
        print(as_text(dissection))
    return 0
