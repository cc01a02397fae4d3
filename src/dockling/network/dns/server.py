"""The embedded DNS server: one UDP socket per user-defined network, on its gateway address.

Names of containers on that network (name, aliases, short id) are answered from the
daemon's state; anything else is forwarded to the host's resolvers and the answer relayed.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import cast

from dockling.network.dns import message

log = logging.getLogger(__name__)

FORWARD_TIMEOUT = 3.0
Resolve = Callable[[str, str], list[str] | None]  # (client ip, name) -> addresses or None


def host_resolvers(path: str = "/etc/resolv.conf") -> list[str]:
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    servers = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver" and ":" not in fields[1]:
            servers.append(fields[1])
    return servers


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: NetworkDNS) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server.handle(data, addr)


class NetworkDNS:
    """The server of one network."""

    def __init__(self, network_id: str, address: str, resolve: Resolve, upstream: list[str]):
        self.network_id = network_id
        self.address = address
        self.resolve = resolve
        self.upstream = upstream
        self._protocol: _Protocol | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # IP_FREEBIND: the bridge address may still be tentative when we bind.
        sock.setsockopt(socket.SOL_IP, 15, 1)
        sock.bind((self.address, 53))
        _, protocol = await loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock)
        self._protocol = protocol

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        for task in self._tasks:
            task.cancel()

    def handle(self, data: bytes, addr: tuple[str, int]) -> None:
        question = message.parse_question(data)
        if question is None or self._protocol is None or self._protocol.transport is None:
            return
        addresses = self.resolve(addr[0], question.name)
        if addresses is not None:
            self._protocol.transport.sendto(message.answer(data, question, addresses), addr)
            return
        task = asyncio.get_running_loop().create_task(self._forward(data, question, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _forward(
        self, data: bytes, question: message.Question, addr: tuple[str, int]
    ) -> None:
        reply = await forward(data, self.upstream)
        if reply is None:
            reply = message.answer(data, question, [], message.RCODE_SERVFAIL)
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.sendto(reply, addr)


async def forward(data: bytes, upstream: list[str]) -> bytes | None:
    """Ask each upstream resolver in turn; the first answer wins."""
    loop = asyncio.get_running_loop()
    for server in upstream:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, (server, 53))
            await loop.sock_sendall(sock, data)
            return await asyncio.wait_for(loop.sock_recv(sock, 4096), FORWARD_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            log.debug("dns forward to %s: %s", server, exc)
        finally:
            sock.close()
    return None
