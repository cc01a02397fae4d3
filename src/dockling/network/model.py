"""Network values: networks, endpoints, port mappings and the per-container sandbox.

Plain data, persisted as JSON by `network.store`; `to_dict`/`from_dict` keep the file
format in one place.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

BRIDGE = "bridge"
HOST = "host"
NULL = "null"


@dataclass(frozen=True, slots=True)
class Network:
    """One network.  `bridge` is the Linux bridge of a bridge network ("" for host/null)."""

    id: str
    name: str
    driver: str
    created: str
    subnet: str = ""
    gateway: str = ""
    ip_range: str = ""
    bridge: str = ""
    internal: bool = False
    default_bridge: bool = False  # Docker's "bridge": no embedded DNS, no aliases
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)

    @property
    def user_defined(self) -> bool:
        return self.driver == BRIDGE and not self.default_bridge

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Network:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class PortMapping:
    """A published port of a running container: host side and container side."""

    proto: str
    host_ip: str
    host_port: int
    container_ip: str
    container_port: int
    bridge: str

    @property
    def key(self) -> str:
        return f"{self.container_port}/{self.proto}"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A container's interface on one network."""

    network_id: str
    ip: str
    prefixlen: int
    gateway: str
    mac: str
    veth: str  # the host-side end
    ifname: str  # the name inside the container
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Attachment:
    """What the user asked for a container on a network (kept while the container exists)."""

    network_id: str
    aliases: tuple[str, ...] = ()
    ipv4: str = ""
    mac: str = ""


@dataclass
class Sandbox:
    """A container's network state: its attachments always, endpoints while it runs."""

    container_id: str
    name: str
    hostname: str
    attachments: list[Attachment] = field(default_factory=list)
    netns: str = ""
    endpoints: list[Endpoint] = field(default_factory=list)
    ports: list[PortMapping] = field(default_factory=list)

    def endpoint(self, network_id: str) -> Endpoint | None:
        return next((e for e in self.endpoints if e.network_id == network_id), None)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sandbox:
        return cls(
            container_id=data["container_id"],
            name=data["name"],
            hostname=data.get("hostname", ""),
            attachments=[
                Attachment(**{**a, "aliases": tuple(a.get("aliases", ()))})
                for a in data.get("attachments", [])
            ],
            netns=data.get("netns", ""),
            endpoints=[
                Endpoint(**{**e, "aliases": tuple(e.get("aliases", ()))})
                for e in data.get("endpoints", [])
            ],
            ports=[PortMapping(**p) for p in data.get("ports", [])],
        )
