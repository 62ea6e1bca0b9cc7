"""The sans-IO HSM: one command payload in, one answer payload out.

``HsmProcessor.handle(payload)`` takes a frame's payload (header ‖ command ‖ fields) and returns the answer
payload (header ‖ response code ‖ error code ‖ fields). It never raises for bad input: a payload too short to
hold a header and command answers ``ZZ15`` (the caller may instead close the connection), an unknown command
answers its response code with error 68. Log lines name the command and error, never field values.
"""

from __future__ import annotations

import logging
from typing import Final

from hsm_sim.commands import COMMANDS
from hsm_sim.errors import CommandError, ErrorCode
from hsm_sim.keys import Lmk
from hsm_sim.reader import FieldReader
from wire.paycrypto import CryptoInputError

log = logging.getLogger("acqsim.hsm")

HEADER_LEN: Final = 4
COMMAND_LEN: Final = 2
#: Response code used when the request is too short to name a command.
UNREADABLE_RESPONSE: Final = "ZZ"


def response_code(command: str) -> str:
    """The command's second letter plus one: NC → ND, A0 → A1, M8 → M9."""
    return command[0] + chr(ord(command[1]) + 1)


class HsmProcessor:
    def __init__(self, lmk: Lmk) -> None:
        self._lmk = lmk
        self.counts: dict[str, int] = {}

    def handle(self, payload: bytes) -> bytes:
        try:
            text_head = payload[: HEADER_LEN + COMMAND_LEN].decode("ascii")
        except UnicodeDecodeError:
            text_head = ""
        if len(text_head) < HEADER_LEN + COMMAND_LEN or not text_head[HEADER_LEN:].isalnum():
            log.warning("unreadable HSM request (%d bytes)", len(payload))
            header = text_head[:HEADER_LEN].ljust(HEADER_LEN, "0") if text_head.isprintable() else "0000"
            return (header + UNREADABLE_RESPONSE + ErrorCode.INVALID_INPUT).encode("ascii")
        header, command = text_head[:HEADER_LEN], text_head[HEADER_LEN:]
        reply = response_code(command)
        handler = COMMANDS.get(command)
        if handler is None:
            log.warning("unknown HSM command %s", command)
            return (header + reply + ErrorCode.COMMAND_DISABLED).encode("ascii")
        reader = FieldReader(payload[HEADER_LEN + COMMAND_LEN :], base_offset=HEADER_LEN + COMMAND_LEN)
        try:
            fields = handler(self._lmk, reader)
            code = ErrorCode.OK
        except CommandError as exc:
            fields, code = "", exc.code
            if code is not ErrorCode.VERIFICATION_FAILED:
                log.info("%s answered %s: %s", command, code.value, exc.reason)
        except CryptoInputError as exc:
            fields, code = "", ErrorCode.INVALID_INPUT
            log.info("%s answered %s: %s", command, code.value, exc)
        self.counts[command] = self.counts.get(command, 0) + 1
        return (header + reply + code.value + fields).encode("ascii")
