"""Where the time goes: CPU seconds each process of a run used, read from ``/proc`` (Linux only).

A service is named by its ``acqsim`` subcommand (``hsm``, ``ledger``, ``frontend``, ``nac``); ``load`` is
the benchmark's own process, which drives the terminals. Elsewhere than Linux the figures are left out.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

PROC = Path("/proc")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user+system CPU seconds) of a process, or None if it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()  # the command name may hold spaces: skip past it
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far, or ``None`` (gone, or not Linux)."""
    stat = _stat(pid)
    return None if stat is None else stat[1]


def own_cpu_s() -> float:
    """User + system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _service_name(pid: int) -> str | None:
    try:
        argv = (PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    if len(argv) > 3 and argv[1:3] == [b"-m", b"acqsim"]:
        return argv[3].decode()
    return None


def cpu_by_service() -> dict[str, float]:
    """CPU seconds so far of this process (``load``) and of every acqsim service it started, by name."""
    totals = {"load": own_cpu_s()}
    if not PROC.is_dir():
        return totals
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents[int(entry.name)], cpu[int(entry.name)] = stat
    mine = {os.getpid()}
    changed = True
    while changed:  # the descendants of this process: acqsim up, and the services it started
        grown = mine | {pid for pid, parent in parents.items() if parent in mine}
        changed, mine = grown != mine, grown
    for pid in mine - {os.getpid()}:
        name = _service_name(pid)
        if name is not None and name != "up":
            totals[name] = totals.get(name, 0.0) + cpu[pid]
    return totals


def cpu_per_item(before: dict[str, float], after: dict[str, float], items: int) -> dict[str, float]:
    """Microseconds of CPU per item, by process, for the processes seen both times."""
    if items == 0:
        return {}
    return {name: (after[name] - before[name]) * 1e6 / items for name in after if name in before}
