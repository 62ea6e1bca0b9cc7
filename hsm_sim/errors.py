"""HSM error codes (PROTOCOL.md §4) and the exception a command handler raises to answer one."""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    OK = "00"
    VERIFICATION_FAILED = "01"
    SOURCE_KEY_PARITY = "10"
    DESTINATION_KEY_PARITY = "11"
    INVALID_INPUT = "15"
    PIN_BLOCK_INVALID = "20"
    INVALID_PIN_BLOCK_FORMAT = "23"
    COMMAND_DISABLED = "68"


class CommandError(Exception):
    """Answer the command with ``code``; ``reason`` goes to the log (never key, PIN or PAN material)."""

    def __init__(self, code: ErrorCode, reason: str) -> None:
        super().__init__(f"{code.value}: {reason}")
        self.code = code
        self.reason = reason
