"""The CLI's conventions, held against the argparse tree of every command: help for every argument, defaults
shown, exit codes in every epilog, ``--json`` wherever a command reports; and user errors as one line on
stderr with the documented exit code, from the real ``acqsim`` process (no traceback)."""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from acqkit.exitcodes import EXIT_UNREACHABLE, EXIT_USAGE
from acqsim.cli import (
    ACTIONS,
    EXIT_CODES_EPILOG,
    SUBCOMMANDS,
    WITHOUT_JSON,
    CommandParser,
    _action_parser,
    build_parser,
    command_parsers,
)
from tests.cli_helpers import closed_port, run_acqsim


def every_command() -> Iterator[CommandParser]:
    """Every command's parser and those below it, built as ``acqsim COMMAND …`` builds them."""
    for name in SUBCOMMANDS:
        top = build_parser([name])
        [sub] = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
        if name in sub.choices:  # a command whose optional extra is not installed is not offered
            yield from command_parsers(sub.choices[name], (name,))
    for first, second in ACTIONS:
        found = _action_parser([first, second])
        assert found is not None
        yield from command_parsers(found[0], (first, second))


COMMANDS = list(every_command())
IDS = [" ".join(path) for path, _ in COMMANDS]


def documented(action: argparse.Action) -> bool:
    return not isinstance(action, argparse._HelpAction | argparse._VersionAction | argparse._SubParsersAction)


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=IDS)
def test_every_argument_has_help_and_every_default_is_shown(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    formatter = parser._get_formatter()
    for action in filter(documented, parser._actions):
        name = "/".join(action.option_strings) or action.dest
        assert action.help and action.help.strip(), f"acqsim {' '.join(path)}: {name} has no help"
        takes_value = action.nargs != 0
        if takes_value and action.default not in (None, argparse.SUPPRESS, "", []):
            shown = formatter._expand_help(action)
            assert str(action.default) in shown, f"acqsim {' '.join(path)}: {name} hides its default"


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=IDS)
def test_every_help_ends_with_the_exit_codes(path: tuple[str, ...], parser: argparse.ArgumentParser) -> None:
    assert parser.epilog is not None
    assert parser.epilog.endswith(EXIT_CODES_EPILOG)
    assert "exit codes: 0 ok" in " ".join(parser.format_help().split())


@pytest.mark.parametrize(("path", "parser"), [(p, c) for p, c in COMMANDS if len(p) == 1 or p in ACTIONS], ids=str)
def test_every_command_that_reports_has_json(path: tuple[str, ...], parser: argparse.ArgumentParser) -> None:
    has_json = any("--json" in action.option_strings for action in parser._actions)
    if " ".join(path) in WITHOUT_JSON:
        assert not has_json, f"acqsim {' '.join(path)} has --json now: take it off WITHOUT_JSON"
    else:
        assert has_json, f"acqsim {' '.join(path)} reports but has no --json (or say why in WITHOUT_JSON)"


def test_the_list_of_commands_without_json_names_real_commands() -> None:
    assert set(WITHOUT_JSON) <= set(SUBCOMMANDS)


# -- user errors: one line, the right exit code -------------------------------------------------------------


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return lines[0]


#: case → (file name, its text, what the one line must say: the file, the line, the table and key)
CONFIG_CASES = {
    "bad-value": ("bad.toml", '[ledger]\nhost = "127.0.0.1"\nport = "x"\n', "bad.toml:3: [ledger] port must be an"),
    "unknown-key": (
        "unknown.toml",
        "[nac]\nanswer_timout = 2.0\n",
        "unknown.toml:2: [nac] unknown key 'answer_timout'",
    ),
    "typo": ("typo.toml", "[ledger]\nprot = 1\n", "typo.toml:2: [ledger] unknown key 'prot' (did you mean 'port'?)"),
    "bad-toml": ("syntax.toml", "[ledger\n", "syntax.toml: Expected ']' at the end of a table declaration (at line 1"),
    "bad-top-level": ("top.toml", "tls = 3\n", "top.toml:1: tls must be true or false"),
}


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_a_bad_configuration_names_file_key_and_line(case: str, tmp_path: Path) -> None:
    name, text, expected = CONFIG_CASES[case]
    (tmp_path / name).write_text(text, encoding="utf-8")
    result = run_acqsim("config", "show", "--config", name, cwd=tmp_path)
    assert result.returncode == EXIT_USAGE
    assert expected in one_line(result)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("ledger", "check", "--db", "/no/such/file"), "no ledger store at /no/such/file"),
        (("trace", "export", "--pcap", "out.pcap", "--trace-dir", "."), "no NAC trace at nac.jsonl"),
        (("replay", "--hex", "missing.hex", "--against", "127.0.0.1:1"), "No such file or directory"),
        (("config", "show", "--config", "."), "Is a directory"),
        (("pos", "echo", "--nac", "no-port-here"), "'no-port-here' is not host:port"),
        (("hsm", "--port", "99999999"), "'99999999' is not a port number"),
        (("pos", "purchase", "12.3x"), "is not a number of yuan"),
    ],
    ids=[
        "ledger-check-missing-db",
        "missing-trace",
        "missing-hex",
        "unreadable-config",
        "bad-host-port",
        "bad-port",
        "bad-amount",
    ],
)
def test_a_user_error_is_one_line_and_exit_2(argv: tuple[str, ...], expected: str, tmp_path: Path) -> None:
    result = run_acqsim(*argv, cwd=tmp_path)
    assert result.returncode == EXIT_USAGE, result.stderr
    assert expected in one_line(result)


def test_a_terminal_with_no_nac_to_answer_exits_3(tmp_path: Path) -> None:
    result = run_acqsim("pos", "echo", "--nac", f"127.0.0.1:{closed_port()}", "--json", cwd=tmp_path)
    assert result.returncode == EXIT_UNREACHABLE
    assert "Traceback" not in result.stderr


def test_docs_cli_has_an_exit_code_row_for_every_command() -> None:
    document = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    rows = [line for line in document.splitlines() if line.startswith("| `")]
    documented = {line.split("`")[1].split()[0] for line in rows}
    assert set(SUBCOMMANDS) - documented == set(), "commands without a row in docs/cli.md's exit-code table"
