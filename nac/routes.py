"""The routing table: TPDU destination address → named upstream group of front-end members.

    table = RouteTable.parse(["0003=127.0.0.1:5003,127.0.0.1:5004"])
    table.group_for("0003")   # → "0003"

A ``--route`` is ``DST=HOST:PORT[,HOST:PORT...]``; several DSTs may share one member list by naming them
together (``0003,0004=HOST:PORT``). The group is named after its first DST.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from acqkit.config import split_host_port
from wire.tpdu import TERMINAL_SRC


class RouteSpecError(ValueError):
    """A ``--route`` argument does not read ``DST=HOST:PORT[,HOST:PORT]``."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> Member:
        try:
            host, port = split_host_port(text)
        except ValueError:
            port = 0
        if port == 0:  # a member is connected to: no "any port"
            raise RouteSpecError(f"member must be HOST:PORT, not {text!r}")
        return cls(host=host, port=port)


def _check_dst(dst: str) -> str:
    dst = dst.strip().upper()
    if len(dst) != 4 or any(c not in "0123456789ABCDEF" for c in dst):
        raise RouteSpecError(f"destination must be 4 hex digits, not {dst!r}")
    if dst == TERMINAL_SRC:
        raise RouteSpecError("destination 0000 is the terminals' own address and cannot be routed")
    return dst


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RouteTable:
    """``routes``: DST → group name; ``groups``: group name → its members, in round-robin order."""

    routes: Mapping[str, str]
    groups: Mapping[str, tuple[Member, ...]]

    def __post_init__(self) -> None:
        for dst, group in self.routes.items():
            _check_dst(dst)
            if group not in self.groups:
                raise RouteSpecError(f"route {dst} names unknown group {group!r}")
        for group, members in self.groups.items():
            if not members:
                raise RouteSpecError(f"group {group!r} has no members")

    @classmethod
    def parse(cls, specs: Iterable[str]) -> RouteTable:
        routes: dict[str, str] = {}
        groups: dict[str, tuple[Member, ...]] = {}
        for spec in specs:
            dst_text, sep, members_text = spec.partition("=")
            if not sep:
                raise RouteSpecError(f"route must be DST=HOST:PORT[,HOST:PORT], not {spec!r}")
            dsts = [_check_dst(d) for d in dst_text.split(",")]
            members = tuple(Member.parse(m) for m in members_text.split(",") if m.strip())
            if not members:
                raise RouteSpecError(f"route {spec!r} names no member")
            for dst in dsts:
                if dst in routes:
                    raise RouteSpecError(f"destination {dst} is routed twice")
                routes[dst] = dsts[0]
            groups[dsts[0]] = members
        if not routes:
            raise RouteSpecError("at least one --route is needed")
        return cls(routes=MappingProxyType(routes), groups=MappingProxyType(groups))

    def group_for(self, dst: str) -> str | None:
        return self.routes.get(dst)
