"""free_port hands out ports a service can listen on, below the kernel's ephemeral range (where no outgoing
connection can take them first)."""

from __future__ import annotations

import socket

from acqkit.freeport import LOWEST_SERVICE_PORT, _ephemeral_low, free_port


def test_a_free_port_is_below_the_ephemeral_range_and_can_be_listened_on() -> None:
    low = _ephemeral_low()
    for host, family in (("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)):
        port = free_port(host)
        assert LOWEST_SERVICE_PORT <= port < low
        with socket.socket(family, socket.SOCK_STREAM) as listener:
            listener.bind((host, port))
            listener.listen()


def test_a_port_taken_is_not_handed_out() -> None:
    taken = []
    try:
        for _ in range(50):
            sock = socket.socket()
            sock.bind(("127.0.0.1", free_port()))
            sock.listen()
            taken.append(sock)
        ports = {sock.getsockname()[1] for sock in taken}
        assert len(ports) == 50 and free_port() not in ports
    finally:
        for sock in taken:
            sock.close()
