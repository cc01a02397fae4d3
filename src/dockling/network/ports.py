"""Published ports: parsing Docker's port specs, and holding host ports while they are used.

A host port is claimed by binding a socket to it (never listening): the bind fails when
another program or another container holds the port, and while dockling holds it nobody
else can bind it and be shadowed by the DNAT rule.
"""

from __future__ import annotations

import random
import socket
from dataclasses import dataclass

from dockling import errors
from dockling.network import ipam

EPHEMERAL_FALLBACK = (49153, 60999)


@dataclass(frozen=True, slots=True)
class PortRequest:
    """One container port to publish; host_port 0 means "any free port"."""

    proto: str
    container_port: int
    host_ip: str = ""
    host_port: int = 0
    host_port_end: int = 0  # > host_port: take the first free port of the range


def _port(text: str, what: str) -> tuple[int, int]:
    """`80` or `8000-8010` as (start, end)."""
    start_text, sep, end_text = text.partition("-")
    try:
        start = int(start_text)
        end = int(end_text) if sep else start
    except ValueError:
        raise errors.InvalidParameter(f"invalid {what}: {text}") from None
    if not (0 < start <= 65535 and 0 < end <= 65535) or end < start:
        raise errors.InvalidParameter(f"invalid {what}: {text}")
    return start, end


def parse_port_key(key: str) -> tuple[int, int, str]:
    """ "80/tcp", "80", "8000-8010/udp" as (start, end, proto)."""
    port, _, proto = key.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp"):
        raise errors.InvalidParameter(f"invalid proto: {proto}")
    start, end = _port(port, "containerPort")
    return start, end, proto


def parse_bindings(entries: tuple[str, ...]) -> list[PortRequest]:
    """The spec's port bindings ("HOSTIP:HOSTPORT:CPORT/proto" each) as requests."""
    requests: list[PortRequest] = []
    for entry in entries:
        host_ip, host_port, key = entry.rsplit(":", 2)
        start, end, proto = parse_port_key(key)
        if host_ip:
            ipam.parse_address(host_ip, "host IP")
        if host_port:
            h_start, h_end = _port(host_port, "hostPort")
        else:
            h_start = h_end = 0
        count = end - start + 1
        if h_start and count > 1 and h_end - h_start + 1 != count:
            raise errors.InvalidParameter(
                f"invalid ranges specified for container and host Ports: {key} and {host_port}"
            )
        for offset in range(count):
            if h_start and count > 1:
                requests.append(
                    PortRequest(proto, start + offset, host_ip, h_start + offset, h_start + offset)
                )
            else:
                requests.append(PortRequest(proto, start + offset, host_ip, h_start, h_end))
    return requests


def exposed_requests(exposed: tuple[str, ...]) -> list[PortRequest]:
    """`-P`: every exposed port on an ephemeral host port."""
    requests: list[PortRequest] = []
    for key in exposed:
        start, end, proto = parse_port_key(key)
        requests.extend(PortRequest(proto, port) for port in range(start, end + 1))
    return requests


def ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(v) for v in f.read().split())
            return low, high
    except (OSError, ValueError):
        return EPHEMERAL_FALLBACK


class PortHolder:
    """Host ports held by bound sockets, keyed by (proto, host ip, port)."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, str, int], socket.socket] = {}

    def claim(self, request: PortRequest) -> int:
        """Bind the requested host port (or a free one) and return it; Conflict if taken."""
        if request.host_port:
            end = max(request.host_port_end, request.host_port)
            for port in range(request.host_port, end + 1):
                if self._try(request.proto, request.host_ip, port):
                    return port
            shown = request.host_ip or "0.0.0.0"
            port_text = (
                str(request.host_port) if end == request.host_port else f"{request.host_port}-{end}"
            )
            raise errors.Conflict(f"Bind for {shown}:{port_text} failed: port is already allocated")
        low, high = ephemeral_range()
        # A random start keeps two daemons on one host from racing for the same ports.
        first = random.randint(low, high)
        for i in range(high - low + 1):
            port = low + (first - low + i) % (high - low + 1)
            if self._try(request.proto, request.host_ip, port):
                return port
        raise errors.Unavailable("no free host port left in the ephemeral range")

    def _try(self, proto: str, host_ip: str, port: int) -> bool:
        key = (proto, host_ip, port)
        if key in self._held or (proto, "", port) in self._held:
            return False
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        sock = socket.socket(socket.AF_INET, kind)
        try:
            sock.bind((host_ip or "0.0.0.0", port))
        except OSError:
            sock.close()
            return False
        sock.set_inheritable(False)
        self._held[key] = sock
        return True

    def hold(self, proto: str, host_ip: str, port: int) -> bool:
        """Re-take a port after a daemon restart; False if someone else took it meanwhile."""
        return self._try(proto, host_ip, port)

    def release(self, proto: str, host_ip: str, port: int) -> None:
        sock = self._held.pop((proto, host_ip, port), None)
        if sock is not None:
            sock.close()

    def close(self) -> None:
        for sock in self._held.values():
            sock.close()
        self._held.clear()
