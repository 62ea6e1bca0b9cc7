"""Running ``acqsim up`` as a child process from a synchronous caller (the demo's process mode, benchmarks)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from acqkit.config import AcqsimConfig, Endpoint, config_to_toml
from terminal.load.runner import with_load_terminals

STARTUP_TIMEOUT_S: Final = 60.0
STOP_TIMEOUT_S: Final = 30.0


class StartupError(RuntimeError):
    """``acqsim up`` did not report all services up in time; ``output`` is what it printed."""

    def __init__(self, output: str) -> None:
        super().__init__("the services did not start:\n" + output)
        self.output = output


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RunningServices:
    """Where ``acqsim up`` said its services listen (its ``<name> listening on HOST:PORT`` lines)."""

    nac: Endpoint
    wallet: Endpoint
    merchant_platform: Endpoint


@contextlib.contextmanager
def running_processes(
    *, config_file: Path | None = None, data_dir: Path | None = None, up_args: Sequence[str] = ()
) -> Iterator[Endpoint]:
    """Start the services on free ports as separate processes; yield the NAC; stop them all on exit.
    ``up_args``: more options for ``acqsim up`` (``--rules FILE``)."""
    with running_services(config_file=config_file, data_dir=data_dir, up_args=up_args) as services:
        yield services.nac


@contextlib.contextmanager
def running_services(
    *, config_file: Path | None = None, data_dir: Path | None = None, up_args: Sequence[str] = ()
) -> Iterator[RunningServices]:
    """Start the services on free ports as separate processes; yield where the terminal-facing ones listen
    (NAC, wallet host, merchant platform); stop them all on exit."""
    argv = [sys.executable, "-m", "acqsim", "up", "--ephemeral-ports", *up_args]
    if config_file is not None:
        argv += ["--config", str(config_file)]
    if data_dir is not None:
        argv += ["--data-dir", str(data_dir)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    ) as process:
        assert process.stdout is not None
        lines: list[str] = []
        listening: dict[str, Endpoint] = {}
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            words = line.split()
            if len(words) == 4 and words[1:3] == ["listening", "on"]:
                listening[words[0]] = Endpoint.parse(words[3])
            if "all services up" in line or not line:
                break
        try:
            if not {"nac", "wallet", "merchant"} <= listening.keys() or not any("all services up" in x for x in lines):
                raise StartupError("".join(lines))
            yield RunningServices(
                nac=listening["nac"], wallet=listening["wallet"], merchant_platform=listening["merchant"]
            )
        finally:
            process.terminate()
            process.wait(timeout=STOP_TIMEOUT_S)


@contextlib.contextmanager
def pipeline_processes(
    config: AcqsimConfig, terminals: int, folder: Path, *, frontends: int = 1, trace: bool = False
) -> Iterator[Endpoint]:
    """The four services as separate processes (``acqsim up`` on free ports, traces off unless ``trace``: then
    in ``folder/data/traces``) over fresh stores in ``folder``, configured with ``terminals`` load terminals and
    a pool of ``frontends`` front-ends; yields the NAC. Raises :class:`StartupError`."""
    services = dataclasses.replace(with_load_terminals(config, terminals), data_dir=folder / "data", trace=trace)
    services = dataclasses.replace(services, frontend=dataclasses.replace(services.frontend, instances=frontends))
    path = folder / "load.toml"
    path.write_text(config_to_toml(services), encoding="utf-8")
    with running_processes(config_file=path) as nac:
        yield nac
