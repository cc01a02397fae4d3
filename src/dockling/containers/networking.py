"""ContainerNetworking: what the container service asks of the network service.

The service's lifecycle (create, start, exit, remove, rename) has a network step at each
point; this collaborator holds them, so the lifecycle reads as a lifecycle, and so a
daemon without networking (`networks=None`) is one object answering "nothing to do"
instead of a check at every call.  Locking stays with the service: it calls these with
the container's lock held where the order matters.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from pathlib import Path

from dockling import errors
from dockling.containers.launcher import NetworkConfig
from dockling.containers.model import Container
from dockling.containers.spec import ContainerSpec
from dockling.network import ports as port_parsing
from dockling.network.service import NetworkService

log = logging.getLogger(__name__)

Lookup = Callable[[str], Container]  # a container by id, name or prefix


class ContainerNetworking:
    def __init__(self, networks: NetworkService | None, hosts_file: Callable[[str], Path]) -> None:
        self.networks = networks
        self.hosts_file = hosts_file  # a container id -> its /etc/hosts on the host

    @property
    def enabled(self) -> bool:
        return self.networks is not None

    async def restore(self) -> None:
        if self.networks is not None:
            await self.networks.restore()

    async def reconcile(self, container_ids: set[str]) -> None:
        """Drop the endpoints of containers that no longer exist (after a restore)."""
        if self.networks is not None:
            await self.networks.reconcile(container_ids)

    def validate(self, spec: ContainerSpec, lookup: Lookup) -> None:
        """Refuse at create what would only fail at start."""
        mode = spec.network_mode or "default"
        for entry in spec.extra_hosts:
            name, sep, address = entry.partition(":")
            if not sep or not name or not _is_address(address):
                raise errors.InvalidParameter(f"invalid IP address in add-host: {address!r}")
        port_parsing.parse_bindings(spec.port_bindings)
        port_parsing.exposed_requests(spec.exposed_ports)
        if mode.startswith("container:"):
            if spec.port_bindings or spec.publish_all:
                raise errors.InvalidParameter(
                    "conflicting options: port publishing and the container type network mode"
                )
            if spec.hostname:
                raise errors.InvalidParameter("conflicting options: hostname and the network mode")
            lookup(mode.partition(":")[2])
            return
        if self.networks is None:
            if mode not in ("default", "none", "host", "bridge"):
                raise errors.NotImplementedFeature(f"network mode {mode!r} is not supported")
            return
        try:
            network = self.networks.get("bridge" if mode == "default" else mode)
        except errors.NotFound:
            # Not a 404: to a client a 404 on create means "pull the image".
            raise errors.InvalidParameter(f"network {mode} not found") from None
        if network.driver == "host" and (spec.port_bindings or spec.publish_all):
            log.info("published ports are discarded when using host network mode")

    async def register(self, container: Container) -> None:
        """Record the container's endpoints (addresses are given at start)."""
        if self.networks is None:
            return
        spec = container.spec
        await self.networks.register(
            container.id,
            name=container.name,
            hostname=container.hostname,
            network_mode=spec.network_mode,
            aliases=spec.aliases,
            ipv4=spec.ip,
            mac=spec.mac_address,
        )

    def undo_register(self, container_id: str) -> None:
        """A create that failed: its endpoints go too (no network was set up yet)."""
        if self.networks is not None:
            self.networks.store.delete_sandbox(container_id)

    async def config_for(self, container: Container, lookup: Lookup) -> NetworkConfig:
        """Set up the container's network before launch (netns, veths, ports, DNS)."""
        spec = container.spec
        mode = spec.network_mode or "default"
        if mode.startswith("container:"):
            target = lookup(mode.partition(":")[2])
            if not target.state.running:
                raise errors.Conflict(
                    f"cannot join network of a non running container: {target.id}"
                )
            sandbox = self.networks.sandbox(target.id) if self.networks else None
            path = (
                sandbox.netns if sandbox and sandbox.netns else f"/proc/{target.state.pid}/ns/net"
            )
            return NetworkConfig(netns_path=path, hosts_file=str(self.hosts_file(target.id)))
        if self.networks is None:
            return NetworkConfig()
        host_gateway = self.networks.get("bridge").gateway
        if self.networks.sandbox(container.id) is None:
            await self.register(container)  # a container made before networking
        requests = port_parsing.parse_bindings(spec.port_bindings)
        if spec.publish_all:
            bound = {(r.container_port, r.proto) for r in requests}
            requests += [
                r
                for r in port_parsing.exposed_requests(spec.exposed_ports)
                if (r.container_port, r.proto) not in bound
            ]
        sandbox = await self.networks.attach(container.id, requests)
        if not sandbox.netns:
            return NetworkConfig(host_gateway=host_gateway)
        # The embedded DNS on a user-defined network; daemon.json's "dns" on the default one.
        nameservers = (
            tuple(
                endpoint.gateway
                for endpoint in sandbox.endpoints
                if self.networks.get(endpoint.network_id).user_defined
            )[:1]
            or self.networks.settings.dns
        )
        return NetworkConfig(
            netns_path=sandbox.netns,
            addresses=tuple(e.ip for e in sandbox.endpoints),
            nameservers=nameservers,
            host_gateway=host_gateway,
        )

    async def release(self, container: Container) -> None:
        """The container stopped: free its addresses, veths and ports (logged, not raised)."""
        if self.networks is None:
            return
        try:
            await self.networks.release(container.id)
        except errors.DocklingError as exc:
            log.error("network teardown of %s: %s", container.short_id, exc)

    async def forget(self, container: Container) -> None:
        """The container is removed: its endpoints go (logged, not raised)."""
        if self.networks is None:
            return
        try:
            await self.networks.forget(container.id)
        except errors.DocklingError as exc:
            log.error("network teardown of %s: %s", container.short_id, exc)

    def rename(self, container_id: str, name: str) -> None:
        if self.networks is not None:
            self.networks.rename(container_id, name)

    async def connect(
        self, container: Container, network: str, *, aliases: tuple[str, ...], ipv4: str
    ) -> None:
        networks = self._required()
        if networks.sandbox(container.id) is None:
            await self.register(container)
        await networks.connect(
            container.id,
            network,
            running=container.state.running,
            aliases=aliases,
            ipv4=ipv4,
            hosts_file=self.hosts_file(container.id),
        )

    async def disconnect(self, container: Container, network: str) -> None:
        await self._required().disconnect(
            container.id, network, hosts_file=self.hosts_file(container.id)
        )

    def _required(self) -> NetworkService:
        if self.networks is None:
            raise errors.NotImplementedFeature("networking is disabled")
        return self.networks


def _is_address(text: str) -> bool:
    if text == "host-gateway":
        return True
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True
