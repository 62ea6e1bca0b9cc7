"""Starting the services as separate processes, watching them, restarting the ones that die.

A service is ready when it says so: its ``READY <service> <host>:<port>`` line (``acqkit.runner.announce``),
read from its own output — never a probe of its port, which another stack holding that port would answer. A
first start that fails (port taken, bad setting) fails ``acqsim up`` with the service, its address and its
last words; a later death is restarted by the policy.

The decisions are plain: :func:`service_commands` says how each service is started for a configuration, and
:class:`RestartPolicy` says whether (and after what pause) a dead service is started again. The anyio shell
in :func:`supervise` carries them out.

Key custody: only the HSM is told where the LMK file is, and only the HSM's environment keeps
``ACQSIM_LMK_PASSPHRASE`` (every other service starts without it). Between the HSM and the front-end the key
ceremony (:mod:`acqsim.provision`) loads the configuration's TEST keys through the HSM into the key store,
from which the front-end reads its cryptograms.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import logging
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, Final

import anyio
import anyio.abc
import anyio.to_thread

from acqkit.config import AcqsimConfig, Endpoint
from acqkit.freeport import free_port
from acqkit.schemeconfig import SchemeIssuerConfig
from acqkit.serving import serving_for
from acqsim.provision import key_ceremony
from acqsim.scheme_parties import (
    AUDIT_FILE,
    ISSUER_CONFIG,
    ISSUER_LEDGER_DB,
    LMK_FILE,
    SWITCH_CONFIG,
    issuer_dir,
    provision_issuer,
    provision_switch,
    seed_issuer_ledger,
    switch_dir,
)
from hsm_sim.api import PASSPHRASE_ENV, passphrase_file_for
from hsm_sim.client import HsmClient
from scheme.client import ISSUER_TLS_NAME, SWITCH_TLS_NAME

log = logging.getLogger("acqsim.supervisor")

READY_TIMEOUT_S: Final = 20.0
#: What a service prints, on its own line, once it listens: ``READY <service> <host>:<port>``.
READY_PREFIX: Final = "READY "
#: Lines of a service's output kept to explain a failed start.
TAIL_LINES: Final = 8
STOP_TIMEOUT_S: Final = 5.0
#: The switch's HSM's process title (its own LMK; docs/scheme.md).
SCHEME_HSM: Final = "scheme-hsm"
RESTART_MIN_S: Final = 0.5
RESTART_MAX_S: Final = 10.0
#: A service that dies this many times within ``RESTART_WINDOW_S`` is given up on.
MAX_RESTARTS: Final = 5
RESTART_WINDOW_S: Final = 60.0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ServiceSpec:
    name: str
    argv: tuple[str, ...]
    endpoint: Endpoint
    #: Environment variables the service is started without (the LMK passphrase, for all but the HSM).
    withheld_env: frozenset[str] = frozenset({PASSPHRASE_ENV})
    #: Which of several processes of one service this is (``frontend-2`` in a pool); empty: the only one.
    label: str = ""
    #: Whether ``acqsim up``'s per-service options given by service name (``--rules``, ``--metrics``) apply: not
    #: to the scheme parties' HSMs and ledgers, which are other banks' (and would take the same metrics port).
    takes_service_options: bool = True

    @property
    def title(self) -> str:
        """The name in logs, messages and the log file: the label, else the service."""
        return self.label or self.name

    def environment(self) -> dict[str, str]:
        return {name: value for name, value in os.environ.items() if name not in self.withheld_env}


@dataclasses.dataclass(slots=True)
class RestartPolicy:
    """Exponential backoff between restarts; give up after ``MAX_RESTARTS`` deaths in the window."""

    deaths: list[float] = dataclasses.field(default_factory=list)

    def after_death(self, now: float) -> float | None:
        """Seconds to wait before restarting, or ``None`` to give up."""
        self.deaths = [t for t in self.deaths if now - t < RESTART_WINDOW_S] + [now]
        if len(self.deaths) > MAX_RESTARTS:
            return None
        pause: float = min(RESTART_MIN_S * 2.0 ** (len(self.deaths) - 1), RESTART_MAX_S)
        return pause


def with_ephemeral_ports(config: AcqsimConfig) -> AcqsimConfig:
    """The same configuration with every listening port replaced by a free one."""

    def moved(endpoint: Endpoint) -> Endpoint:
        return Endpoint(host=endpoint.host, port=free_port(endpoint.host))

    nac = dataclasses.replace(
        config.nac, listen=moved(config.nac.listen), status=moved(config.nac.status) if config.nac.status else None
    )
    frontend = config.frontend
    pool = tuple(moved(frontend.listen) for _ in range(frontend.instances - 1))
    scheme = config.scheme
    if scheme is not None:
        issuers = tuple(
            dataclasses.replace(i, listen=moved(i.listen), hsm=moved(i.hsm), ledger=moved(i.ledger))
            for i in scheme.issuers
        )
        scheme = dataclasses.replace(scheme, listen=moved(scheme.listen), hsm=moved(scheme.hsm), issuers=issuers)
    return dataclasses.replace(
        config,
        scheme=scheme,
        hsm=dataclasses.replace(config.hsm, listen=moved(config.hsm.listen)),
        ledger=dataclasses.replace(config.ledger, listen=moved(config.ledger.listen)),
        frontend=dataclasses.replace(frontend, listen=moved(frontend.listen), pool=pool),
        nac=nac,
        wallet=dataclasses.replace(config.wallet, listen=moved(config.wallet.listen)),
        merchant_platform=dataclasses.replace(config.merchant_platform, listen=moved(config.merchant_platform.listen)),
    )


def _listen(endpoint: Endpoint) -> tuple[str, ...]:
    return ("--host", endpoint.host, "--port", str(endpoint.port))


def _serving(config: AcqsimConfig, max_connections: int | None = None) -> tuple[str, ...]:
    tls = ("--tls-dir", str(config.tls_dir)) if config.tls else ()
    cap = ("--max-connections", str(max_connections)) if max_connections is not None else ()
    return (*tls, *cap)


def _frontend_specs(
    config: AcqsimConfig, python: tuple[str, ...], with_config: tuple[str, ...], traces: tuple[str, ...]
) -> list[ServiceSpec]:
    """One front-end, or a pool of ``instances``: each its own port, journal folder and RRN digit
    (``--instance K``); all on the same HSM, ledger, wallet host and merchant platform."""
    endpoints = config.frontend_endpoints()
    pooled = len(endpoints) > 1
    specs = []
    for number, endpoint in enumerate(endpoints, start=1):
        instance = number if pooled else None
        specs.append(
            ServiceSpec(
                name="frontend",
                label=f"frontend-{number}" if pooled else "",
                endpoint=endpoint,
                argv=(
                    *python,
                    "frontend",
                    *with_config,
                    *_listen(endpoint),
                    "--hsm",
                    str(config.hsm.listen),
                    "--ledger",
                    str(config.ledger.listen),
                    "--db",
                    config.frontend_db(instance),
                    "--key-store",
                    str(config.key_store_path),
                    "--wallet",
                    str(config.wallet.listen),
                    *(("--scheme", str(config.scheme.listen)) if config.scheme is not None else ()),
                    "--merchant-platform",  # started after the front-end: its notices wait in the journal
                    str(config.merchant_platform.listen),
                    *(("--instance", str(instance)) if instance is not None else ()),
                    *traces,
                    *_serving(config, config.frontend.max_connections),
                ),
            )
        )
    return specs


def service_commands(config: AcqsimConfig, config_file: Path | None, log_args: Sequence[str] = ()) -> list[ServiceSpec]:
    """How to start each service, in dependency order (HSM, ledger and wallet host, front-end, NAC, merchant
    platform). Under ``tls = true`` every one of them, the wallet host and the merchant platform included,
    serves mutual TLS and dials its peers with its own certificate. ``log_args``: the logging options of
    ``acqsim up`` (``-v``, ``--log-format=json``), given to every service."""
    python = (sys.executable, "-m", "acqsim", *log_args)
    with_config = ("--config", str(config_file)) if config_file else ()
    traces = ("--trace-dir", str(config.trace_dir)) if config.trace else ()
    routes = [f"--route={dst}=" + ",".join(str(e) for e in config.route_members(dst)) for dst in config.nac.routes]
    status = ("--status-port", str(config.nac.status.port)) if config.nac.status else ()
    hsm, ledger, wallet, platform = config.hsm, config.ledger, config.wallet, config.merchant_platform
    sticky = ("--sticky",) if config.frontend.instances > 1 else ()
    lmk_file = Path(config.store_path(hsm.lmk_file))
    return [
        *_scheme_specs(config, python, with_config),
        ServiceSpec(
            name="hsm",
            endpoint=hsm.listen,
            withheld_env=frozenset(),
            argv=(
                *_hsm_argv(python, hsm.listen, lmk_file, Path(config.store_path(hsm.audit))),
                *(("--allow-clear-import",) if hsm.allow_clear_import else ()),
                *(f"--allowed-client={name}:{','.join(cmds)}" for name, cmds in hsm.allowed_clients.items()),
                *traces,
                *_serving(config, hsm.max_connections),
            ),
        ),
        ServiceSpec(
            name="ledger",
            endpoint=ledger.listen,
            argv=(
                *python,
                "ledger",
                "serve",
                *with_config,
                "--db",
                config.store_path(ledger.db),
                *_listen(ledger.listen),
                *traces,
                *_serving(config, ledger.max_connections),
            ),
        ),
        ServiceSpec(
            name="wallet",
            endpoint=wallet.listen,
            argv=(
                *python,
                "wallet",
                "serve",
                *with_config,
                "--listen",
                str(wallet.listen),
                "--db",
                config.store_path(wallet.db),
                *_serving(config, wallet.max_connections),
            ),
        ),
        *_frontend_specs(config, python, with_config, traces),
        ServiceSpec(
            name="nac",
            endpoint=config.nac.listen,
            argv=(
                *python,
                "nac",
                *with_config,
                "--listen",
                str(config.nac.listen),
                *routes,
                *sticky,
                *status,
                *(("--trace", str(config.trace_dir / "nac.jsonl")) if config.trace else ()),
                *_serving(config, config.nac.max_connections),
            ),
        ),
        ServiceSpec(
            name="merchant",
            endpoint=platform.listen,
            argv=(
                *python,
                "merchant",
                "serve",
                *with_config,
                "--listen",
                str(platform.listen),
                "--db",
                config.store_path(platform.db),
                "--hsm",  # verifies the merchant link's request MACs ([merchant] authenticate)
                str(hsm.listen),
                "--key-store",
                str(config.key_store_path),
                *_serving(config, platform.max_connections),
            ),
        ),
    ]


def _hsm_argv(python: tuple[str, ...], endpoint: Endpoint, lmk_file: Path, audit: Path) -> tuple[str, ...]:
    """The HSM's command line every HSM shares: its address, its sealed LMK (made at first start) and its audit log."""
    return (
        *python,
        "hsm",
        *_listen(endpoint),
        "--lmk-file",
        str(lmk_file),
        "--create-lmk",
        "--passphrase-file",
        str(passphrase_file_for(lmk_file)),
        "--audit",
        str(audit),
    )


def _party_hsm(
    config: AcqsimConfig, python: tuple[str, ...], title: str, folder: Path, endpoint: Endpoint
) -> ServiceSpec:
    """A scheme party's own HSM: its own LMK in its folder, the party's TLS identity its only client."""
    lmk_file = folder / LMK_FILE
    identity = SWITCH_TLS_NAME if title == SCHEME_HSM else ISSUER_TLS_NAME
    return ServiceSpec(
        name="hsm",
        label=title,
        endpoint=endpoint,
        withheld_env=frozenset(),
        takes_service_options=False,
        argv=(
            *_hsm_argv(python, endpoint, lmk_file, folder / AUDIT_FILE),
            "--allow-clear-import",  # the [scheme] zone keys are clear TEST material, formed by A4
            f"--allowed-client={identity}:",
            *_party_trace(config, title),
            *_serving(config),
        ),
    )


def _party_trace(config: AcqsimConfig, title: str) -> tuple[str, ...]:
    """Each scheme party's process traces into a file of its own (``issuer-bank-b-hsm.jsonl``)."""
    return ("--trace-dir", str(config.trace_dir / f"{title}.jsonl")) if config.trace else ()


def _scheme_specs(config: AcqsimConfig, python: tuple[str, ...], with_config: tuple[str, ...]) -> list[ServiceSpec]:
    """With ``[scheme]``: each issuer's HSM, ledger and host, then the switch's HSM and the switch — all before
    the acquirer's front-end, which sends off-us cards to the switch. Their configuration files are written by
    the key ceremonies (:mod:`acqsim.scheme_parties`) run right after each party's HSM is up."""
    scheme = config.scheme
    if scheme is None:
        return []
    specs = []
    for issuer in scheme.issuers:
        folder = issuer_dir(config, issuer)
        specs.append(_party_hsm(config, python, f"{issuer.title}-hsm", folder, issuer.hsm))
        specs.append(
            ServiceSpec(
                name="ledger",
                label=f"{issuer.title}-ledger",
                endpoint=issuer.ledger,
                takes_service_options=False,
                argv=(
                    *python,
                    "ledger",
                    "serve",
                    "--no-seed",  # seeded with its own cards by the ceremony hook
                    "--db",
                    str(folder / ISSUER_LEDGER_DB),
                    *_listen(issuer.ledger),
                    *_party_trace(config, f"{issuer.title}-ledger"),
                    *_serving(config),
                ),
            )
        )
        specs.append(
            ServiceSpec(
                name="issuer",
                label=issuer.title,
                endpoint=issuer.listen,
                argv=(
                    *python,
                    "issuer",
                    "serve",
                    "--config",
                    str(folder / ISSUER_CONFIG),
                    *_party_trace(config, issuer.title),
                    *_serving(config),
                ),
            )
        )
    folder = switch_dir(config)
    specs.append(_party_hsm(config, python, SCHEME_HSM, folder, scheme.hsm))
    specs.append(
        ServiceSpec(
            name="scheme",
            endpoint=scheme.listen,
            argv=(
                *python,
                "scheme",
                "serve",
                "--config",
                str(folder / SWITCH_CONFIG),
                *(("--trace-dir", str(config.trace_dir)) if config.trace else ()),
                *_serving(config),
            ),
        )
    )
    return specs


class StartupFailed(RuntimeError):
    """A service did not announce itself ready on its first start: it exited (a port already taken, a bad
    setting, a peer missing) or stayed silent. ``reason`` is the end of what it printed."""

    def __init__(self, spec: ServiceSpec, reason: str) -> None:
        super().__init__(f"{spec.title} did not start on {spec.endpoint}: {reason}")
        self.spec = spec
        self.reason = reason


async def _pump(process: anyio.abc.Process, output: BinaryIO, spec: ServiceSpec, seen: _Seen) -> None:
    """Copy the service's output to its log, watching for its READY line (``acqkit.runner.announce``)."""
    assert process.stdout is not None
    pending = b""
    async for chunk in process.stdout:
        output.write(chunk)
        output.flush()
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip()
            seen.tail.append(line)
            if line.startswith(f"{READY_PREFIX}{spec.name} "):
                seen.address = line.rsplit(" ", 1)[1]
                seen.ready.set()


@dataclasses.dataclass
class _Seen:
    ready: anyio.Event = dataclasses.field(default_factory=anyio.Event)
    address: str = ""
    tail: collections.deque[str] = dataclasses.field(default_factory=lambda: collections.deque(maxlen=TAIL_LINES))


async def _until_ready_or_exit(process: anyio.abc.Process, seen: _Seen) -> None:
    """Return once the service announced READY or exited, or after ``READY_TIMEOUT_S``."""
    with anyio.move_on_after(READY_TIMEOUT_S):
        async with anyio.create_task_group() as race:

            async def announced() -> None:
                await seen.ready.wait()
                race.cancel_scope.cancel()

            async def exited() -> None:
                await process.wait()
                race.cancel_scope.cancel()

            race.start_soon(announced)
            race.start_soon(exited)


async def _stop(process: anyio.abc.Process) -> None:
    with anyio.CancelScope(shield=True):
        if process.returncode is None:
            process.terminate()
            with anyio.move_on_after(STOP_TIMEOUT_S):
                await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()


async def run_service(
    spec: ServiceSpec,
    log_dir: Path,
    ready: Callable[[ServiceSpec], None],
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Start ``spec``, report it ready, and restart it whenever it dies (until the policy gives up)."""
    policy = RestartPolicy()
    started = False
    await anyio.Path(log_dir).mkdir(parents=True, exist_ok=True)
    while True:
        with (log_dir / f"{spec.title}.log").open("ab") as output:
            process = await anyio.open_process(
                list(spec.argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=spec.environment()
            )
            try:
                async with anyio.create_task_group() as pumping:
                    seen = _Seen()
                    pumping.start_soon(_pump, process, output, spec, seen)
                    await _until_ready_or_exit(process, seen)
                    if not seen.ready.is_set() or seen.address != str(spec.endpoint):
                        why = (
                            f"it announced {seen.address}"
                            if seen.ready.is_set()
                            else "it exited"
                            if process.returncode is not None
                            else "it never announced READY"
                        )
                        if not started:  # a first start that fails fails `acqsim up`, with the reason
                            raise StartupFailed(spec, f"{why}; its last words: " + " | ".join(seen.tail))
                        log.warning("%s did not come back ready (%s)", spec.title, why)
                    else:
                        ready(spec)
                        if not started:
                            started = True
                            task_status.started()
                    code = await process.wait()
            finally:
                await _stop(process)
        pause = policy.after_death(anyio.current_time())
        log.warning("%s exited with code %s", spec.title, code)
        print(
            f"service {spec.title} died (exit code {code}); "
            + (f"restarting in {pause:.1f} s" if pause is not None else "giving up"),
            flush=True,
        )
        if pause is None:
            raise RuntimeError(f"{spec.title} keeps dying; see {log_dir / (spec.title + '.log')}")
        await anyio.sleep(pause)


async def supervise(
    config: AcqsimConfig,
    config_file: Path | None,
    ready: Callable[[ServiceSpec], None],
    *,
    extra_args: Mapping[str, Sequence[str]] | None = None,
    log_args: Sequence[str] = (),
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Start every service in order, each after the ones it depends on are listening, with the key ceremony
    right after the HSM; run until cancelled. A failed ceremony raises ``CeremonyError``. ``extra_args``: more
    arguments for a service's command line, by title (``frontend-2``) or else service name (``acqsim up --rules``,
    ``--metrics``); ``log_args`` the logging options every service gets (``-v``, ``--log-format=json``)."""
    extra = extra_args or {}
    ceremonies = _ceremonies(config)
    async with anyio.create_task_group() as tg:
        for spec in service_commands(config, config_file, log_args):
            by_name = extra.get(spec.name, ()) if spec.takes_service_options else ()
            more = tuple(extra.get(spec.title, by_name))
            started = dataclasses.replace(spec, argv=(*spec.argv, *more)) if more else spec
            await tg.start(run_service, started, config.log_dir, ready)
            ceremony = ceremonies.get(spec.title)
            if ceremony is not None:
                await ceremony()
        task_status.started()


def _ceremonies(config: AcqsimConfig) -> dict[str, Callable[[], Awaitable[object]]]:
    """Process title → the key ceremony to run once that HSM is up (and before the services that need its keys):
    the acquirer's, each issuer's (which also writes its host's and ledger's files), the switch's."""
    ceremonies: dict[str, Callable[[], Awaitable[object]]] = {"hsm": functools.partial(provision_keys, config)}
    if config.scheme is not None:
        for issuer in config.scheme.issuers:

            async def issuer_ready(issuer: SchemeIssuerConfig = issuer) -> None:
                await anyio.to_thread.run_sync(seed_issuer_ledger, config, issuer)
                await provision_issuer(config, issuer)

            ceremonies[f"{issuer.title}-hsm"] = issuer_ready
        ceremonies[SCHEME_HSM] = functools.partial(provision_switch, config)
    return ceremonies


async def provision_keys(config: AcqsimConfig) -> None:
    """The key ceremony against the configured HSM, as the front-end (its TLS identity when ``tls = true``)."""
    tls = serving_for("frontend", tls_dir=None, max_connections=None, config=config).client_tls
    async with await HsmClient.connect(config.hsm.listen.host, config.hsm.listen.port, tls=tls) as hsm:
        await key_ceremony(config, hsm)
