"""Experiment (issue 17): a mypyc-compiled copy of the hot pure modules, built OUTSIDE the source tree.

``python -m bench.mypyc_build --out /tmp/acqsim-mypyc`` copies the working tree (every tracked or untracked,
not ignored file) into ``--out``, compiles the modules of ``--modules`` there with mypyc (C extensions beside
the copied ``.py`` files: the import system prefers the extension) and writes ``MANIFEST.json`` (module,
source SHA-256) so a reader can tell which compiled module no longer matches the source. Nothing is written
beside the real ``.py`` files: a stale binary there would silently shadow edited source.

Run a benchmark on the compiled copy from inside it (``python -m`` puts the working folder first on the path)::

    cd /tmp/acqsim-mypyc && PYTHONPATH=$PWD /work/.../.venv/bin/python -m bench.bench_e2e --keep-alive-only

``--modules`` takes ``.py`` paths relative to the tree (globs allowed); the default is :data:`HOT_MODULES`.
A build of the default set takes about 2 minutes on 2 shared cores (C compile at ``-O3``: mypyc's default).
The measured verdict (no gain worth its cost) and the modules mypyc refuses: docs/benchmarks.md, "Compiling the
hot modules with mypyc".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

from bench.compare import _run, compare_table

REPO: Final = Path(__file__).resolve().parent.parent

#: The modules the profiles name as hot (front-end core and flows, codec, crypto helpers, HSM, ledger engine).
HOT_MODULES: Final = (
    "wire/fastcodec.py",
    "wire/fields.py",
    "wire/paycrypto.py",
    "frontend/core.py",
    "frontend/flows/*.py",
    "frontend/effects.py",
    "hsm_sim/processor.py",
    "hsm_sim/commands/*.py",
    "core_ledger/engine.py",
)


def source_files(repo: Path) -> list[Path]:
    """Every file git would see in the working tree (tracked, or untracked and not ignored)."""
    listed = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        capture_output=True,
        check=True,
    ).stdout
    return [repo / name for name in listed.decode().split("\0") if name and (repo / name).is_file()]


def copy_tree(repo: Path, out: Path) -> None:
    for source in source_files(repo):
        target = out / source.relative_to(repo)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def expand(out: Path, patterns: list[str]) -> list[str]:
    found: list[str] = []
    for pattern in patterns:
        matches = sorted(str(p.relative_to(out)) for p in out.glob(pattern) if p.suffix == ".py")
        if not matches:
            raise SystemExit(f"no module matches {pattern!r}")
        found.extend(m for m in matches if m not in found)
    return found


def module_name(path: str) -> str:
    parts = Path(path).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def build(out: Path, modules: list[str], opt_level: str, *, multi_file: bool) -> float:
    """Compile ``modules`` in ``out`` with mypyc; return the seconds it took."""
    script = (
        "import sys\n"
        "from setuptools import setup\n"
        "from mypyc.build import mypycify\n"
        f"modules = mypycify({modules!r}, opt_level={opt_level!r}, multi_file={multi_file!r})\n"
        "setup(name='acqsim_mypyc', ext_modules=modules,\n"
        "      script_args=['build_ext', '--inplace', '--parallel', '2'])\n"
    )
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", script], cwd=out, check=True)
    return time.monotonic() - started


def write_manifest(out: Path, modules: list[str]) -> None:
    manifest = {module_name(path): hashlib.sha256((out / path).read_bytes()).hexdigest() for path in sorted(modules)}
    (out / "MANIFEST.json").write_text(json.dumps({"modules": manifest}, indent=1) + "\n")


def compare_builds(builds: list[Path], *, rounds: int, bench_args: list[str]) -> int:
    """``bench_e2e`` on the pure tree and on each build, alternately (the order turns each round so a drift
    of the shared machine's load weighs on all alike); print a table per build against the pure tree."""
    sides = {"pure": REPO, **{str(build): build for build in builds}}
    runs: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    failed = False
    for round_index in range(rounds):
        order = list(sides) if round_index % 2 == 0 else list(reversed(sides))
        for side in order:
            figures, code, seconds = _run("bench_e2e", bench_args, [sides[side]])
            failed |= code != 0
            if figures:
                runs[side].append(figures)
            print(f"round {round_index + 1}/{rounds} {side}: exit {code}, {seconds:.0f} s", flush=True)
    for build in builds:
        table = {f"bench_e2e: pure (old) vs {build} (new)": {"old": runs["pure"], "new": runs[str(build)]}}
        print("\n".join(compare_table(table)))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, help="build folder (outside the source tree; replaced)")
    parser.add_argument("--compare", type=Path, nargs="+", help="no build: run bench_e2e on the tree and these builds")
    parser.add_argument("--rounds", type=int, default=3, help="with --compare: runs per side")
    parser.add_argument("--args", default="--keep-alive-only --seconds 8", help="with --compare: bench_e2e arguments")
    parser.add_argument("--modules", nargs="+", default=list(HOT_MODULES), help="module paths or globs to compile")
    parser.add_argument(
        "--multi-file", action="store_true", help="a C file per module (the compile runs on 2 cores, not 1)"
    )
    parser.add_argument("--opt-level", default="3", help="C optimisation level passed to mypyc (0-3)")
    args = parser.parse_args(argv)
    if args.compare:
        return compare_builds([b.resolve() for b in args.compare], rounds=args.rounds, bench_args=args.args.split())
    if args.out is None:
        parser.error("--out or --compare is needed")
    out: Path = args.out.resolve()
    if out == REPO or REPO in out.parents:
        parser.error(f"--out must be outside the source tree {REPO}")
    if out.exists():
        shutil.rmtree(out)
    copy_tree(REPO, out)
    modules = expand(out, args.modules)
    os.environ.setdefault("MYPYC_OPT_LEVEL", args.opt_level)
    seconds = build(out, modules, args.opt_level, multi_file=args.multi_file)
    write_manifest(out, modules)
    print(f"compiled {len(modules)} modules into {out} in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
