"""pyiso8583 encode/decode of the same POS messages beside acqsim's codec path (which wraps pyiso8583 with
input copying, bitmap checks, BCD checks and error translation), measured in the same run."""

from __future__ import annotations

import copy
import time

import iso8583

from bench.report import emit
from wire.codec import decode_pos_body, encode_pos_body
from wire.specs import POS_SPEC

SECONDS = 1.5
PURCHASE = {
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
OURS = {**PURCHASE, "35": PURCHASE["35"].replace("D", "=")}


def rate(operation: object) -> float:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < SECONDS:
        operation()  # type: ignore[operator]
        count += 1
    return count / (time.perf_counter() - start)


def main() -> None:
    raw, _ = iso8583.encode(copy.deepcopy(PURCHASE), POS_SPEC)
    body = bytes(raw)
    assert encode_pos_body(OURS) == body
    results = {
        "pyiso8583_encode": rate(lambda: iso8583.encode(copy.deepcopy(PURCHASE), POS_SPEC)),
        "acqsim_encode": rate(lambda: encode_pos_body(OURS)),
        "pyiso8583_decode": rate(lambda: iso8583.decode(body, POS_SPEC)),
        "acqsim_decode": rate(lambda: decode_pos_body(body)),
    }
    for name, value in results.items():
        print(f"{name:<18} {value:>10,.0f} messages/s")
    print(
        f"acqsim / pyiso8583: encode {results['acqsim_encode'] / results['pyiso8583_encode']:.2f}, "
        f"decode {results['acqsim_decode'] / results['pyiso8583_decode']:.2f}"
    )
    emit(
        {
            **{f"{name}_per_s": value for name, value in results.items()},
            "encode_ratio": results["acqsim_encode"] / results["pyiso8583_encode"],
            "decode_ratio": results["acqsim_decode"] / results["pyiso8583_decode"],
        }
    )


if __name__ == "__main__":
    main()
