"""The package map on small trees written here: what counts as a package, the map's text, the knots it finds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acqsim import archmap
from acqsim.cli import main


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


TREE = {
    "pyproject.toml": "",
    "wire/__init__.py": "",
    "acqkit/__init__.py": "import wire.framing\n",
    "ledger/__init__.py": "",
    "ledger/client.py": "from acqkit import netio\n",
    "shop/__init__.py": "",
    "shop/core.py": "from ledger.client import LedgerClient\n\ndef f():\n    import ledger.engine\n",
    "tests/__init__.py": "import shop.core\n",
}


def test_a_checkout_layers_every_package_but_tests_and_a_service_is_any_unnamed_one(tmp_path: Path) -> None:
    layers = archmap.discover_layers(write(tmp_path, TREE))
    assert layers == {"acqkit": 1, "ledger": 2, "shop": 2, "wire": 0}


def test_an_installation_layers_only_the_distributions_own_packages(tmp_path: Path) -> None:
    root = write(tmp_path, {"wire/__init__.py": "", "acqsim/__init__.py": "", "anyio/__init__.py": ""})
    assert archmap.discover_layers(root) == {"acqsim": 3, "wire": 0}  # anyio is another distribution's


def test_the_map_names_what_each_package_uses_and_the_knot_inside_a_function(tmp_path: Path) -> None:
    root = write(tmp_path, TREE)
    layers = archmap.discover_layers(root)
    graph = archmap.package_graph(layers, root)
    assert archmap.render(layers, graph).splitlines() == [
        "layer 2: services",
        "  ledger       → acqkit",
        "  shop         → ledger (client, engine)",
        "layer 1: runtime",
        "  acqkit       → wire",
        "layer 0: formats",
        "  wire         → (nothing of ours)",
    ]
    assert archmap.contract_breaks(layers, root) == {("shop/core.py", "ledger.engine")}


def test_the_doc_block_is_replaced_between_its_markers_only() -> None:
    document = f"before\n{archmap.doc_block('old map')}\nafter\n"
    updated = archmap.with_map(document, "new map")
    assert updated == f"before\n{archmap.doc_block('new map')}\nafter\n"
    assert archmap.map_in_doc(updated) == archmap.doc_block("new map")
    with pytest.raises(ValueError, match="archmap:begin"):
        archmap.with_map("no markers here", "map")


def test_acqsim_arch_json_lists_the_layers_and_the_knots(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["arch", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["packages"]["wire"] == {"layer": 0, "uses": {}}
    assert set(report["packages"]["acqkit"]["uses"]) == {"wire"}  # the runtime uses formats only
    assert report["packages"]["acqsim"]["layer"] == 3
    assert all(set(knot) == {"file", "imports"} for knot in report["contract_breaks"])
