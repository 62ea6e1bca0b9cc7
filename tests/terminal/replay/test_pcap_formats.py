"""pcap import reads what capture tools write: pcapng, Linux cooked (v1, v2), raw IP, IPv6 — files built here
with dpkt's writers, each holding POS frames split across TCP segments and a stray UDP packet."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dpkt
import pytest

from terminal.replay.pcap import PcapError, read_pcap
from wire.framing import frame

TERMINAL_PORT, HOST_PORT = 41234, 5800
PAYLOADS = [bytes([0x60, 0, 3, 0, 0]) + bytes(range(n, n + 30)) for n in range(4)]


def _ip(src_last: int, dst_last: int, tcp: dpkt.tcp.TCP, version: int) -> dpkt.Packet:
    if version == 4:
        return dpkt.ip.IP(src=bytes([10, 0, 0, src_last]), dst=bytes([10, 0, 0, dst_last]), p=6, data=tcp)
    six = dpkt.ip6.IP6(src=bytes(15) + bytes([src_last]), dst=bytes(15) + bytes([dst_last]), nxt=6, hlim=64)
    six.data = tcp
    six.plen = len(bytes(tcp))
    return six


def _segments(version: int) -> list[tuple[float, dpkt.Packet]]:
    """Each payload framed; a request's frame split into two TCP segments; answers in one."""
    out: list[tuple[float, dpkt.Packet]] = []
    seq = {True: 100, False: 900}
    for index, payload in enumerate(PAYLOADS):
        to_host = index % 2 == 0
        data = frame(payload)
        pieces = [data[:7], data[7:]] if to_host else [data]
        for piece in pieces:
            sport, dport = (TERMINAL_PORT, HOST_PORT) if to_host else (HOST_PORT, TERMINAL_PORT)
            tcp = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq[to_host], flags=dpkt.tcp.TH_ACK, data=piece)
            seq[to_host] += len(piece)
            out.append((1000.0 + len(out), _ip(1, 2, tcp, version) if to_host else _ip(2, 1, tcp, version)))
    udp = dpkt.udp.UDP(sport=53, dport=53, data=b"not ours")
    out.append((2000.0, dpkt.ip.IP(src=bytes([10, 0, 0, 9]), dst=bytes([10, 0, 0, 8]), p=17, data=udp)))
    return out


def _ethernet(ip: dpkt.Packet) -> bytes:
    kind = dpkt.ethernet.ETH_TYPE_IP6 if isinstance(ip, dpkt.ip6.IP6) else dpkt.ethernet.ETH_TYPE_IP
    return bytes(dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, type=kind, data=ip))


def _sll(ip: dpkt.Packet) -> bytes:
    kind = dpkt.ethernet.ETH_TYPE_IP6 if isinstance(ip, dpkt.ip6.IP6) else dpkt.ethernet.ETH_TYPE_IP
    return bytes(dpkt.sll.SLL(type=0, hrd=1, hlen=6, hdr=b"\x02" * 6 + b"\0\0", ethtype=kind, data=ip))


def _sll2(ip: dpkt.Packet) -> bytes:
    kind = dpkt.ethernet.ETH_TYPE_IP6 if isinstance(ip, dpkt.ip6.IP6) else dpkt.ethernet.ETH_TYPE_IP
    return bytes(dpkt.sll2.SLL2(ethtype=kind, ifindex=1, hrd=1, type=0, hlen=6, hdr=b"\x02" * 6 + b"\0\0", data=ip))


def _write(path: Path, *, pcapng: bool, linktype: int, wrap: Callable[[dpkt.Packet], bytes], version: int) -> None:
    with path.open("wb") as out:
        writer = dpkt.pcapng.Writer(out, linktype=linktype) if pcapng else dpkt.pcap.Writer(out, linktype=linktype)
        for when, ip in _segments(version):
            writer.writepkt(wrap(ip), ts=when)


@pytest.mark.parametrize(
    ("pcapng", "linktype", "wrap", "version"),
    [
        (True, dpkt.pcap.DLT_EN10MB, _ethernet, 4),
        (True, dpkt.pcap.DLT_EN10MB, _ethernet, 6),
        (False, dpkt.pcap.DLT_LINUX_SLL, _sll, 4),
        (True, dpkt.pcap.DLT_LINUX_SLL, _sll, 6),
        (False, 276, _sll2, 4),
        (False, 101, bytes, 4),
    ],
    ids=["pcapng-ethernet", "pcapng-ethernet-ipv6", "pcap-sll", "pcapng-sll-ipv6", "pcap-sll2", "pcap-raw-ip"],
)
def test_reads_frames_split_across_segments_from_each_format(
    tmp_path: Path, pcapng: bool, linktype: int, wrap: Callable[[dpkt.Packet], bytes], version: int
) -> None:
    path = tmp_path / "capture"
    _write(path, pcapng=pcapng, linktype=linktype, wrap=wrap, version=version)
    frames = list(read_pcap(path))
    assert [f.payload for f in frames] == PAYLOADS
    assert [f.to_host for f in frames] == [True, False, True, False]
    assert frames[0].time == pytest.approx(1001.0)  # a frame is read when its last segment arrives


def test_not_a_capture_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"this is no capture at all")
    with pytest.raises(PcapError, match="not a pcap or pcapng"):
        list(read_pcap(path))


def test_an_unknown_link_type_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bluetooth.pcap"
    with path.open("wb") as out:
        dpkt.pcap.Writer(out, linktype=187).writepkt(b"\x01\x02", ts=1.0)
    with pytest.raises(PcapError, match="link type 187"):
        list(read_pcap(path))
