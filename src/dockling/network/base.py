"""The pluggable parts of networking, as Protocols (their docstrings are the contract)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from dockling.network.firewall import BridgeRules
from dockling.network.model import PortMapping


class Firewall(Protocol):
    """Owns the host's packet-filter rules of one daemon and nothing else."""

    async def apply(self, bridges: Sequence[BridgeRules], ports: Sequence[PortMapping]) -> None:
        """Make the installed rules exactly those for `bridges` and `ports`, atomically:
        on failure the previous rules stay in force."""
        ...

    async def remove(self) -> None:
        """Remove every rule this firewall installed; fine when there are none."""
        ...
