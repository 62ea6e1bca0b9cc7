"""MAC commands: M6 (generate) and M8 (verify), over the three algorithms of :mod:`wire.paycrypto`.

M6  generate MAC                request: mode flag 1N (0 only block) ‖ input format 1N (0 binary, 1 hex) ‖
                                         MAC size 1N (1 = 16H) ‖ algorithm 1A (1 ISO 9797-1 alg 1, 3 ANSI
                                         X9.19 = ISO 9797-1 alg 3, C CUP POS ECB MAC, H HMAC-SHA-256
                                         truncated to 8 bytes: acqsim's, for the merchant link) ‖ padding 1N (1) ‖
                                         key type code 3N (003 TAK) ‖ key U+32H ‖ message length 4H
                                         (bytes as sent) ‖ message
                                answer : MAC 16H (the 8 MAC bytes; for C they are the 8 ASCII bytes of
                                         field 64)
M8  verify MAC                  request: as M6 ‖ MAC 16H                 answer: — (error 01: mismatch)

Only a MAC key (TAK 003, ZAK 008, HMK 012; hsm_sim.usage.KEY_USES) may MAC — another type answers 28, as
does algorithm H with a DES MAC key or an HMK with a DES algorithm (key separation); the
message is at most what one frame holds (server ``MAX_FRAME_LEN``).
"""

from __future__ import annotations

import hmac

from hsm_sim.commands.common import MAC_ALGORITHM_CODES, clear_key, ecb_key, key_type_field
from hsm_sim.errors import CommandError, ErrorCode
from hsm_sim.keys import KeyType, Lmk
from hsm_sim.reader import FieldReader
from hsm_sim.usage import KeyUse
from wire.paycrypto import MacAlgorithm, compute_mac, mac_cup_ecb


def _mac(algorithm: MacAlgorithm, key: bytes, message: bytes) -> bytes:
    if algorithm is MacAlgorithm.CUP_ECB:
        return mac_cup_ecb(ecb_key(key), message)  # two block encryptions: cached contexts
    return compute_mac(algorithm, key, message)


def _mac_request(lmk: Lmk, reader: FieldReader) -> tuple[MacAlgorithm, bytes, bytes]:
    reader.choice("0", "mode flag")
    input_format = reader.choice("01", "input format")
    reader.choice("1", "MAC size")
    algorithm = MAC_ALGORITHM_CODES[reader.choice("".join(MAC_ALGORITHM_CODES), "MAC algorithm")]
    reader.choice("1", "padding method")
    key_type = key_type_field(reader, "key type", KeyUse.MAC)
    if (algorithm is MacAlgorithm.HMAC_SHA256_64) != (key_type is KeyType.HMK):
        raise CommandError(ErrorCode.INVALID_KEY_TYPE, "algorithm H takes an HMK, and an HMK only algorithm H")
    key = clear_key(lmk, key_type, reader.key("MAC key"))
    length = int(reader.hex(4, "message length"), 16)
    message = reader.raw(length, "message")
    if input_format == "1":
        try:
            message = bytes.fromhex(message.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            raise CommandError(ErrorCode.INVALID_INPUT, "message is not hex") from None
    return algorithm, key, message


def m6_generate_mac(lmk: Lmk, reader: FieldReader) -> str:
    algorithm, key, message = _mac_request(lmk, reader)
    reader.end()
    return _mac(algorithm, key, message).hex().upper()


def m8_verify_mac(lmk: Lmk, reader: FieldReader) -> str:
    algorithm, key, message = _mac_request(lmk, reader)
    presented = bytes.fromhex(reader.hex(16, "MAC"))
    reader.end()
    if not hmac.compare_digest(_mac(algorithm, key, message), presented):
        raise CommandError(ErrorCode.VERIFICATION_FAILED, "MAC does not verify")
    return ""
