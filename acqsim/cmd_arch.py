"""``acqsim arch [--json]``: the package map read from the source (layers, and what each package uses).

The text is the diagram docs/architecture.md shows (tests/test_layers.py keeps them equal); ``--json`` adds
the imports that break the layering today (the knots issue #16 lists). Exit 0: the map is a report, the
contract is held by the tests.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from acqkit.exitcodes import EXIT_OK, EXIT_USAGE
from acqsim.archmap import as_json, contract_breaks, discover_layers, package_graph, render, with_map


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print the map and the imports that break the layering as JSON"
    )
    parser.add_argument(
        "--update-doc",
        type=Path,
        metavar="FILE",
        help="write the map into FILE between its archmap markers (docs/architecture.md) instead of printing it",
    )


def run(args: argparse.Namespace) -> int:
    layers = discover_layers()
    graph = package_graph(layers)
    if args.update_doc is not None:
        try:
            args.update_doc.write_text(with_map(args.update_doc.read_text(encoding="utf-8"), render(layers, graph)))
        except ValueError as exc:
            print(f"acqsim arch: {args.update_doc}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print(f"map written to {args.update_doc}")
        return EXIT_OK
    if args.json:
        print(json.dumps(as_json(layers, graph, contract_breaks(layers)), indent=2))
    else:
        print(render(layers, graph))
    return EXIT_OK
