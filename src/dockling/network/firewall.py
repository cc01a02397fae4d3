"""nftables: dockling's own table, rendered from the network state by a pure function.

Every change re-renders the whole table and replaces it in one `nft -f -` transaction, so
the kernel never holds half a rule set, and a restart that renders the same state installs
exactly the same rules (no duplicates).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from dockling import errors
from dockling.network.model import PortMapping


@dataclass(frozen=True, slots=True)
class BridgeRules:
    """What the rules need to know about one bridge network."""

    bridge: str
    subnet: str
    internal: bool
    masquerade: bool


def _quote(name: str) -> str:
    return f'"{name}"'


def _dnat_rules(ports: Sequence[PortMapping]) -> list[str]:
    rules = []
    for p in sorted(ports, key=lambda m: (m.proto, m.host_port, m.host_ip, m.container_ip)):
        match = (
            f"ip daddr {p.host_ip}"
            if p.host_ip and p.host_ip != "0.0.0.0"
            else ("fib daddr type local")
        )
        rules.append(
            f"{match} {p.proto} dport {p.host_port} dnat to {p.container_ip}:{p.container_port}"
        )
    return rules


def render(table: str, bridges: Sequence[BridgeRules], ports: Sequence[PortMapping]) -> str:
    """The complete `table ip <table>` definition for these bridges and published ports."""
    bridges = sorted(bridges, key=lambda b: b.bridge)
    dnat = _dnat_rules(ports)
    lines = [f"table ip {table} {{"]

    def chain(name: str, header: str, rules: list[str]) -> None:
        lines.append(f"\tchain {name} {{")
        lines.append(f"\t\t{header}")
        lines.extend(f"\t\t{rule}" for rule in rules)
        lines.append("\t}")

    chain("prerouting", "type nat hook prerouting priority -100; policy accept;", dnat)
    chain("output", "type nat hook output priority -100; policy accept;", dnat)
    post: list[str] = []
    for b in bridges:
        br = _quote(b.bridge)
        # 127.0.0.1:HOSTPORT reaches the container (route_localnet is on for the bridge);
        # the reply must come back to the host, not to the container's own loopback.
        post.append(f"oifname {br} ip saddr 127.0.0.0/8 masquerade")
        # Hairpin: a container reaching a published port of its own bridge through the host.
        post.append(f"iifname {br} oifname {br} ct status dnat masquerade")
        if b.masquerade and not b.internal:
            post.append(f"ip saddr {b.subnet} oifname != {br} masquerade")
    chain("postrouting", "type nat hook postrouting priority 100; policy accept;", post)
    forward: list[str] = []
    names = [b.bridge for b in bridges]
    for b in bridges:
        br = _quote(b.bridge)
        if b.internal:
            forward.append(f"iifname {br} oifname != {br} drop")
            forward.append(f"oifname {br} iifname != {br} drop")
    if len(names) > 1:
        # Published ports stay reachable across networks, as through the host.
        forward.append("ct status dnat accept")
        for b in bridges:
            others = ", ".join(_quote(n) for n in names if n != b.bridge)
            forward.append(f"iifname {_quote(b.bridge)} oifname {{ {others} }} drop")
    chain("forward", "type filter hook forward priority 0; policy accept;", forward)
    lines.append("}")
    return "\n".join(lines) + "\n"


async def _nft(script: str) -> None:
    try:
        proc = await asyncio.create_subprocess_exec(
            "nft",
            "-f",
            "-",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        raise errors.Unavailable(
            "nft not found: bridge networks need nftables (apt-get install nftables)"
        ) from None
    _, err = await proc.communicate(script.encode())
    if proc.returncode != 0:
        raise errors.SystemError(f"nft failed: {err.decode(errors='replace').strip()}")


class NftFirewall:
    """Installs and removes one nftables table; changes are serialised and atomic."""

    def __init__(self, table: str) -> None:
        self.table = table
        self._lock = asyncio.Lock()

    async def apply(self, bridges: Sequence[BridgeRules], ports: Sequence[PortMapping]) -> None:
        body = render(self.table, bridges, ports)
        # Creating the table first makes the delete valid when it does not exist yet.
        script = f"table ip {self.table} {{}}\ndelete table ip {self.table}\n{body}"
        async with self._lock:
            await _nft(script)

    async def remove(self) -> None:
        async with self._lock:
            await _nft(f"table ip {self.table} {{}}\ndelete table ip {self.table}\n")
