"""Rules files: validation with precise errors, matching on every condition, hit limits, hot reload."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acqkit.rules import ActionKind, RuleBook, RuleError, hsm_message, parse_rules

PURCHASE = {
    "t": "0200",
    "2": "6200001000000003",
    "3": "000000",
    "4": "000000150000",
    "11": "000007",
    "22": "051",
    "41": "10000001",
}

RULES = """
[[rule]]
name = "big purchases declined"
at = "frontend"
mti = "0200"
processing_code = "000000"
terminal = "10000001"
card = "620000100"
amount_min = 100000
amount_max = 200000
fields = { "22" = "051" }
action = "answer"
code = "51"

[[rule]]
name = "first balance is slow"
at = "frontend"
processing_code = "310000"
action = "delay"
delay_s = 2.5
times = 1

[[rule]]
at = "nac"
action = "drop"
"""


def test_all_conditions_must_hold_and_the_first_rule_wins(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(RULES)
    book = RuleBook(path, "frontend")
    hit = book.match(PURCHASE)
    assert hit is not None and hit.rule == "big purchases declined" and hit.action.code == "51"
    for changed in ({"4": "000000000100"}, {"22": "021"}, {"41": "10000002"}, {"2": "6200002000000027"}):
        assert book.match({**PURCHASE, **changed}) is None, changed
    assert book.match({k: v for k, v in PURCHASE.items() if k != "4"}) is None


def test_times_limits_the_hits_and_other_services_rules_are_not_loaded(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(RULES)
    book = RuleBook(path, "frontend")
    balance = {"t": "0200", "3": "310000", "41": "10000001"}
    first = book.match(balance)
    assert first is not None and first.action.kind is ActionKind.DELAY and first.action.delay_s == 2.5
    assert book.match(balance) is None
    nac = RuleBook(path, "nac")
    assert [r.name for r in nac.rules] == ["rule 3"]
    nac_hit = nac.match(balance)
    assert nac_hit is not None and nac_hit.action.kind is ActionKind.DROP


def test_hot_reload_and_a_broken_file_keeps_the_rules_in_force(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(RULES)
    book = RuleBook(path, "frontend")
    path.write_text('[[rule]]\nat = "frontend"\naction = "close"\n')
    os.utime(path, ns=(1, 10**18))  # a new modification time, whatever the file system's resolution
    hit = book.match(PURCHASE)
    assert hit is not None and hit.action.kind is ActionKind.CLOSE
    path.write_text("[[rule]]\nat = 'frontend'\naction = 'explode'\n")
    os.utime(path, ns=(1, 2 * 10**18))
    kept = book.match(PURCHASE)
    assert kept is not None and kept.action.kind is ActionKind.CLOSE


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[rule]]\nat = 'acs'\naction = 'drop'", "rule 1: at must be one of frontend, hsm, ledger, nac, not 'acs'"),
        ("[[rule]]\nat = 'hsm'\naction = 'corrupt_mac'", "the hsm link carries no MAC, so corrupt_mac cannot apply"),
        ("[[rule]]\nat = 'hsm'\nterminal = '1'\naction = 'drop'", "terminal name ISO 8583 fields"),
        ("[[rule]]\nat = 'hsm'\naction = 'answer'\ncode = 'AB'", "at the hsm code is the two-digit error code"),
        ("[[rule]]\nat = 'nac'\ncommand = 'M8'\naction = 'drop'", "command apply at the hsm only, not at the nac"),
        ("[[rule]]\nname='x'\nat = 'nac'\naction = 'answer'", "rule 1 ('x'): action answer needs code"),
        ("[[rule]]\nat = 'nac'\naction = 'delay'", "action delay needs delay_s > 0"),
        ("[[rule]]\nat = 'nac'\naction = 'drop'\ncolour = 1", "unknown key(s) colour"),
        ("[[rule]]\nat = 'nac'\naction = 'drop'\nfields = { x = '1' }", "fields are named by number"),
        ("[[rule]]\nat = 'nac'\naction = 'drop'\namount_min = -1", "amount_min must be a whole number"),
        ("[[rule]]\nat = 'nac'\naction = 'delay'\ndelay_s = 1000", "delay_s must be 0..120 seconds"),
        ("[rule]\nat = 'nac'", "rules are [[rule]] tables"),
        ("[[rule]]\nat = 'ledger'\naction = 'corrupt_mac'", "the ledger link carries no MAC"),
        ("[[rule]]\nat = 'ledger'\naction = 'answer'\ncode = 'ZZ'", "at the ledger code is one of acqsim's"),
        ("[[rule]\n", "not TOML"),
    ],
)
def test_invalid_rules_are_named(text: str, message: str) -> None:
    with pytest.raises(RuleError, match=re.escape(message)):
        parse_rules(text)


@given(st.dictionaries(st.sampled_from(["t", "2", "3", "4", "11", "22", "41"]), st.text(max_size=20)))
def test_a_rule_without_conditions_matches_any_message(message: dict[str, str]) -> None:
    [rule] = parse_rules("[[rule]]\nat = 'nac'\naction = 'close'")
    assert rule.matches("nac", message)
    assert not rule.matches("frontend", message)


def test_an_hsm_rule_matches_on_command_and_client() -> None:
    [rule] = parse_rules("[[rule]]\nat = 'hsm'\ncommand = 'M8'\nclient = 'frontend'\naction = 'answer'\ncode = '01'")
    assert rule.matches("hsm", hsm_message("M8", "frontend"))
    assert not rule.matches("hsm", hsm_message("DC", "frontend"))
    assert not rule.matches("hsm", hsm_message("M8", "anonymous"))
    assert not rule.matches("ledger", hsm_message("M8", "frontend"))
    [close] = parse_rules("[[rule]]\nat = 'ledger'\naction = 'close'")
    assert close.action.kind is ActionKind.CLOSE
