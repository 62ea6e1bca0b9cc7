"""HSM commands per second over TCP (M8 MAC verify, DC PIN verify) with 1 and 16 concurrent callers, beside
the raw cost of the TDES operations they need, measured in the same run.

Read the ratios: "TCP M8 / raw" says how much of the HSM's capacity is protocol, framing and asyncio rather
than cryptography.
"""

from __future__ import annotations

import functools
import time

import anyio

from hsm_sim.client import HsmClient
from hsm_sim.keys import DEFAULT_TEST_LMK, KeyType, encrypt_under_lmk
from hsm_sim.server import serve
from wire.paycrypto import MacAlgorithm, build_pin_block, mac_cup_ecb, tdes_ecb_encrypt

SECONDS = 2.0
MAK = bytes.fromhex("1C587F1C13924FEFFEDCBA9876543210")
PIK = bytes.fromhex("0123456789ABCDEF1C587F1C13924FEF")
PVK = bytes.fromhex("7A3D5E1F2A4C6B8C9E0E1A2A3D4C5E6E")
PAN = "6200001000000003"
DATA = bytes(range(120))


def raw_rate(operation: object) -> float:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < SECONDS:
        operation()  # type: ignore[operator]
        count += 1
    return count / (time.perf_counter() - start)


async def tcp_rate(concurrency: int, call: object) -> float:
    count = 0
    deadline = time.perf_counter() + SECONDS

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            await call()  # type: ignore[operator]
            count += 1

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker)
    return count / (time.perf_counter() - start)


async def measure() -> dict[str, float]:
    results: dict[str, float] = {}
    mak = encrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.TAK, MAK)
    pik = encrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.TPK, PIK)
    pvk = encrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.PVK, PVK)
    mac = mac_cup_ecb(MAK, DATA)
    block = tdes_ecb_encrypt(PIK, build_pin_block("123456", PAN))
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve, "127.0.0.1", 0, lmk=DEFAULT_TEST_LMK))
        async with await HsmClient.connect("127.0.0.1", port) as hsm:

            async def m8() -> None:
                await hsm.verify_mac(KeyType.TAK, mak, DATA, mac, MacAlgorithm.CUP_ECB)

            async def dc() -> None:
                await hsm.verify_pin_pvv(pik, pvk, block, PAN, pvki="1", pvv="6308")

            for name, call in (("M8", m8), ("DC", dc)):
                for concurrency in (1, 16):
                    results[f"tcp_{name}_x{concurrency}"] = await tcp_rate(concurrency, call)
        tg.cancel_scope.cancel()
    return results


def main() -> None:
    raw_mac = raw_rate(lambda: mac_cup_ecb(MAK, DATA))
    raw_tdes = raw_rate(lambda: tdes_ecb_encrypt(PIK, bytes(8)))
    tcp = anyio.run(measure)
    print(f"raw TDES block: {raw_tdes:,.0f}/s   raw CUP MAC (120 bytes): {raw_mac:,.0f}/s")
    for name, rate in tcp.items():
        base = raw_mac if "M8" in name else raw_tdes
        print(
            f"{name:<12} {rate:>10,.0f} commands/s   ratio to raw {'MAC' if 'M8' in name else 'TDES'}: "
            f"{rate / base:.3f}"
        )


if __name__ == "__main__":
    main()
