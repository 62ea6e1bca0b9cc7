"""The package map, read from the source with ``ast``: which package imports which, by layer.

    wire/ (formats)  ←  acqkit/ (runtime)  ←  services  ←  acqsim/ (CLI, supervisor, demo)  ←  bench/

A module may import its own package and any lower layer. A service may import another service only through
that service's ``client`` (how to talk to it) or ``api`` (the typed contract) module. Every import counts,
including those inside functions; nothing is imported to find them.

One checker for two users: ``tests/test_layers.py`` holds the contract against it (with its tables of
registered services and of the knots still to untie), and ``acqsim arch`` prints the map that
``docs/architecture.md`` shows (a test keeps the two equal).
"""

from __future__ import annotations

import ast
import importlib.metadata
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final

#: The source tree the installed packages sit in (a checkout, or site-packages).
SOURCE_ROOT: Final = Path(__file__).resolve().parent.parent
#: Layers whose packages are named; every other top-level package is a service.
FIXED_LAYERS: Final[dict[str, int]] = {"wire": 0, "acqkit": 1, "acqsim": 3, "bench": 4}
SERVICE_LAYER: Final = 2
LAYER_NAMES: Final[dict[int, str]] = {
    0: "formats",
    1: "runtime",
    2: "services",
    3: "CLI, supervisor, demo",
    4: "benchmarks",
}
#: The modules through which one service may use another.
PUBLIC_FACE: Final = ("client", "api")
#: Top-level folders with an ``__init__.py`` that are not part of the layering.
NOT_LAYERED: Final = frozenset({"tests"})

#: ``(importing file relative to the root, imported module)``
Import = tuple[str, str]


def discover_layers(root: Path = SOURCE_ROOT) -> dict[str, int]:
    """Every top-level package of acqsim under ``root`` and its layer (one not in FIXED_LAYERS is a service).

    In a checkout (``root`` holds pyproject.toml) that is every folder with an ``__init__.py`` (so a new one is
    seen before it is installed); in an installation, the packages the distribution names (``root`` is then
    site-packages, beside other distributions' packages)."""
    if (root / "pyproject.toml").is_file():
        names = [init.parent.name for init in root.glob("*/__init__.py")]
    else:
        listed = importlib.metadata.distribution("acqsim").read_text("top_level.txt") or ""
        names = [name for name in listed.split() if (root / name / "__init__.py").is_file()]
    return {name: FIXED_LAYERS.get(name, SERVICE_LAYER) for name in sorted(names) if name not in NOT_LAYERED}


def module_imports(path: Path) -> Iterator[str]:
    """The absolute imports of one file, wherever they stand in it."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def all_imports(layers: Mapping[str, int], root: Path = SOURCE_ROOT) -> Iterator[Import]:
    for package in layers:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            for module in module_imports(path):
                yield relative, module


def breaks_contract(importer: str, module: str, layers: Mapping[str, int]) -> bool:
    """Whether package ``importer`` importing ``module`` breaks the layering (see the module docstring)."""
    package = module.split(".", maxsplit=1)[0]
    if package not in layers or package == importer:
        return False
    if layers[package] > layers[importer]:
        return True  # an import that runs back up
    if layers[package] == layers[importer] == SERVICE_LAYER:
        parts = module.split(".")
        return len(parts) < 2 or parts[1] not in PUBLIC_FACE
    return False


def contract_breaks(layers: Mapping[str, int], root: Path = SOURCE_ROOT) -> set[Import]:
    return {
        (relative, module)
        for relative, module in all_imports(layers, root)
        if breaks_contract(relative.split("/", maxsplit=1)[0], module, layers)
    }


def package_graph(layers: Mapping[str, int], root: Path = SOURCE_ROOT) -> dict[str, dict[str, set[str]]]:
    """package → {package it imports → the modules of it imported, as ``package.module`` (bare package: ``*``)}."""
    graph: dict[str, dict[str, set[str]]] = {package: {} for package in layers}
    for relative, module in all_imports(layers, root):
        importer = relative.split("/", maxsplit=1)[0]
        target, _, rest = module.partition(".")
        if target in layers and target != importer:
            graph[importer].setdefault(target, set()).add(rest.split(".")[0] if rest else "*")
    return graph


def render(layers: Mapping[str, int], graph: Mapping[str, Mapping[str, set[str]]]) -> str:
    """The map as text, top layer first: each package and what it uses. Between services the modules used
    are named, since only ``client`` and ``api`` may be; below its layer, a package may use anything."""
    lines = []
    for layer in sorted(set(layers.values()), reverse=True):
        lines.append(f"layer {layer}: {LAYER_NAMES.get(layer, '?')}")
        for package in sorted(p for p, n in layers.items() if n == layer):
            uses = []
            for target in sorted(graph[package], key=lambda t: (-layers[t], t)):
                same_layer = layers[target] == layers[package] == SERVICE_LAYER
                modules = f" ({', '.join(sorted(graph[package][target]))})" if same_layer else ""
                uses.append(f"{target}{modules}")
            lines.append(f"  {package:<12} → {', '.join(uses) or '(nothing of ours)'}")
    return "\n".join(lines)


def as_json(
    layers: Mapping[str, int], graph: Mapping[str, Mapping[str, set[str]]], breaks: set[Import]
) -> dict[str, object]:
    return {
        "packages": {
            package: {
                "layer": layers[package],
                "uses": {target: sorted(modules) for target, modules in sorted(graph[package].items())},
            }
            for package in sorted(layers, key=lambda p: (layers[p], p))
        },
        "contract_breaks": [{"file": f, "imports": m} for f, m in sorted(breaks)],
    }


#: The generated map stands between these lines in docs/architecture.md.
DOC_BEGIN: Final = "<!-- archmap:begin -->"
DOC_END: Final = "<!-- archmap:end -->"


def doc_block(text: str) -> str:
    return f"{DOC_BEGIN}\n```text\n{text}\n```\n{DOC_END}"


def map_in_doc(document: str) -> str | None:
    """The block between the markers, markers included; ``None`` if the document has none."""
    start, end = document.find(DOC_BEGIN), document.find(DOC_END)
    if start < 0 or end < start:
        return None
    return document[start : end + len(DOC_END)]


def with_map(document: str, text: str) -> str:
    """``document`` with its map block replaced by ``text``; ValueError if it has no markers."""
    current = map_in_doc(document)
    if current is None:
        raise ValueError(f"no {DOC_BEGIN} … {DOC_END} block")
    return document.replace(current, doc_block(text))
