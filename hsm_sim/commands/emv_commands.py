"""EMV / PBOC cryptograms: KQ (verify an ARQC, generate an ARPC). Notation as in :mod:`hsm_sim.commands`.

KQ  ARQC / ARPC                 request: mode 1N (0 verify the ARQC, 1 verify and generate the ARPC,
                                         2 generate the ARPC only) ‖ session key method 1A (E EMV common,
                                         P PBOC) ‖ ARPC method 1N (1, 2) ‖ MK-AC U+32H (the issuer's IMK-AC,
                                         type 109) ‖ PAN length 2N ‖ PAN nN ‖ PSN 2N ‖ ATC 4H ‖
                                         data length 3N (bytes, at most 255) ‖ data 2×length H (what the
                                         ARQC covers: 9F02 ‖ 9F03 ‖ 9F1A ‖ 95 ‖ 5F2A ‖ 9A ‖ 9C ‖ 9F37 ‖ 82 ‖
                                         9F36 ‖ CVR, PROTOCOL.md §7) ‖ ARQC 16H ‖
                                         [method 1: ARC 4H] [method 2: CSU 8H ‖ proprietary data length 1N
                                         (0–8 bytes) ‖ proprietary data H]
                                answer : [mode 1, 2: ARPC 16H (method 1) or 8H (method 2)]
                                         error 01: the ARQC does not verify (no ARPC is answered)

payShield's KQ carries the same items in binary; acqsim's host link is text, so they travel as hex. The card's
master key (option A from the IMK-AC, PAN and PSN) and its session key exist only inside this function.
"""

from __future__ import annotations

import hmac
from typing import Final

from hsm_sim.commands.common import clear_key
from hsm_sim.errors import CommandError, ErrorCode
from hsm_sim.keys import KeyType, Lmk
from hsm_sim.reader import FieldReader
from hsm_sim.usage import KeyUse
from wire.emv import (
    MAX_PROPRIETARY_AUTH_LEN,
    ArpcMethod,
    SessionKeyMethod,
    arpc_method_1,
    arpc_method_2,
    derive_icc_master_key,
    derive_session_key,
    generate_ac,
)

SESSION_KEY_METHODS: Final = {"E": SessionKeyMethod.EMV_COMMON, "P": SessionKeyMethod.PBOC}
SESSION_KEY_METHOD_CODES: Final = {v: k for k, v in SESSION_KEY_METHODS.items()}
MODE_VERIFY: Final = "0"
MODE_VERIFY_AND_ARPC: Final = "1"
MODE_ARPC_ONLY: Final = "2"
MIN_PAN_LEN: Final = 12
MAX_PAN_LEN: Final = 19
MAX_DATA_LEN: Final = 255


def kq_arqc_arpc(lmk: Lmk, reader: FieldReader) -> str:
    mode = reader.choice("012", "mode")
    method = SESSION_KEY_METHODS[reader.choice("EP", "session key method")]
    arpc_method = ArpcMethod(int(reader.choice("12", "ARPC method")))
    imk = clear_key(lmk, KeyType.MK_AC, reader.key("MK-AC"), use=KeyUse.CRYPTOGRAM)
    pan_len = int(reader.digits(2, "PAN length"))
    if not MIN_PAN_LEN <= pan_len <= MAX_PAN_LEN:
        raise CommandError(ErrorCode.INVALID_INPUT, f"PAN length {pan_len} out of range")
    pan = reader.digits(pan_len, "PAN")
    psn = reader.digits(2, "PSN")
    atc = bytes.fromhex(reader.hex(4, "ATC"))
    data_len = int(reader.digits(3, "data length"))
    if data_len > MAX_DATA_LEN:
        raise CommandError(ErrorCode.INVALID_INPUT, f"data length {data_len} over {MAX_DATA_LEN}")
    data = bytes.fromhex(reader.hex(2 * data_len, "data"))
    arqc = bytes.fromhex(reader.hex(16, "ARQC"))
    if arpc_method is ArpcMethod.METHOD_1:
        arc = bytes.fromhex(reader.hex(4, "ARC"))
        csu = proprietary = b""
    else:
        arc = b""
        csu = bytes.fromhex(reader.hex(8, "CSU"))
        proprietary_len = int(reader.digits(1, "proprietary data length"))
        if proprietary_len > MAX_PROPRIETARY_AUTH_LEN:
            raise CommandError(ErrorCode.INVALID_INPUT, "proprietary authentication data over 8 bytes")
        proprietary = bytes.fromhex(reader.hex(2 * proprietary_len, "proprietary data"))
    reader.end()
    session_key = derive_session_key(derive_icc_master_key(imk, pan, psn), atc, method)
    if mode != MODE_ARPC_ONLY and not hmac.compare_digest(generate_ac(session_key, data), arqc):
        raise CommandError(ErrorCode.VERIFICATION_FAILED, "ARQC does not verify")
    if mode == MODE_VERIFY:
        return ""
    if arpc_method is ArpcMethod.METHOD_1:
        return arpc_method_1(session_key, arqc, arc).hex().upper()
    return arpc_method_2(session_key, arqc, csu, proprietary).hex().upper()
