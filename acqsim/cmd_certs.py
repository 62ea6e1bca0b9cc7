"""``acqsim certs create|show``: the local CA and service certificates for mutual TLS on every hop.

``create`` writes them to ``DATA_DIR/tls/`` (private keys mode 0600) and refuses to replace existing ones
without ``--force``; ``show`` lists each certificate's subject, issuer, names and expiry (never a key).
Turn TLS on with ``tls = true`` at the top of the configuration file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from acqkit.config import CONFIG_HELP, load_config
from acqkit.exitcodes import EXIT_OK, EXIT_USAGE
from acqkit.tls import certificate_facts, create_all, describe


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("create", "show"), help="create the TEST CA and certificates, or show them")
    parser.add_argument("--config", type=Path, help=CONFIG_HELP)
    parser.add_argument("--dir", type=Path, help="write/read here instead of DATA_DIR/tls")
    parser.add_argument("--force", action="store_true", help="create: replace existing certificates")
    parser.add_argument("--json", action="store_true", help="print the files written, or each certificate, as JSON")


def run(args: argparse.Namespace) -> int:
    directory: Path = args.dir or load_config(args.config).tls_dir
    if args.action == "create":
        try:
            written = create_all(directory, force=args.force)
        except FileExistsError as exc:
            print(f"acqsim certs: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if args.json:
            print(json.dumps({"directory": str(directory), "written": [path.name for path in written]}))
            return EXIT_OK
        print(f"TEST certificates (EC P-256, local CA) written to {directory}:")
        for path in written:
            print(f"  {path.name}")
        print("turn TLS on with `tls = true` in the configuration; restart running services")
        return 0
    if not directory.is_dir():
        print(f"acqsim certs: {directory} does not exist: run `acqsim certs create`", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps({"directory": str(directory), "certificates": certificate_facts(directory)}))
        return EXIT_OK
    for line in describe(directory):
        print(line)
    return 0
