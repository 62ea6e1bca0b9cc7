"""The import contract: layers run one way, and services meet only through each other's public face.

    wire/ (formats)  ←  acqkit/ (runtime)  ←  services  ←  acqsim/ (CLI, supervisor, demo)  ←  bench/

A module may import its own package and any lower layer. A service may import another service only through
that service's ``client`` (how to talk to it) or ``api`` (the typed contract) module. Every import counts,
including those inside functions. This is read from the source with ``ast`` by :mod:`acqsim.archmap`, the
checker ``acqsim arch`` uses too: nothing is imported to check.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Final

from acqsim import archmap
from acqsim.archmap import breaks_contract, discover_layers
from acqsim.archmap import contract_breaks as archmap_breaks

ROOT: Final = Path(__file__).resolve().parent.parent
SERVICES: Final = (
    "hsm_sim",
    "core_ledger",
    "frontend",
    "nac",
    "terminal",
    "wallet",
    "merchant",
    "ecr",
    "scheme",
    "issuer_host",
)
LAYER: Final[dict[str, int]] = {"wire": 0, "acqkit": 1, **dict.fromkeys(SERVICES, 2), "acqsim": 3, "bench": 4}
#: The modules through which one service may use another.
PUBLIC_FACE: Final = ("client", "api")
#: Imports that break the contract today, each to be untied (issue #16). The test fails when one of these is
#: gone (so the list only shrinks) and when any other breaking import appears.
KNOWN_KNOTS: Final[frozenset[tuple[str, str]]] = frozenset()


#: Key custody (issue #15): the modules that hold or open the LMK, and the names that reach it. No module
#: outside ``hsm_sim/`` imports either, in any layer (tests of the HSM itself may).
LMK_MODULES: Final = frozenset({"hsm_sim.keys", "hsm_sim.lmk_store", "hsm_sim.rotation"})
LMK_NAMES: Final = frozenset(
    {
        "Lmk",
        "encrypt_under_lmk",
        "decrypt_under_lmk",
        "DEFAULT_TEST_LMK",
        "TEST_LMK_HEX",
        "lmk_from_arg",
        "lmk_store",
        "load_lmk_file",
        "open_or_create_lmk",
        "open_sealed_lmk",
        "random_lmk",
        "write_lmk_file",
    }
)


def _breaks_contract(importer: str, module: str) -> bool:
    return breaks_contract(importer, module, LAYER)


def contract_breaks() -> set[tuple[str, str]]:
    return archmap_breaks(LAYER, ROOT)


def test_every_package_is_registered_in_its_layer() -> None:
    """A new top-level package must be entered in SERVICES (or LAYER) here, so that the contract covers it."""
    assert discover_layers(ROOT) == LAYER
    assert PUBLIC_FACE == archmap.PUBLIC_FACE


def test_no_import_runs_back_up_and_services_meet_only_through_client_or_api() -> None:
    breaks = contract_breaks()
    new = sorted(breaks - KNOWN_KNOTS)
    assert not new, "imports that break the layer contract:\n" + "\n".join(f"  {f} imports {m}" for f, m in new)


def test_known_knots_are_still_knots() -> None:
    untied = sorted(KNOWN_KNOTS - contract_breaks())
    assert not untied, "untied, remove from KNOWN_KNOTS: " + ", ".join(f"{f} → {m}" for f, m in untied)


def test_the_checker_sees_a_wrong_way_import() -> None:
    assert _breaks_contract("wire", "acqkit.netio")
    assert _breaks_contract("acqkit", "frontend.core")
    assert _breaks_contract("terminal", "acqsim.pipeline")
    assert _breaks_contract("frontend", "core_ledger.engine")
    assert not _breaks_contract("frontend", "core_ledger.client")
    assert not _breaks_contract("acqsim", "frontend.core")
    assert not _breaks_contract("hsm_sim", "hsm_sim.keys")


def lmk_reaches(path: Path) -> set[str]:
    """What ``path`` imports that reaches the LMK: an LMK module, or an LMK name from anywhere in hsm_sim."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in LMK_MODULES}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "hsm_sim":
            if node.module in LMK_MODULES:
                found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in LMK_MODULES}
            found |= {f"{node.module}.{alias.name}" for alias in node.names if alias.name in LMK_NAMES}
    return found


def test_no_module_outside_the_hsm_can_reach_the_lmk() -> None:
    reaching = {
        f"{path.relative_to(ROOT).as_posix()} imports {name}"
        for package in LAYER
        if package != "hsm_sim"
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in lmk_reaches(path)
    }
    assert not reaching, "only hsm_sim/ may hold the LMK:\n  " + "\n  ".join(sorted(reaching))


def test_the_lmk_checker_sees_a_reaching_import(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("from hsm_sim.cli import lmk_from_arg\nimport hsm_sim.lmk_store\nfrom hsm_sim import keys\n")
    assert lmk_reaches(source) == {"hsm_sim.cli.lmk_from_arg", "hsm_sim.lmk_store", "hsm_sim.keys"}
    source.write_text("from hsm_sim.client import HsmClient, KeyType\n")
    assert lmk_reaches(source) == set()


def test_the_map_in_docs_architecture_is_the_one_the_code_gives() -> None:
    document = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    generated = archmap.doc_block(archmap.render(LAYER, archmap.package_graph(LAYER, ROOT)))
    assert archmap.map_in_doc(document) == generated, (
        "docs/architecture.md shows another map than the code: run `acqsim arch --update-doc docs/architecture.md`"
    )
