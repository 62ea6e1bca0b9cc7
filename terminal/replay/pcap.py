"""Classic libpcap files of the POS link: write frames as a capture Wireshark opens, read frames back.

Writing synthesises Ethernet/IPv4/TCP packets (terminal 10.0.0.1:40000 ↔ host 10.0.0.2:5800 — addresses
inside the capture file only, nothing is sent) with consistent sequence numbers, one TCP segment per frame.
Reading parses Ethernet (or Linux cooked) / IPv4 / IPv6 / TCP, reassembles each direction's byte stream in
sequence order and cuts it into frames with :class:`wire.framing.LengthPrefixFramer`.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

from wire.errors import WireError
from wire.framing import LengthPrefixFramer, frame

MAGIC: Final = 0xA1B2C3D4
LINKTYPE_ETHERNET: Final = 1
LINKTYPE_LINUX_SLL: Final = 113
SNAPLEN: Final = 65535
TERMINAL_IP: Final = bytes([10, 0, 0, 1])
HOST_IP: Final = bytes([10, 0, 0, 2])
TERMINAL_PORT: Final = 40000
HOST_PORT: Final = 5800


class PcapError(WireError):
    """The capture is not a readable classic pcap of TCP traffic."""


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


def _tcp_segment(link: int, packet: bytes) -> tuple[tuple[bytes, int, bytes, int], int, bytes] | None:
    if link == LINKTYPE_ETHERNET:
        offset, ethertype = 14, struct.unpack("!H", packet[12:14])[0]
    elif link == LINKTYPE_LINUX_SLL:
        offset, ethertype = 16, struct.unpack("!H", packet[14:16])[0]
    else:
        raise PcapError(f"unsupported link type {link}")
    if ethertype == 0x0800:
        ihl = (packet[offset] & 0x0F) * 4
        if packet[offset + 9] != 6:
            return None
        total = struct.unpack("!H", packet[offset + 2 : offset + 4])[0]
        src, dst = packet[offset + 12 : offset + 16], packet[offset + 16 : offset + 20]
        tcp = packet[offset + ihl : offset + total]
    elif ethertype == 0x86DD:
        if packet[offset + 6] != 6:
            return None
        length = struct.unpack("!H", packet[offset + 4 : offset + 6])[0]
        src, dst = packet[offset + 8 : offset + 24], packet[offset + 24 : offset + 40]
        tcp = packet[offset + 40 : offset + 40 + length]
    else:
        return None
    sport, dport, seq = struct.unpack("!HHI", tcp[:8])
    data_offset = (tcp[12] >> 4) * 4
    return (src, sport, dst, dport), seq, tcp[data_offset:]


def read_pcap(path: Path, *, host_port: int | None = None) -> Iterator[CapturedFrame]:
    """The POS frames in a capture, in time order. ``host_port`` says which side is the host (default: the
    side with the lower port number)."""
    raw = path.read_bytes()
    if len(raw) < 24:
        raise PcapError("file too short for a pcap header", offset=0)
    magic = struct.unpack("<I", raw[:4])[0]
    endian = (
        "<"
        if magic in (0xA1B2C3D4, 0xA1B23C4D)
        else ">"
        if struct.unpack(">I", raw[:4])[0] in (0xA1B2C3D4, 0xA1B23C4D)
        else None
    )
    if endian is None:
        raise PcapError("not a classic pcap file (pcapng is not supported)", offset=0)
    nano = struct.unpack(endian + "I", raw[:4])[0] == 0xA1B23C4D
    link = struct.unpack(endian + "I", raw[20:24])[0]
    position = 24
    streams: dict[tuple[bytes, int, bytes, int], dict[int, tuple[float, bytes]]] = {}
    while position + 16 <= len(raw):
        seconds, fraction, captured, _ = struct.unpack(endian + "IIII", raw[position : position + 16])
        packet = raw[position + 16 : position + 16 + captured]
        when = seconds + fraction / (1e9 if nano else 1e6)
        position += 16 + captured
        segment = _tcp_segment(link, packet)
        if segment is None or not segment[2]:
            continue
        flow, seq, data = segment
        streams.setdefault(flow, {})[seq] = (when, data)
    frames: list[CapturedFrame] = []
    for flow, segments in streams.items():
        framer = LengthPrefixFramer()
        to_host = flow[3] == host_port if host_port is not None else flow[1] != min(f[1] for f in streams)
        for seq in sorted(segments):
            when, data = segments[seq]
            framer.receive_data(data)
            while isinstance(payload := framer.next_frame(), bytes):
                frames.append(CapturedFrame(when, to_host, payload))
    return iter(sorted(frames, key=lambda f: f.time))
