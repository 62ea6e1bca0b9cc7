"""``acqsim wireshark install [--dir DIR]``: copy acqsim's Lua dissector into Wireshark's personal plugins folder;
``acqsim wireshark generate [--check]``: write the shipped dissector again from the ``wire/`` specs;
``acqsim wireshark path``: where the shipped dissector is.

The dissector decodes the POS link (TCP ports 5800 and 5803: length, TPDU, header, ISO 8583 body with field
names, MTI, processing-code and response-code meanings) and the host link (port 5810); any other port through
Wireshark's "Decode As…". Loaded for one run without installing: ``tshark -X lua_script:$(acqsim wireshark path)``.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import resources
from pathlib import Path

from acqkit.exitcodes import EXIT_DECLINED, EXIT_OK, EXIT_USAGE
from acqsim.wireshark.generate import PLUGIN_NAME, generate, shipped


def personal_plugin_dir() -> Path:
    """Wireshark's personal Lua plugins folder (``tshark -G folders`` names it "Personal Lua Plugins")."""
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "Wireshark" / "plugins"
    return Path.home() / ".local" / "lib" / "wireshark" / "plugins"


def shipped_path() -> Path:
    return Path(str(resources.files("acqsim.wireshark").joinpath(PLUGIN_NAME)))


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=("install", "generate", "path"),
        help="install the dissector, regenerate it from wire/ (--check: only compare), or print where it is",
    )
    parser.add_argument("--dir", type=Path, help=f"install: the plugins folder (default {personal_plugin_dir()})")
    parser.add_argument("--check", action="store_true", help="generate: exit 1 if the shipped file is out of date")


def run(args: argparse.Namespace) -> int:
    if args.action == "path":
        print(shipped_path())
        return EXIT_OK
    if args.action == "generate":
        current = generate()
        if args.check:
            if current != shipped():
                print(f"{shipped_path()} is out of date: run `acqsim wireshark generate`", file=sys.stderr)
                return EXIT_DECLINED
            print(f"{shipped_path()} is current")
            return EXIT_OK
        shipped_path().write_text(current, encoding="utf-8")
        print(f"wrote {shipped_path()}")
        return EXIT_OK
    target_dir = args.dir or personal_plugin_dir()
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
        (target_dir / PLUGIN_NAME).write_text(shipped(), encoding="utf-8")
    except OSError as exc:
        print(f"acqsim wireshark install: cannot write to {target_dir}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    print(f"installed {target_dir / PLUGIN_NAME}; restart Wireshark (Analyze › Reload Lua Plugins) to load it")
    return EXIT_OK
