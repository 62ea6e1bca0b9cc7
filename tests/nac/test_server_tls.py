"""The NAC's upstream links with mutual TLS: a front-end with the right certificate serves, one whose
certificate names another service is never used."""

from __future__ import annotations

import functools
from pathlib import Path

import anyio
import pytest

from acqkit.netio import serve_tcp
from acqkit.tls import client_context, create_all, server_context
from nac.limits import NacLimits
from nac.server import NacPorts, NacServer
from tests.nac.helpers import request, table
from tests.nac.netkit import EchoFrontEnd, answer_body, round_trip, terminal, wait_until

pytestmark = pytest.mark.anyio

TERMINAL_TPDU = bytes.fromhex("6000000003")


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tls")
    create_all(directory)
    return directory


@pytest.mark.parametrize("presented", ["frontend", "ledger"])
async def test_upstream_links_verify_the_front_end_by_name(tls_dir: Path, presented: str) -> None:
    front_end = EchoFrontEnd("A")
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            functools.partial(
                serve_tcp, "127.0.0.1", 0, front_end.handle, name="fe", tls=server_context(tls_dir, presented)
            )
        )
        server = NacServer(table(port), NacLimits(backoff_max_s=0.1), upstream_tls=client_context(tls_dir, "nac"))
        ports: NacPorts = await tg.start(functools.partial(server.serve, "127.0.0.1", 0))
        member = f"127.0.0.1:{port}"
        if presented == "frontend":
            await wait_until(lambda: server.stats.members[member].up)
            conn = await terminal(ports.listen)
            assert await round_trip(conn, request(b"over tls")) == TERMINAL_TPDU + answer_body(
                request(b"over tls"), "A"
            )
            await conn.aclose()
        else:  # a server that is not a front-end is refused, again and again, and never carries a request
            await wait_until(lambda: server.stats.members[member].connect_failures >= 2)
            assert not server.stats.members[member].up
            assert front_end.seen_src == []
        tg.cancel_scope.cancel()
