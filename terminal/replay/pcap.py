"""Classic libpcap files of the POS link: write frames as a capture Wireshark opens, read frames back.

Writing synthesises Ethernet/IPv4/TCP packets (terminal 10.0.0.1:40000 ↔ host 10.0.0.2:5800 — addresses
inside the capture file only, nothing is sent) with consistent sequence numbers, one TCP segment per frame.
Reading (with dpkt) takes classic pcap or pcapng, Ethernet, Linux cooked (v1 and v2) or raw IP, IPv4 or IPv6,
reassembles each direction's TCP byte stream in sequence order and cuts it into frames with
:class:`wire.framing.LengthPrefixFramer`.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Final

import dpkt

from wire.errors import WireError
from wire.framing import LengthPrefixFramer, frame

MAGIC: Final = 0xA1B2C3D4
LINKTYPE_ETHERNET: Final = 1
LINKTYPE_LINUX_SLL: Final = 113
LINKTYPE_LINUX_SLL2: Final = 276
#: DLT_RAW is 12 on most systems and 14 on some BSDs; LINKTYPE_RAW (101) is what files carry.
LINKTYPES_RAW_IP: Final = frozenset({12, 14, 101})
PCAPNG_MAGIC: Final = bytes.fromhex("0A0D0D0A")
SNAPLEN: Final = 65535
TERMINAL_IP: Final = bytes([10, 0, 0, 1])
HOST_IP: Final = bytes([10, 0, 0, 2])
TERMINAL_PORT: Final = 40000
HOST_PORT: Final = 5800


class PcapError(WireError):
    """The capture is not a readable pcap or pcapng file of TCP traffic."""


@dataclasses.dataclass(frozen=True, slots=True)
class CapturedFrame:
    time: float
    to_host: bool  # True: terminal → host
    payload: bytes  # the frame without its length prefix


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    result: int = ~total & 0xFFFF
    return result


def _packet(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, data: bytes) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, 0x18, 65535, 0, 0) + data
    ip_header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, src, dst)
    ip_header = ip_header[:10] + struct.pack("!H", _checksum(ip_header)) + ip_header[12:]
    ethernet = bytes.fromhex("0200000000020200000000010800")
    return ethernet + ip_header + tcp


def write_pcap(frames: Iterable[CapturedFrame], path: Path) -> int:
    """Write ``frames`` (payloads without length prefix) as one TCP conversation. Returns the count."""
    seq = {True: 1000, False: 5000}
    count = 0
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", MAGIC, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET))
        for item in frames:
            data = frame(item.payload)
            if item.to_host:
                packet = _packet(TERMINAL_IP, HOST_IP, TERMINAL_PORT, HOST_PORT, seq[True], seq[False], data)
            else:
                packet = _packet(HOST_IP, TERMINAL_IP, HOST_PORT, TERMINAL_PORT, seq[False], seq[True], data)
            seq[item.to_host] += len(data)
            seconds = int(item.time)
            out.write(struct.pack("<IIII", seconds, int((item.time - seconds) * 1e6), len(packet), len(packet)))
            out.write(packet)
            count += 1
    return count


Flow = tuple[bytes, int, bytes, int]  # source address, source port, destination address, destination port


def _open_capture(file: BinaryIO) -> Any:
    """dpkt's reader for a classic pcap (either byte order, micro- or nanosecond) or a pcapng file."""
    head = file.read(4)
    file.seek(0)
    try:
        if head == PCAPNG_MAGIC:
            return dpkt.pcapng.Reader(file)
        return dpkt.pcap.Reader(file)
    except (ValueError, dpkt.UnpackError) as exc:
        raise PcapError(f"not a pcap or pcapng capture ({exc})", offset=0) from None


def _network_layer(link: int, packet: bytes) -> Any:
    """The IPv4/IPv6 packet inside one captured link-layer frame, or ``None`` for anything else."""
    if link == LINKTYPE_ETHERNET:
        return dpkt.ethernet.Ethernet(packet).data
    if link == LINKTYPE_LINUX_SLL:
        return dpkt.sll.SLL(packet).data
    if link == LINKTYPE_LINUX_SLL2:
        return dpkt.sll2.SLL2(packet).data
    if link in LINKTYPES_RAW_IP:
        version = packet[0] >> 4 if packet else 0
        return dpkt.ip.IP(packet) if version == 4 else dpkt.ip6.IP6(packet) if version == 6 else None
    raise PcapError(f"unsupported link type {link} (Ethernet, Linux cooked v1/v2 and raw IP are read)")


def _tcp_segment(link: int, packet: bytes) -> tuple[Flow, int, bytes, bool] | None:
    """(flow, sequence number, data, whether it opens a connection: SYN without ACK) of a TCP packet."""
    ip = _network_layer(link, packet)
    if not isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6) or not isinstance(ip.data, dpkt.tcp.TCP):
        return None
    tcp = ip.data
    opening = bool(tcp.flags & dpkt.tcp.TH_SYN) and not tcp.flags & dpkt.tcp.TH_ACK
    return (bytes(ip.src), tcp.sport, bytes(ip.dst), tcp.dport), tcp.seq, bytes(tcp.data), opening


def read_pcap(path: Path, *, host_port: int | None = None) -> Iterator[CapturedFrame]:
    """The POS frames in a capture (pcap or pcapng; Ethernet, Linux cooked or raw IP), in time order.
    ``host_port`` says which side is the host; by default the side a connection was opened to (its SYN), and
    for a connection whose opening was not captured, the side with the lower port number."""
    streams: dict[Flow, dict[int, tuple[float, bytes]]] = {}
    servers: set[tuple[bytes, int]] = set()  # (address, port) that connections were opened to
    with path.open("rb") as file:
        reader = _open_capture(file)
        link = reader.datalink()
        for number, (when, packet) in enumerate(reader, start=1):
            try:
                segment = _tcp_segment(link, packet)
            except (dpkt.UnpackError, IndexError) as exc:
                raise PcapError(f"packet {number} is truncated or malformed ({type(exc).__name__})") from None
            if segment is None:
                continue
            flow, seq, data, opening = segment
            if opening:
                servers.add((flow[2], flow[3]))
            if data:
                streams.setdefault(flow, {})[seq] = (float(when), data)
    frames: list[CapturedFrame] = []
    for flow, segments in streams.items():
        framer = LengthPrefixFramer()
        if host_port is not None:
            to_host = flow[3] == host_port
        elif (flow[2], flow[3]) in servers or (flow[0], flow[1]) in servers:
            to_host = (flow[2], flow[3]) in servers
        else:
            to_host = flow[1] != min(f[1] for f in streams)
        for seq in sorted(segments):
            when, data = segments[seq]
            framer.receive_data(data)
            while isinstance(payload := framer.next_frame(), bytes):
                frames.append(CapturedFrame(when, to_host, payload))
    return iter(sorted(frames, key=lambda f: f.time))
