"""``acqsim keys import | generate | list`` against a real HSM process: keys go in through the HSM (A4, A6,
A0), only cryptograms and check values come out, components are never echoed nor audited; exit codes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from acqkit.keystore import read_key_store
from acqsim.cli import main
from wire.paycrypto import encrypt_key_under, key_check_value, with_odd_parity, xor

# TEST keys only.
ZMK_C1 = "1C587F1C13924FEF1C587F1C13924FEF"
ZMK_C2 = "7A3D5E1F2A4C6B8C9E0E1A2A3D4C5E6E"
ZMK = with_odd_parity(xor(bytes.fromhex(ZMK_C1), bytes.fromhex(ZMK_C2)))
TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
READY_TIMEOUT_S = 30.0


@contextmanager
def hsm_process(folder: Path, *options: str) -> Iterator[str]:
    """``acqsim hsm`` on a free port with a fresh sealed LMK; yields HOST:PORT from its READY line."""
    argv = [sys.executable, "-m", "acqsim", "hsm", "--port", "0", "--lmk-file", str(folder / "hsm" / "lmk.json")]
    argv += ["--create-lmk", "--audit", str(folder / "audit.jsonl"), *options]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:  # the HSM prints READY within its start; a dead one ends the output
            if line.startswith("READY hsm"):
                break
        else:
            raise AssertionError("the HSM exited before READY")
        try:
            yield line.split()[-1]
        finally:
            process.terminate()
            process.wait(timeout=READY_TIMEOUT_S)


def keys(folder: Path, hsm: str, *argv: str) -> int:
    return main(["keys", *argv, "--data-dir", str(folder), "--hsm", hsm])


def test_import_generate_list_through_the_hsm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ACQSIM_LMK_PASSPHRASE", raising=False)
    tmk_under_zmk = encrypt_key_under(ZMK, TMK).hex().upper()
    tmk_kcv = key_check_value(TMK).hex().upper()[:6]
    with hsm_process(tmp_path, "--allow-clear-import") as hsm:
        monkeypatch.setattr(sys, "stdin", io.StringIO(f"{ZMK_C1}\n{ZMK_C2}\n"))
        assert keys(tmp_path, hsm, "import", "--label", "zmk/bank", "--type", "ZMK", "--components", "2") == 0
        under_zmk = ["--under-zmk", "zmk/bank", "--cryptogram", tmk_under_zmk]
        assert keys(tmp_path, hsm, "import", "--label", "tmk/T1", "--type", "TMK", *under_zmk, "--kcv", "000000") == 1
        assert keys(tmp_path, hsm, "import", "--label", "tmk/T1", "--type", "TMK", *under_zmk, "--kcv", tmk_kcv) == 0
        assert keys(tmp_path, hsm, "generate", "--label", "pvk", "--type", "PVK") == 0
        assert keys(tmp_path, hsm, "import", "--label", "tmk/T2", "--type", "TMK", "--under-zmk", "zmk/none") == 2
    out = capsys.readouterr().out
    assert "check value mismatch" in out
    assert main(["keys", "list", "--json", "--data-dir", str(tmp_path)]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(k["label"], k["type"], k["source"]) for k in listed] == [
        ("pvk", "PVK", "generated"),
        ("tmk/T1", "TMK", "zmk:zmk/bank"),
        ("zmk/bank", "ZMK", "components"),
    ]
    assert listed[1]["kcv"] == tmk_kcv and listed[2]["kcv"] == key_check_value(ZMK).hex().upper()[:6]
    store = read_key_store(tmp_path / "keys" / "keystore.json")
    assert set(store.entries) == {"pvk", "tmk/T1", "zmk/bank"}  # the refused import stored nothing
    written = (tmp_path / "keys" / "keystore.json").read_text() + (tmp_path / "audit.jsonl").read_text() + out
    for secret in (ZMK_C1, ZMK_C2, ZMK.hex().upper(), TMK.hex().upper()):
        assert secret not in written.upper()


def test_clear_components_are_refused_without_allow_clear_import_and_unreachable_is_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ACQSIM_LMK_PASSPHRASE", raising=False)
    with hsm_process(tmp_path) as hsm:
        monkeypatch.setattr(sys, "stdin", io.StringIO(f"{ZMK_C1}\n{ZMK_C2}\n"))
        assert keys(tmp_path, hsm, "import", "--label", "zmk/bank", "--type", "ZMK", "--components", "2") == 1
    assert "error 68" in capsys.readouterr().err
    assert not (tmp_path / "keys" / "keystore.json").exists()
    assert keys(tmp_path, hsm, "generate", "--label", "pvk", "--type", "PVK") == 3  # that HSM is gone


def test_keys_reach_an_hsm_that_serves_mutual_tls_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With ``tls = true`` the command proves itself as the front-end (the HSM's allowed client)."""
    monkeypatch.delenv("ACQSIM_LMK_PASSPHRASE", raising=False)
    config_file = tmp_path / "acqsim.toml"
    config_file.write_text(f'data_dir = "{tmp_path}"\ntls = true\n')
    assert main(["certs", "create", "--config", str(config_file)]) == 0
    with hsm_process(tmp_path, "--tls-dir", str(tmp_path / "tls")) as hsm:
        argv = ["keys", "generate", "--label", "zmk/bank", "--type", "ZMK", "--hsm", hsm]
        assert main([*argv, "--config", str(config_file)]) == 0
        plain = tmp_path / "plain.toml"
        plain.write_text(f'data_dir = "{tmp_path}"\n')
        assert main([*argv, "--config", str(plain)]) == 3  # without a certificate the HSM does not answer
    assert "stored zmk/bank ZMK" in capsys.readouterr().out
