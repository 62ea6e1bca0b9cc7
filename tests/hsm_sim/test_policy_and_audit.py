"""Client allow-list (policy alone, and through the server over real mutual TLS) and the HSM audit log."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import anyio
import pytest

from acqkit.serving import Serving
from acqkit.tls import client_context, create_all, server_context
from hsm_sim.audit import MAX_AUDIT_BUFFERED, AuditLog, read_audit
from hsm_sim.cli import policy_from_args, show_audit
from hsm_sim.client import HsmClient, HsmError, HsmUnavailable, PinVerification
from hsm_sim.errors import ErrorCode
from hsm_sim.keys import DEFAULT_TEST_LMK, KeyType, encrypt_under_lmk
from hsm_sim.policy import ClientPolicy
from hsm_sim.processor import Outcome
from hsm_sim.server import serve
from wire.paycrypto import build_pin_block, tdes_ecb_encrypt

HOST = "127.0.0.1"
STEP_TIMEOUT_S = 10.0
# TEST material only.
TPK = bytes.fromhex("0123456789ABCDEF1C587F1C13924FEF")
PVK = bytes.fromhex("7A3D5E1F2A4C6B8C9E0E1A2A3D4C5E6E")
PAN = "6200001000000003"


def test_policy_allows_listed_identities_and_their_commands_only() -> None:
    policy = ClientPolicy(allowed={"frontend": None, "ops": frozenset({"NC", "BU"})}, require_identity=True)
    assert policy.authorise("frontend", "DC") is None
    assert policy.authorise("ops", "BU") is None
    assert policy.authorise("ops", "DC") is ErrorCode.COMMAND_DISABLED
    assert not policy.admits("nac")
    assert policy.authorise("nac", "NC") is ErrorCode.NOT_AUTHORISED
    assert not policy.admits(None)  # TLS on: no identity, no service


def test_plain_tcp_clients_are_anonymous_and_allowed() -> None:
    policy = ClientPolicy()
    assert policy.admits(None)
    assert policy.authorise(None, "DC") is None
    assert not policy.admits("intruder")  # a named identity must be on the list, even so


def test_allowed_client_arguments() -> None:
    policy = policy_from_args(["frontend", "ops:NC,BU"])
    assert policy.allowed == {"frontend": None, "ops": frozenset({"NC", "BU"})}
    assert policy_from_args(None).allowed == {"frontend": None}


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("hsm-tls")
    create_all(directory)  # TEST certificates
    return directory


@pytest.mark.anyio
async def test_mutual_tls_allow_list_and_audit(ca_dir: Path, tmp_path: Path) -> None:
    audit_path = tmp_path / "hsm-audit.jsonl"
    audit = AuditLog(audit_path)
    serving = Serving(server_tls=server_context(ca_dir, "hsm"))
    policy = ClientPolicy(allowed={"frontend": None, "terminal": frozenset({"NC"})})
    tpk = encrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.TPK, TPK)
    pvk = encrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.PVK, PVK)
    bad_block = tdes_ecb_encrypt(TPK, bytes.fromhex("FFFFFFFFFFFFFFFF"))
    wrong_pin = tdes_ecb_encrypt(TPK, build_pin_block("654321", PAN))
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            functools.partial(
                serve, HOST, 0, lmk=DEFAULT_TEST_LMK, serving=serving, allowed_clients=policy, audit=audit
            )
        )
        front = await HsmClient.connect(HOST, port, timeout=STEP_TIMEOUT_S, tls=client_context(ca_dir, "frontend"))
        async with front:
            assert await front.diagnostics() == DEFAULT_TEST_LMK.check_value
            check = functools.partial(front.verify_pin_pvv, tpk, pvk, pan=PAN, pvki="1", pvv="6308")
            assert await check(bad_block) is PinVerification.WRONG_PIN  # no oracle: 01 for a bad block
            assert await check(wrong_pin) is PinVerification.WRONG_PIN
        limited = await HsmClient.connect(HOST, port, timeout=STEP_TIMEOUT_S, tls=client_context(ca_dir, "terminal"))
        async with limited:
            assert await limited.diagnostics() == DEFAULT_TEST_LMK.check_value
            with pytest.raises(HsmError) as info:
                await limited.generate_key(KeyType.TPK)
            assert info.value.error_code == "68"
        with pytest.raises(HsmUnavailable):  # not on the list: closed before any command is answered
            async with await HsmClient.connect(
                HOST, port, timeout=STEP_TIMEOUT_S, tls=client_context(ca_dir, "nac")
            ) as stranger:
                await stranger.diagnostics()
        tg.cancel_scope.cancel()
    entries = read_audit(audit_path)  # flushed at stop
    summary = [(e["client"], e["command"], e["outcome"], e.get("true_outcome")) for e in entries]
    assert ("frontend", "NC", "00", None) in summary
    assert ("frontend", "DC", "01", "20") in summary
    assert ("frontend", "DC", "01", None) in summary
    assert ("terminal", "A0", "68", None) in summary
    assert ("nac", "--", "refused", None) in summary
    dc = next(e for e in entries if e["command"] == "DC")
    assert dc["key_types"] == ["TPK", "PVK"]
    assert all(e["ts"].endswith("Z") and e["peer"].startswith(HOST) for e in entries)
    text = audit_path.read_text()
    for secret in (TPK.hex(), PVK.hex(), tpk[1:], pvk[1:], bad_block.hex(), wrong_pin.hex(), PAN, PAN[-13:-1]):
        assert secret.upper() not in text.upper()


@pytest.mark.anyio
async def test_plain_tcp_audits_anonymous_clients_with_key_types_and_outcomes(tmp_path: Path) -> None:
    audit_path = tmp_path / "audit.jsonl"
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve, HOST, 0, lmk=DEFAULT_TEST_LMK, audit=AuditLog(audit_path)))
        async with await HsmClient.connect(HOST, port, timeout=STEP_TIMEOUT_S) as hsm:
            await hsm.generate_key(KeyType.TAK)
            with pytest.raises(HsmError):
                await hsm.key_check_value(KeyType.TPK, encrypt_under_lmk(DEFAULT_TEST_LMK, KeyType.TAK, TPK))
        tg.cancel_scope.cancel()
    entries = read_audit(audit_path)
    assert [(e["client"], e["command"], e["key_types"], e["outcome"]) for e in entries] == [
        ("anonymous", "A0", ["TAK"], "00"),
        ("anonymous", "BU", ["TPK"], "10"),
    ]


def test_audit_command_shows_the_last_entries(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.jsonl"
    lines = [
        {
            "ts": f"2026-01-01T00:00:0{i}.000Z",
            "client": "frontend",
            "peer": "127.0.0.1:1",
            "command": "NC",
            "key_types": [],
            "outcome": "00",
        }
        for i in range(5)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert show_audit(path, 2, as_json=True) == 0
    shown = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert shown == lines[-2:]
    assert show_audit(path, None, as_json=False) == 0
    assert capsys.readouterr().out.count("frontend") == 5
    assert show_audit(tmp_path / "missing.jsonl", None, as_json=False) == 2


def test_audit_entries_are_buffered_until_flush_or_a_full_buffer(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    outcome = Outcome("NC", ErrorCode.OK, ErrorCode.OK)
    for _ in range(MAX_AUDIT_BUFFERED - 1):
        log.record("frontend", "127.0.0.1:1", outcome)
    assert not path.exists()  # no write per command
    log.record("frontend", "127.0.0.1:1", outcome)
    assert len(read_audit(path)) == MAX_AUDIT_BUFFERED
    log.record("frontend", "127.0.0.1:1", outcome)
    log.flush()
    assert len(read_audit(path)) == MAX_AUDIT_BUFFERED + 1
