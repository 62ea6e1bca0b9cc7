"""The specialised codec (``wire/fastcodec.py``) beside the pyiso8583 reference path (``wire/refcodec.py``) and
bare pyiso8583, on the same POS purchase and host request, measured in the same run.

Figures: messages/s of each, and ``fast_vs_reference_*`` (what ``wire.codec`` gained over the pyiso8583 path
it used before) and ``fast_vs_pyiso8583_*`` (over the bare library, which does none of acqsim's checks)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Final

import iso8583

from bench.rates import op_rate
from bench.report import emit
from wire import codec, refcodec
from wire.specs import HOST_SPEC, POS_SPEC

SECONDS: Final = 1.0
ROUNDS: Final = 3
PURCHASE: Final = {
    "t": "0200",
    "2": "6200001000000003",
    "3": "000000",
    "4": "000000012800",
    "11": "000123",
    "12": "101010",
    "13": "1124",
    "14": "3012",
    "22": "021",
    "25": "00",
    "26": "06",
    "35": "6200001000000003D30122011630800000",
    "41": "10000001",
    "42": "898100000000001",
    "49": "156",
    "52": "AB7374D801F4A390",
    "53": "2600000000000000",
    "60": "22000001000",
    "64": "3132333435363738",
}
OURS: Final = {**PURCHASE, "35": PURCHASE["35"].replace("D", "=")}
HOST_REQUEST: Final = {
    "t": "0200",
    "2": "6200001000000003",
    "3": "000000",
    "4": "000000012800",
    "7": "1204101010",
    "11": "000123",
    "32": "12345678",
    "37": "263380000007",
    "41": "10000001",
    "42": "898100000000001",
    "49": "156",
}


def rate(operation: Callable[[], object]) -> float:
    """Operations per second: the best of a few rounds (the machine is shared; the best is the least disturbed)."""
    return max(op_rate(operation, SECONDS / ROUNDS) for _ in range(ROUNDS))


def main() -> None:
    body = codec.encode_pos_body(OURS)
    host = codec.encode_host(HOST_REQUEST)
    assert body == refcodec.encode_pos_body(OURS) == bytes(iso8583.encode(copy.deepcopy(PURCHASE), POS_SPEC)[0])
    assert host == refcodec.encode_host(HOST_REQUEST)
    results = {
        "pos_encode_pyiso8583": rate(lambda: iso8583.encode(dict(PURCHASE), POS_SPEC)),
        "pos_encode_reference": rate(lambda: refcodec.encode_pos_body(OURS)),
        "pos_encode_fast": rate(lambda: codec.encode_pos_body(OURS)),
        "pos_decode_pyiso8583": rate(lambda: iso8583.decode(body, POS_SPEC)),
        "pos_decode_reference": rate(lambda: refcodec.decode_pos_body(body)),
        "pos_decode_fast": rate(lambda: codec.decode_pos_body(body)),
        "host_encode_pyiso8583": rate(lambda: iso8583.encode(dict(HOST_REQUEST), HOST_SPEC)),
        "host_encode_fast": rate(lambda: codec.encode_host(HOST_REQUEST)),
        "host_decode_pyiso8583": rate(lambda: iso8583.decode(host, HOST_SPEC)),
        "host_decode_fast": rate(lambda: codec.decode_host(host)),
    }
    for name, value in results.items():
        print(f"{name:<22} {value:>10,.0f} messages/s  {1e6 / value:6.1f} µs")
    ratios = {
        "fast_vs_reference_pos_encode": results["pos_encode_fast"] / results["pos_encode_reference"],
        "fast_vs_reference_pos_decode": results["pos_decode_fast"] / results["pos_decode_reference"],
        "fast_vs_pyiso8583_pos_encode": results["pos_encode_fast"] / results["pos_encode_pyiso8583"],
        "fast_vs_pyiso8583_pos_decode": results["pos_decode_fast"] / results["pos_decode_pyiso8583"],
        "fast_vs_pyiso8583_host_encode": results["host_encode_fast"] / results["host_encode_pyiso8583"],
        "fast_vs_pyiso8583_host_decode": results["host_decode_fast"] / results["host_decode_pyiso8583"],
    }
    for name, ratio in ratios.items():
        print(f"{name:<30} {ratio:5.2f} ×")
    emit({**{f"{name}_per_s": value for name, value in results.items()}, **ratios})


if __name__ == "__main__":
    main()
