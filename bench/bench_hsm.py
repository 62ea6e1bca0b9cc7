"""HSM commands per second over TCP (M8 MAC verify, DC PIN verify) with 1 and 16 concurrent callers, beside
the raw cost of the TDES operations they need, measured in the same run.

Three levels, measured side by side: the raw primitive (one TDES block, one CUP MAC), the sans-IO processor
handling a whole command in-process (parsing, key unwrapping under the LMK, the crypto, the answer), and the
command over loopback TCP through the client. Read the ratios: "TCP / processor" says how much of the HSM's
capacity goes to framing, sockets and the event loop rather than to the command itself.

The HSM runs under a random LMK of its own; the benchmark's keys enter it as on a real HSM (a TEST ZMK formed
from clear components with A4, the MAC and PIN keys imported under it with A6, the PVK formed with A4): the
benchmark never holds the LMK.
"""

from __future__ import annotations

import functools

import anyio

from acqsim.provision import split_into_components
from bench.rates import closed_loop_rate, op_rate
from bench.report import emit
from hsm_sim.client import HsmClient, KeyType, PinVerification
from hsm_sim.commands import MAC_ALGORITHM_BY_NAME
from hsm_sim.processor import HsmProcessor
from hsm_sim.server import serve
from wire.paycrypto import MacAlgorithm, build_pin_block, encrypt_key_under, mac_cup_ecb, tdes_ecb_encrypt

SECONDS = 2.0
MAK = bytes.fromhex("1C587F1C13924FEFFEDCBA9876543210")
PIK = bytes.fromhex("0123456789ABCDEF1C587F1C13924FEF")
PVK = bytes.fromhex("7A3D5E1F2A4C6B8C9E0E1A2A3D4C5E6E")
#: TEST zone master key under which the MAC and PIN keys are imported (test material only).
ZMK = bytes.fromhex("0E1C2A3B4C5D6E7F8091A2B3C4D5E6F7")
PAN = "6200001000000003"
DATA = bytes(range(120))


PVKI, PVV = "1", "6308"


def _command(processor: HsmProcessor, text: str) -> str:
    answer = processor.handle(("0000" + text).encode("ascii")).decode("ascii")
    if answer[6:8] != "00":
        raise AssertionError(f"{text[:2]} answered {answer[6:8]}")
    return answer[8:41]  # the key under the LMK


def load_keys(processor: HsmProcessor) -> tuple[str, str, str]:
    """(MAK, PIK, PVK) under the processor's LMK, entered through its own commands."""
    zmk = _command(processor, f"A42{KeyType.ZMK.code}U" + "".join(split_into_components(ZMK)))
    mak, pik = (
        _command(processor, f"A6{key_type.code}{zmk}X{encrypt_key_under(ZMK, clear).hex().upper()}U")
        for key_type, clear in ((KeyType.TAK, MAK), (KeyType.TPK, PIK))
    )
    pvk = _command(processor, f"A42{KeyType.PVK.code}U" + "".join(split_into_components(PVK)))
    return mak, pik, pvk


async def measure(processor: HsmProcessor) -> dict[str, float]:
    results: dict[str, float] = {}
    mak, pik, pvk = load_keys(processor)
    mac = mac_cup_ecb(MAK, DATA)
    block = tdes_ecb_encrypt(PIK, build_pin_block("123456", PAN))
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve, "127.0.0.1", 0, processor=processor))
        async with await HsmClient.connect("127.0.0.1", port) as hsm:

            async def m8() -> None:
                if not await hsm.verify_mac(KeyType.TAK, mak, DATA, mac, MacAlgorithm.CUP_ECB):
                    raise AssertionError("M8 did not verify")

            async def dc() -> None:
                if await hsm.verify_pin_pvv(pik, pvk, block, PAN, pvki=PVKI, pvv=PVV) is not PinVerification.OK:
                    raise AssertionError("DC did not verify")

            for name, call in (("M8", m8), ("DC", dc)):
                for concurrency in (1, 16):
                    results[f"tcp_{name}_x{concurrency}"] = await closed_loop_rate(concurrency, call, SECONDS)
        tg.cancel_scope.cancel()
    return results


def processor_requests(processor: HsmProcessor) -> dict[str, bytes]:
    """The M8 and DC requests the client sends, built by hand for the in-process processor."""
    mak, pik, pvk = load_keys(processor)
    algorithm = MAC_ALGORITHM_BY_NAME[MacAlgorithm.CUP_ECB]
    m8 = f"0001M8001{algorithm}1{KeyType.TAK.code}{mak}{len(DATA):04X}".encode() + DATA
    m8 += mac_cup_ecb(MAK, DATA).hex().upper().encode()
    block = tdes_ecb_encrypt(PIK, build_pin_block("123456", PAN)).hex().upper()
    dc = f"0001DC{pik}{pvk}{block}01{PAN[-13:-1]}{PVKI}{PVV}".encode()
    return {"M8": m8, "DC": dc}


def main() -> None:
    raw_mac = op_rate(lambda: mac_cup_ecb(MAK, DATA), SECONDS)
    raw_tdes = op_rate(lambda: tdes_ecb_encrypt(PIK, bytes(8)), SECONDS)
    processor = HsmProcessor.with_random_lmk(allow_clear_import=True)
    in_process: dict[str, float] = {}
    for name, request in processor_requests(processor).items():
        if processor.handle(request)[6:8] != b"00":
            raise AssertionError(f"{name} did not verify in-process")
        in_process[name] = op_rate(functools.partial(processor.handle, request), SECONDS)
    tcp = anyio.run(measure, processor)
    print(f"raw TDES block {raw_tdes:>10,.0f}/s   raw CUP MAC (120 bytes) {raw_mac:>10,.0f}/s")
    for name, rate in in_process.items():
        print(f"processor {name:<8} {rate:>10,.0f} commands/s   = {rate / raw_tdes:.3f} x raw TDES block")
    for name, rate in tcp.items():
        command = name.split("_")[1]
        print(
            f"{name:<18} {rate:>10,.0f} commands/s   = {rate / in_process[command]:.3f} x processor"
            f"   = {rate / raw_tdes:.4f} x raw TDES block"
        )
    emit(
        {
            "raw_tdes_per_s": raw_tdes,
            **{f"processor_{name}_per_s": rate for name, rate in in_process.items()},
            **{f"{name}_per_s": rate for name, rate in tcp.items()},
            **{f"{name}_vs_processor": rate / in_process[name.split("_")[1]] for name, rate in tcp.items()},
        }
    )


if __name__ == "__main__":
    main()
