"""Before and after in one session: ``python -m bench --compare REV`` (``make bench-compare BASE=REV``).

REV is checked out into a temporary git worktree (detached, removed afterwards). The chosen benchmarks then run
``--rounds`` times for each side, old and new alternately — old, new, then new, old, and so on, so a drift of
the shared machine's load weighs on both sides alike — each run a process of its own as ``make bench`` runs
them. Both sides use this tree's virtual environment: the old side runs with ``PYTHONPATH`` set to the old
tree, so its code (and the services its benchmarks start, which inherit the variable) is REV's. With
``--harness current`` (the default) both sides run *this* tree's benchmark code (``bench/`` laid over the
old tree), so the same measurement is held against both; ``--harness own`` runs each tree's own benchmarks
(for a REV whose API this tree's benchmarks do not find). Dependencies are this tree's: a REV that needs other
packages is not comparable this way.

Prints, and writes to ``bench/results/compare.md`` and ``compare.json``, a table per benchmark: each numeric
figure's median, min and max over the runs of each side, and new/old of the medians.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from bench.report import parse

HARNESSES: Final = ("current", "own")
TIME_LIMIT_S: Final = 300
BENCH_DIR: Final = Path(__file__).resolve().parent
REPO: Final = BENCH_DIR.parent
RESULTS: Final = BENCH_DIR / "results"


class CompareError(Exception):
    """The comparison cannot run (an unknown revision, git refusing a worktree)."""


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CompareError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


@contextlib.contextmanager
def old_tree(rev: str) -> Iterator[tuple[str, Path]]:
    """REV's full commit hash and a temporary detached worktree of it, removed on the way out."""
    commit = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
    folder = Path(tempfile.mkdtemp(prefix="acqsim-compare-"))
    tree = folder / "old"
    _git("worktree", "add", "--detach", str(tree), commit)
    try:
        yield commit, tree
    finally:
        with contextlib.suppress(CompareError):
            _git("worktree", "remove", "--force", str(tree))
        shutil.rmtree(folder, ignore_errors=True)


def _overlay(tree: Path) -> Path:
    """A folder holding only a link to this tree's ``bench/``: first on the path, it makes the old side run
    this tree's benchmarks over the old tree's code."""
    overlay = tree.parent / "harness"
    overlay.mkdir(exist_ok=True)
    link = overlay / "bench"
    if not link.exists():
        link.symlink_to(BENCH_DIR, target_is_directory=True)
    return overlay


def _code_from(path: list[Path]) -> str:
    """Where a side's ``terminal`` package and ``bench`` package are imported from (printed, to be sure)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in path))
    probe = "import bench, terminal; print(terminal.__path__[0], '| bench:', bench.__path__[0])"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, cwd=path[0], env=env
    )
    return (done.stdout or done.stderr).strip()


def _run(name: str, bench_args: list[str], path: list[Path]) -> tuple[dict[str, float], int, float]:
    """One run of ``bench.<name>`` with ``path`` first on ``PYTHONPATH`` (and the first as working folder):
    its numeric figures, exit code and seconds."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in path))
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", f"bench.{name}", *bench_args],
            capture_output=True,
            text=True,
            timeout=TIME_LIMIT_S,
            check=False,
            cwd=path[0],
            env=env,
        )
        output, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired:
        output, code = "", -1
    if code != 0:
        print(output[-2000:], file=sys.stderr)
    figures = {k: float(v) for k, v in parse(output).items() if isinstance(v, int | float) and not isinstance(v, bool)}
    return figures, code, time.perf_counter() - start


def _summary(values: list[float]) -> tuple[float, float, float] | None:
    return (statistics.median(values), min(values), max(values)) if values else None


def _show(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"


def compare_table(runs: dict[str, dict[str, list[dict[str, float]]]]) -> list[str]:
    """Markdown: per benchmark, each figure both sides measured — median (min–max) of old and of new, new/old."""
    lines: list[str] = []
    for name, sides in runs.items():
        lines += [f"### {name}", "", "| figure | old median (min–max) | new median (min–max) | new / old |"]
        lines.append("|---|---:|---:|---:|")
        old_keys = {key for run in sides["old"] for key in run}
        for key in dict.fromkeys(key for run in sides["new"] for key in run if key in old_keys):
            old = _summary([run[key] for run in sides["old"] if key in run])
            new = _summary([run[key] for run in sides["new"] if key in run])
            if old is None or new is None:
                continue
            ratio = f"{new[0] / old[0]:.2f}" if old[0] else "—"
            lines.append(
                f"| {key} | {_show(old[0])} ({_show(old[1])}–{_show(old[2])}) | "
                f"{_show(new[0])} ({_show(new[1])}–{_show(new[2])}) | {ratio} |"
            )
        lines.append("")
    return lines


def compare(rev: str, names: list[str], *, rounds: int, bench_args: list[str], harness: str = "current") -> int:
    """Run ``names`` old/new alternately ``rounds`` times each; print and write the table. 1 if any run failed."""
    if rounds < 1 or harness not in HARNESSES:
        raise CompareError("at least one round, and a known harness")
    new_commit = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    runs: dict[str, dict[str, list[dict[str, float]]]] = {name: {"old": [], "new": []} for name in names}
    failed = False
    with old_tree(rev) as (old_commit, tree):
        paths = {"old": [_overlay(tree), tree] if harness == "current" else [tree], "new": [REPO]}
        for side, path in paths.items():
            print(f"{side} code: {_code_from(path)}", flush=True)
        for round_index in range(rounds):
            order = ("old", "new") if round_index % 2 == 0 else ("new", "old")
            for name in names:
                for side in order:
                    figures, code, seconds = _run(name, bench_args, paths[side])
                    failed |= code != 0
                    if figures:
                        runs[name][side].append(figures)
                    print(f"round {round_index + 1}/{rounds} {name} {side}: exit {code}, {seconds:.0f} s", flush=True)
    title = (
        f"## Before/after — {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}: old {old_commit[:10]}, "
        f"new {new_commit[:10]}{' + uncommitted changes' if dirty else ''}; {rounds} round(s) each side, "
        f"alternating; harness {harness}; {os.cpu_count()} cores"
    )
    lines = [title, "", *compare_table(runs)]
    print("\n".join(lines))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compare.md").write_text("\n".join(lines), encoding="utf-8")
    record = {"old": old_commit, "new": new_commit, "dirty": dirty, "rounds": rounds, "harness": harness, "runs": runs}
    (RESULTS / "compare.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    return 1 if failed else 0
