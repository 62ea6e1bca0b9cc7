"""Key custody over real processes (issue #15): only the HSM holds the LMK, and nothing a run writes holds a
test secret.

One ``acqsim up`` (ephemeral ports, the LMK passphrase in the supervisor's environment) serves both tests:

- every service but the HSM: its command line, its environment and the configuration file it was handed hold
  neither the LMK (hex, either case) nor its passphrase, and its memory (every readable private anonymous or
  heap mapping, via /proc/PID/mem) holds neither the LMK's key bytes nor the passphrase — while the same scan
  finds the LMK in the HSM's own memory, so the test can fail;
- after a load run, a settlement whose totals disagree (so the terminal uploads its batch), a replay of the
  NAC's trace and a pcap export, no file under the data folder nor anything printed holds a test PAN (ASCII,
  inside longer digit runs, packed BCD), a PIN after a label, a clear PIN block, a clear test key (each half,
  either case, raw) or the LMK — the ledger's store, the issuer's own book, aside.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import anyio
import pytest

from acqkit.config import AcqsimConfig, Endpoint, config_to_toml
from acqsim.cli import main
from acqsim.processes import running_processes
from hsm_sim.lmk_store import load_lmk_file
from terminal.load.runner import with_load_terminals
from terminal.pos import PosTerminal
from tests.secrets_scan import secrets_in
from wire.fields import SettlementTotals
from wire.trace import read_trace

PASSPHRASE: Final = "acqsim TEST LMK passphrase for the custody test"
SERVICES: Final = ("hsm", "ledger", "frontend", "nac")
#: Mappings scanned: private, readable, anonymous (no file) or the heap — where a process keeps its data.
SCANNED_MAPPING: Final = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) r[w-][x-]p \S+ \S+ 0\s*(\[heap\]|\[anon:[^\]]*\])?$")


@dataclasses.dataclass(frozen=True, slots=True)
class Stack:
    folder: Path
    config: AcqsimConfig
    config_file: Path
    nac: Endpoint
    lmk: bytes


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("custody")
    config = with_load_terminals(AcqsimConfig.default(data_dir=folder / "data"), 3)
    config_file = folder / "acqsim.toml"
    config_file.write_text(config_to_toml(config), encoding="utf-8")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ACQSIM_LMK_PASSPHRASE", PASSPHRASE)
        with running_processes(config_file=config_file) as nac:
            lmk = load_lmk_file(Path(config.store_path(config.hsm.lmk_file)), PASSPHRASE).key
            yield Stack(folder, config, config_file, nac, lmk)


def service_pids(folder: Path) -> dict[str, int]:
    """The pid of each service process started for ``folder`` (its arguments name a path inside it)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [word.decode(errors="replace") for word in argv]
        if "acqsim" in words and str(folder) in " ".join(words):
            service = next((w for w in words[words.index("acqsim") + 1 :] if not w.startswith("-")), "")
            if service in SERVICES:
                found[service] = int(entry.name)
    return found


def memory_holds(pid: int, needles: list[bytes]) -> list[bytes]:
    """Which of ``needles`` appear in the process's private anonymous and heap memory."""
    hits: set[bytes] = set()
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as memory:
        for line in maps:
            match = SCANNED_MAPPING.match(line.strip())
            if match is None:
                continue
            start, end = int(match[1], 16), int(match[2], 16)
            try:
                memory.seek(start)
                data = memory.read(end - start)
            except OSError:  # a guard page or a mapping gone meanwhile
                continue
            hits |= {needle for needle in needles if needle in data}
    return [needle for needle in needles if needle in hits]


def test_no_process_but_the_hsm_holds_the_lmk_or_its_passphrase(stack: Stack) -> None:
    pids = service_pids(stack.folder)
    assert set(pids) == set(SERVICES), pids
    lmk_forms = [stack.lmk, stack.lmk.hex().encode(), stack.lmk.hex().upper().encode()]
    passphrase = PASSPHRASE.encode()
    assert memory_holds(pids["hsm"], [stack.lmk]) == [stack.lmk]  # the scanner finds it where it is
    assert passphrase in Path(f"/proc/{pids['hsm']}/environ").read_bytes()  # the HSM alone was given it
    for service in ("ledger", "frontend", "nac"):
        pid = pids[service]
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        handed = b"".join(argv) + Path(f"/proc/{pid}/environ").read_bytes()
        if b"--config" in argv:
            handed += Path(argv[argv.index(b"--config") + 1].decode()).read_bytes()
        assert not [form for form in [*lmk_forms, passphrase] if form in handed], service
        assert memory_holds(pid, [*lmk_forms, passphrase]) == [], service


async def settle_with_batch_upload(stack: Stack) -> str:
    card = stack.config.card("6200001000000003")
    async with PosTerminal(stack.config, "10000001", nac=stack.nac, timeout=30) as pos:
        signed = await pos.sign_on()
        assert signed is not None and signed.approved
        bought = await pos.financial("purchase", card, amount=1_234, pin=card.pin)
        assert bought is not None and bought.approved
        pos.session.state.batch_txns.append(pos.session.state.batch_txns[-1])  # the totals now disagree
        settled, _ = await pos.settle()
        assert settled is not None and settled.approved
        return settled.fields["48"]


def test_a_load_run_settlement_and_replay_leave_no_secret_behind(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, nac, data = str(stack.config_file), str(stack.nac), stack.config.data_dir
    load = ["load", "--against", nac, "--terminals", "3", "--rate", "10", "--duration", "1.5", "--config", cfg]
    assert main(load) == 0
    totals = SettlementTotals.parse(anyio.run(settle_with_batch_upload, stack))
    assert totals.domestic.flag != "1"  # unbalanced: the terminal uploaded its batch
    assert main(["replay", str(data / "traces" / "nac.jsonl"), "--against", nac, "--config", cfg]) in (0, 1)
    assert main(["trace", "export", "--pcap", str(data / "day.pcap"), "--trace-dir", str(data / "traces")]) == 0
    captured = capsys.readouterr()
    traces = read_trace(data / "traces" / "frontend.jsonl")
    assert any(r["message"].get("mti") == "0320" for r in traces)  # the batch upload crossed the front-end
    lmk = {"the LMK": [stack.lmk, stack.lmk.hex().encode(), stack.lmk.hex().upper().encode()]}
    hits = secrets_in(data, captured.out + captured.err, lmk)  # all the run wrote (the TEST config aside)
    assert hits == [], hits
    assert secrets_in(data / "keys", stack.lmk.hex(), lmk) == ["<printed>: the LMK"]  # the scan sees it
