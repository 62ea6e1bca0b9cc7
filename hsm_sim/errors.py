"""HSM error codes (PROTOCOL.md §4, payShield's standard error codes) and the exception a command handler
raises to answer one. docs/hsm.md lists when acqsim answers each."""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    OK = "00"
    VERIFICATION_FAILED = "01"
    INVALID_KEY_TYPE_CODE = "04"
    SOURCE_KEY_PARITY = "10"
    DESTINATION_KEY_PARITY = "11"
    INVALID_INPUT = "15"
    #: payShield: "HSM is not in the authorised state" — acqsim: PIN verifications withheld from a client
    #: that exceeded its verification rate.
    NOT_AUTHORISED = "17"
    PIN_BLOCK_INVALID = "20"
    INVALID_PIN_BLOCK_FORMAT = "23"
    #: The key's type is known, but its usage does not include what the command does with it.
    INVALID_KEY_TYPE = "28"
    #: payShield: "key function not permitted" — an export the key type table forbids, or a PIN verification
    #: for an account whose recent failures reached the HSM's limit.
    KEY_FUNCTION_NOT_PERMITTED = "29"
    COMMAND_DISABLED = "68"


class CommandError(Exception):
    """Answer the command with ``code``; ``reason`` goes to the log and audit log (never key, PIN or PAN
    material). ``true_code`` is the code the audit log records when the answer hides it (DC answers 01 for a
    malformed PIN block, so that a client cannot tell it from a wrong PIN)."""

    def __init__(self, code: ErrorCode, reason: str, *, true_code: ErrorCode | None = None) -> None:
        super().__init__(f"{code.value}: {reason}")
        self.code = code
        self.reason = reason
        self.true_code = true_code if true_code is not None else code
