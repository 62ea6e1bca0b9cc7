"""Scripted answers and faults, sans-IO: a TOML rules file says which messages a service answers itself, delays,
drops or mangles — what engineers use to test a terminal's reversal and timeout handling.

    [[rule]]
    name = "big purchases are declined"      # shown in traces and logs
    at = "frontend"                          # nac | frontend | hsm | ledger (the services that consult rules)
    mti = "0200"                             # request MTI
    processing_code = "000000"               # field 3
    terminal = "10000001"                    # field 41
    card = "620000"                          # field 2 (or track 2) starts with this (a full PAN matches one card)
    amount_min = 100000                      # field 4, minor units, inclusive (amount_max too)
    fields = { "22" = "051" }                # any other field values, exactly
    command = "M8"                           # at the HSM only: the host command code
    client = "frontend"                      # at the HSM only: the client's verified identity (or anonymous)
    action = "answer"                        # answer | delay | drop | close | corrupt_mac | answer_twice
    code = "51"                              # answer: field 39 of the answer
    delay_s = 3.0                            # delay: seconds before the message goes on
    times = 1                                # fire at most this many times (default: always)

Every condition is optional; a rule matches when all of its conditions hold; the first matching rule wins.
What each action does at a service is the service's business (:class:`Action` is data); the hit is counted
and traced there. :class:`RuleBook` reloads the file when it changes (its modification time or size, looked
at before each message is matched: one ``stat``, a few microseconds) and keeps the rules it had if the new
file is broken.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from wire.constants import ResponseCode
from wire.errors import WireError
from wire.posframe import PosFrame

log = logging.getLogger("acqsim.rules")

#: The longest delay a rule may ask for.
MAX_DELAY_S: Final = 120.0
SERVICES: Final = frozenset({"nac", "frontend", "hsm", "ledger"})
_RULE_KEYS: Final = frozenset(
    {
        "name",
        "at",
        "mti",
        "processing_code",
        "terminal",
        "card",
        "amount_min",
        "amount_max",
        "fields",
        "command",
        "client",
        "action",
        "code",
        "delay_s",
        "times",
    }
)


class RuleError(ValueError):
    """The rules file is not valid; the message names the rule (by number and name) and the key."""


class ActionKind(enum.StrEnum):
    ANSWER = "answer"  # answer with field 39 = code; the request goes no further
    DELAY = "delay"  # hold the message delay_s, then carry on as usual
    DROP = "drop"  # swallow the message: no answer
    CLOSE = "close"  # close the connection it came on
    CORRUPT_MAC = "corrupt_mac"  # carry on, but the answer's MAC is wrong
    ANSWER_TWICE = "answer_twice"  # carry on, and send the answer twice


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    kind: ActionKind
    code: str | None = None
    delay_s: float = 0.0


@dataclasses.dataclass(slots=True, kw_only=True)
class Rule:
    number: int
    name: str
    at: str
    action: Action
    mti: str | None = None
    processing_code: str | None = None
    terminal: str | None = None
    card: str | None = None
    amount_min: int | None = None
    amount_max: int | None = None
    fields: Mapping[str, str] = dataclasses.field(default_factory=dict)
    command: str | None = None
    client: str | None = None
    times: int | None = None
    hits: int = 0

    def matches(self, at: str, message: Mapping[str, str]) -> bool:
        """``message``: decoded fields, ``"t"`` the MTI (as :mod:`wire.codec` gives them); at the HSM
        :func:`hsm_message`."""
        if at != self.at or (self.times is not None and self.hits >= self.times):
            return False
        if self.command is not None and message.get(HSM_COMMAND) != self.command:
            return False
        if self.client is not None and message.get(HSM_CLIENT) != self.client:
            return False
        if self.mti is not None and message.get("t") != self.mti:
            return False
        if self.processing_code is not None and message.get("3") != self.processing_code:
            return False
        if self.terminal is not None and message.get("41", "").strip() != self.terminal:
            return False
        if self.card is not None:
            pan = message.get("2") or message.get("35", "").split("=")[0].split("D")[0]
            if not pan.startswith(self.card):
                return False
        if self.amount_min is not None or self.amount_max is not None:
            amount = message.get("4", "")
            if not amount.isdigit():
                return False
            if self.amount_min is not None and int(amount) < self.amount_min:
                return False
            if self.amount_max is not None and int(amount) > self.amount_max:
                return False
        return all(message.get(number) == value for number, value in self.fields.items())


#: What the ledger and the HSM can do: their links carry no MAC to corrupt.
NO_MAC_ACTIONS: Final = frozenset(set(ActionKind) - {ActionKind.CORRUPT_MAC})
#: The keys of an HSM request as :meth:`Rule.matches` reads them (ISO fields are named by number, "t").
HSM_COMMAND: Final = "command"
HSM_CLIENT: Final = "client"
#: Conditions on ISO 8583 fields, which an HSM command does not carry; and those only an HSM command has.
_ISO_CONDITIONS: Final = ("mti", "processing_code", "terminal", "card", "amount_min", "amount_max", "fields")
_HSM_CONDITIONS: Final = ("command", "client")


def hsm_message(command: str, client: str) -> dict[str, str]:
    """What a rule at the HSM matches: the command code (``M8``) and the client's identity."""
    return {HSM_COMMAND: command, HSM_CLIENT: client}


def _where(number: int, raw: Mapping[str, Any]) -> str:
    name = raw.get("name")
    return f"rule {number}" + (f" ({name!r})" if isinstance(name, str) else "")


def _text(raw: Mapping[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise RuleError(f"{where}: {key} must be a non-empty string")
    return value


def _count(raw: Mapping[str, Any], key: str, where: str) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise RuleError(f"{where}: {key} must be a whole number ≥ 0")
    return value


def _action(raw: Mapping[str, Any], where: str) -> Action:
    try:
        kind = ActionKind(str(raw.get("action")))
    except ValueError:
        choices = ", ".join(k.value for k in ActionKind)
        raise RuleError(f"{where}: action must be one of {choices}, not {raw.get('action')!r}") from None
    code = _text(raw, "code", where)
    if kind is ActionKind.ANSWER and (code is None or len(code) != 2):
        raise RuleError(f"{where}: action answer needs code, two characters (field 39)")
    delay = raw.get("delay_s", 0.0)
    if not isinstance(delay, int | float) or isinstance(delay, bool) or not 0 <= delay <= MAX_DELAY_S:
        raise RuleError(f"{where}: delay_s must be 0..{MAX_DELAY_S:.0f} seconds")
    if kind is ActionKind.DELAY and delay <= 0:
        raise RuleError(f"{where}: action delay needs delay_s > 0")
    return Action(kind=kind, code=code, delay_s=float(delay))


def parse_rule(number: int, raw: Mapping[str, Any]) -> Rule:
    where = _where(number, raw)
    unknown = sorted(set(raw) - _RULE_KEYS)
    if unknown:
        raise RuleError(f"{where}: unknown key(s) {', '.join(unknown)}")
    at = raw.get("at")
    if at not in SERVICES:
        raise RuleError(f"{where}: at must be one of {', '.join(sorted(SERVICES))}, not {at!r}")
    action = _action(raw, where)
    if at in ("ledger", "hsm") and action.kind not in NO_MAC_ACTIONS:
        allowed = ", ".join(sorted(k.value for k in NO_MAC_ACTIONS))
        raise RuleError(
            f"{where}: the {at} link carries no MAC, so corrupt_mac cannot apply there (the action is one of"
            f" {allowed}; corrupt_mac works at the nac and the frontend)"
        )
    if at == "hsm":
        iso = [key for key in _ISO_CONDITIONS if key in raw]
        if iso:
            raise RuleError(
                f"{where}: at the hsm a rule matches on command and client; {', '.join(iso)} name ISO 8583"
                " fields, which HSM commands do not carry"
            )
        if action.code is not None and not (len(action.code) == 2 and action.code.isdigit()):
            raise RuleError(f"{where}: at the hsm code is the two-digit error code of the answer (e.g. 01)")
    else:
        hsm_only = [key for key in _HSM_CONDITIONS if key in raw]
        if hsm_only:
            raise RuleError(f"{where}: {', '.join(hsm_only)} apply at the hsm only, not at the {at}")
    if at == "ledger" and action.code is not None and action.code not in set(ResponseCode):
        raise RuleError(f"{where}: at the ledger code is one of acqsim's response codes (wire/constants.py)")
    fields = raw.get("fields", {})
    if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
        raise RuleError(f'{where}: fields must be a table of strings, e.g. fields = {{ "22" = "051" }}')
    if not all(k.isdigit() and 2 <= int(k) <= 128 for k in fields):
        raise RuleError(f"{where}: fields are named by number (2..128)")
    return Rule(
        number=number,
        name=_text(raw, "name", where) or f"rule {number}",
        at=str(at),
        action=action,
        mti=_text(raw, "mti", where),
        processing_code=_text(raw, "processing_code", where),
        terminal=_text(raw, "terminal", where),
        card=_text(raw, "card", where),
        amount_min=_count(raw, "amount_min", where),
        amount_max=_count(raw, "amount_max", where),
        fields=dict(fields),
        command=_text(raw, "command", where),
        client=_text(raw, "client", where),
        times=_count(raw, "times", where),
    )


def parse_rules(text: str, *, source: str = "rules") -> list[Rule]:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{source}: not TOML ({exc})") from None
    unknown = sorted(set(document) - {"rule"})
    if unknown:
        raise RuleError(f"{source}: unknown table(s) {', '.join(unknown)}; rules are [[rule]] tables")
    raw_rules = document.get("rule", [])
    if not isinstance(raw_rules, list):
        raise RuleError(f"{source}: rules are [[rule]] tables")
    return [parse_rule(number, raw) for number, raw in enumerate(raw_rules, start=1)]


@dataclasses.dataclass(frozen=True, slots=True)
class Hit:
    rule: str
    number: int
    action: Action


class RuleBook:
    """The rules of one file for one service, reloaded when the file changes."""

    def __init__(self, path: Path, service: str) -> None:
        if service not in SERVICES:
            raise RuleError(f"rules apply at {', '.join(sorted(SERVICES))}, not {service!r}")
        self.path = path
        self.service = service
        self._version: tuple[int, int] | None = None  # (modification time ns, size) of the file last read
        self.rules: list[Rule] = []
        self.reload()

    def reload(self) -> bool:
        """Read the file again; ``RuleError`` (the old rules kept) if it is not valid. True if it changed."""
        try:
            stat = self.path.stat()
        except OSError as exc:
            raise RuleError(f"{self.path}: cannot read ({exc.strerror})") from None
        version = (stat.st_mtime_ns, stat.st_size)
        if version == self._version:
            return False
        rules = parse_rules(self.path.read_text(encoding="utf-8"), source=str(self.path))
        self.rules = [r for r in rules if r.at == self.service]
        self._version = version
        log.info("%s: %d rule(s) for %s from %s", self.service, len(self.rules), self.service, self.path)
        return True

    def maybe_reload(self) -> None:
        """Reload if the file changed; a broken (or vanished) file is logged and the rules in force stay."""
        try:
            self.reload()
        except RuleError as exc:
            log.warning("rules not reloaded, the previous ones stay: %s", exc)

    def match(self, message: Mapping[str, str]) -> Hit | None:
        """The first rule that matches ``message`` (counted as a hit), or ``None``."""
        self.maybe_reload()
        for rule in self.rules:
            if rule.matches(self.service, message):
                rule.hits += 1
                return Hit(rule=rule.name, number=rule.number, action=rule.action)
        return None


#: Bit 64 (the MAC) is the last bit of the primary bitmap, whose last byte follows the 2-byte MTI.
_MAC_BIT: Final = 0x01
_BITMAP_LAST_BYTE: Final = 2 + 8 - 1


def corrupt_mac(payload: bytes) -> bytes:
    """A POS frame with the last byte of its MAC flipped (a frame without a MAC is returned as it is)."""
    try:
        frame = PosFrame.parse(payload)
    except WireError:
        return payload
    if len(frame.body) <= _BITMAP_LAST_BYTE or not frame.body[_BITMAP_LAST_BYTE] & _MAC_BIT:
        return payload
    return payload[:-1] + bytes([payload[-1] ^ 0xFF])


def hit_note(hit: Hit | None) -> str | None:
    """The trace note of a rule hit: ``rule N (name): action``."""
    return None if hit is None else f"rule {hit.number} ({hit.rule}): {hit.action.kind}"
