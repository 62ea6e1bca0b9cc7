"""The sans-IO HSM: one command payload in, one answer payload out.

``HsmProcessor.handle(payload)`` takes a frame's payload (header ‖ command ‖ fields) and returns the answer
payload (header ‖ response code ‖ error code ‖ fields); :meth:`HsmProcessor.process` also returns the
:class:`Outcome` the audit log records. It never raises for bad input: a payload too short to hold a header
and command answers ``ZZ15`` (the caller may instead close the connection), an unknown command answers its
response code with error 68. Key usage is checked by the handlers (:mod:`hsm_sim.usage`); PIN verification
(DC) passes the limits of :mod:`hsm_sim.pin_guard` first. Log lines name the command and error, never field
values.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from typing import Final

from hsm_sim.commands import COMMANDS, Handler
from hsm_sim.commands.common import KEY_TYPES_NAMED
from hsm_sim.commands.dukpt_commands import gq_account
from hsm_sim.commands.lmk_commands import bw_translate_to_new_lmk
from hsm_sim.commands.pin_commands import dc_account
from hsm_sim.errors import CommandError, ErrorCode
from hsm_sim.keys import KeyType, Lmk
from hsm_sim.lmk_store import random_lmk
from hsm_sim.pin_guard import PinGuard
from hsm_sim.reader import FieldReader
from wire.paycrypto import CryptoInputError

log = logging.getLogger("acqsim.hsm")

HEADER_LEN: Final = 4
COMMAND_LEN: Final = 2
#: Response code used when the request is too short to name a command.
UNREADABLE_RESPONSE: Final = "ZZ"
#: The command field of an :class:`Outcome` for a request that names none.
UNREADABLE_COMMAND: Final = "??"
#: PIN verification commands, which the :class:`PinGuard` limits, each with how to find its account number
#: (EC shares DC's layout, account included).
PIN_VERIFY_ACCOUNTS: Final[dict[str, Callable[[bytes], str | None]]] = {
    "DC": dc_account,
    "EC": dc_account,
    "GQ": gq_account,
}
PIN_VERIFY_COMMANDS: Final = frozenset(PIN_VERIFY_ACCOUNTS)


def response_code(command: str) -> str:
    """The command's second letter plus one: NC → ND, A0 → A1, M8 → M9."""
    return command[0] + chr(ord(command[1]) + 1)


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """What the audit log keeps of one command: never a field value."""

    command: str
    answered: ErrorCode
    #: The code the HSM would have answered without hiding it (DC's 20 behind 01); usually ``answered``.
    true_code: ErrorCode
    key_types: tuple[KeyType, ...] = ()
    reason: str = ""


#: Commands that take clear key components: answered 68 (disabled) unless the HSM allows clear import.
CLEAR_COMPONENT_COMMANDS: Final = frozenset({"A4"})
#: The command that translates a key from the old LMK (key change storage) to the live one.
LMK_CHANGE_COMMAND: Final = "BW"


class HsmProcessor:
    """``allow_clear_import`` enables A4 (clear components; the TEST configuration's key ceremony needs it).
    ``old_lmk`` loads an old LMK into key change storage, which enables BW (used only by an LMK rotation)."""

    def __init__(
        self,
        lmk: Lmk,
        *,
        pin_guard: PinGuard | None = None,
        clock: Callable[[], float] = time.monotonic,
        allow_clear_import: bool = False,
        old_lmk: Lmk | None = None,
    ):
        self._lmk = lmk
        self._commands: dict[str, Handler] = {
            command: handler
            for command, handler in COMMANDS.items()
            if allow_clear_import or command not in CLEAR_COMPONENT_COMMANDS
        }
        if old_lmk is not None:
            self._commands[LMK_CHANGE_COMMAND] = functools.partial(bw_translate_to_new_lmk, old_lmk)
        self._pin_guard = pin_guard if pin_guard is not None else PinGuard()
        self._clock = clock
        self.counts: dict[str, int] = {}

    @classmethod
    def with_random_lmk(cls, *, allow_clear_import: bool = False) -> HsmProcessor:
        """An HSM under a fresh random LMK that exists only inside this object (benchmarks, throw-away runs):
        keys enter it through its commands (A4, A6, A0) like any HSM's."""
        return cls(random_lmk(), allow_clear_import=allow_clear_import)

    @property
    def lmk_check_value(self) -> str:
        return self._lmk.check_value

    def handle(self, payload: bytes, client: str = "") -> bytes:
        return self.process(payload, client)[0]

    def process(self, payload: bytes, client: str = "") -> tuple[bytes, Outcome]:
        """The answer to ``payload`` from ``client`` (its identity or address; the PIN limits count per client)."""
        head = payload[: HEADER_LEN + COMMAND_LEN]
        # The usual request: a readable head, checked on the bytes (no decode unless it passes).
        if len(head) < HEADER_LEN + COMMAND_LEN or not head.isascii() or not head[HEADER_LEN:].isalnum():
            return _unreadable(payload)
        text_head = head.decode("ascii")
        header, command = text_head[:HEADER_LEN], text_head[HEADER_LEN:]
        reply = response_code(command)
        handler = self._commands.get(command)
        if handler is None:
            why = _disabled_reason(command)
            log.warning("HSM command %s refused: %s", command, why)
            code = ErrorCode.COMMAND_DISABLED
            return (header + reply + code).encode("ascii"), Outcome(command, code, code, reason=why)
        body = payload[HEADER_LEN + COMMAND_LEN :]
        verifies_pin = command in PIN_VERIFY_ACCOUNTS
        account = PIN_VERIFY_ACCOUNTS[command](body) if verifies_pin else None
        now = self._clock()
        named: list[KeyType] = []
        token = KEY_TYPES_NAMED.set(named)
        try:
            fields, answered, true_code, reason = self._run(command, handler, body, client, account, now)
        finally:
            KEY_TYPES_NAMED.reset(token)
        outcome = Outcome(command, answered, true_code, tuple(named), reason)
        if verifies_pin and (answered is ErrorCode.OK or answered is ErrorCode.VERIFICATION_FAILED):
            self._pin_guard.record(account, failed=answered is not ErrorCode.OK, now=now)
        counts = self.counts
        counts[command] = counts.get(command, 0) + 1
        return (header + reply + answered + fields).encode("ascii"), outcome

    def _run(
        self,
        command: str,
        handler: Callable[[Lmk, FieldReader], str],
        body: bytes,
        client: str,
        account: str | None,
        now: float,
    ) -> tuple[str, ErrorCode, ErrorCode, str]:
        """(answer fields, code answered, true code, reason) of one command."""
        if command in PIN_VERIFY_COMMANDS and (refused := self._pin_guard.admit(client, account, now)) is not None:
            log.warning("%s answered %s: PIN verification limit reached", command, refused.value)
            return "", refused, refused, "PIN verification limit reached"
        reader = FieldReader(body, base_offset=HEADER_LEN + COMMAND_LEN)
        try:
            return handler(self._lmk, reader), ErrorCode.OK, ErrorCode.OK, ""
        except CommandError as exc:
            if exc.code is not ErrorCode.VERIFICATION_FAILED:
                log.info("%s answered %s: %s", command, exc.code.value, exc.reason)
            return "", exc.code, exc.true_code, exc.reason
        except CryptoInputError as exc:
            code = ErrorCode.INVALID_INPUT
            log.info("%s answered %s: %s", command, code.value, exc)
            return "", code, code, str(exc)


def _unreadable(payload: bytes) -> tuple[bytes, Outcome]:
    """The answer to a request too short to name a command, or whose head is not ASCII letters and digits."""
    try:
        text_head = payload[: HEADER_LEN + COMMAND_LEN].decode("ascii")
    except UnicodeDecodeError:
        text_head = ""
    log.warning("unreadable HSM request (%d bytes)", len(payload))
    header = text_head[:HEADER_LEN].ljust(HEADER_LEN, "0") if text_head.isprintable() else "0000"
    code = ErrorCode.INVALID_INPUT
    return (header + UNREADABLE_RESPONSE + code).encode("ascii"), Outcome(
        UNREADABLE_COMMAND, code, code, reason="unreadable request"
    )


def _disabled_reason(command: str) -> str:
    if command in CLEAR_COMPONENT_COMMANDS:
        return "clear key components are disabled ([hsm] allow_clear_import = false)"
    if command == LMK_CHANGE_COMMAND:
        return "no old LMK in key change storage"
    return "unknown command"
