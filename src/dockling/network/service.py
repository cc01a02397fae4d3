"""NetworkService: networks, container sandboxes (netns, veths, addresses), ports and DNS.

Every change of the kernel state (bridges, veths, namespaces, nft table) goes through here
under one lock; records are saved under DATA_ROOT/network so a restarted daemon restores
running containers' networking and removes what nothing refers to any more.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import ipaddress
import logging
from datetime import UTC, datetime
from pathlib import Path

from dockling import errors
from dockling.events.bus import EventBus
from dockling.ids import PrefixIndex, generate_id
from dockling.network import etc_hosts, ipam, links, netns
from dockling.network.base import Firewall
from dockling.network.dns.server import NetworkDNS, host_resolvers
from dockling.network.firewall import BridgeRules
from dockling.network.model import (
    BRIDGE,
    HOST,
    NULL,
    Attachment,
    Endpoint,
    Network,
    PortMapping,
    Sandbox,
)
from dockling.network.ports import PortHolder, PortRequest
from dockling.network.settings import NetworkSettings
from dockling.network.store import NetworkStore

log = logging.getLogger(__name__)

PREDEFINED = ("bridge", "host", "none")
DEFAULT_BIP = "172.17.0.1/16"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class NetworkService:
    def __init__(
        self,
        *,
        root: Path,
        netns_dir: Path,
        settings: NetworkSettings,
        firewall: Firewall,
        events: EventBus,
    ) -> None:
        self.store = NetworkStore(root)
        self.netns_dir = netns_dir
        self.settings = settings
        self.firewall = firewall
        self.events = events
        self.ports = PortHolder()
        self._networks: dict[str, Network] = {}
        self._index = PrefixIndex(lambda ref: errors.NotFound(f"network {ref} not found"))
        self._sandboxes: dict[str, Sandbox] = {}
        self._dns: dict[str, NetworkDNS] = {}
        self._lock = asyncio.Lock()

    # ---- lookup ---------------------------------------------------------------------------

    def list(self) -> builtins.list[Network]:
        return sorted(self._networks.values(), key=lambda n: n.created)

    def get(self, ref: str) -> Network:
        """By full id, exact name, or unique id prefix (Docker's order)."""
        if ref in self._networks:
            return self._networks[ref]
        for network in self._networks.values():
            if network.name == ref:
                return network
        if not ref:
            raise errors.NotFound("network  not found")
        return self._networks[self._index.get(ref)]

    def sandbox(self, container_id: str) -> Sandbox | None:
        return self._sandboxes.get(container_id)

    def containers_on(self, network_id: str) -> builtins.list[tuple[Sandbox, Endpoint]]:
        found = []
        for sandbox in self._sandboxes.values():
            endpoint = sandbox.endpoint(network_id)
            if endpoint is not None:
                found.append((sandbox, endpoint))
        return found

    def _add(self, network: Network) -> None:
        self._networks[network.id] = network
        self._index.add(network.id)

    def _drop(self, network: Network) -> None:
        self._networks.pop(network.id, None)
        self._index.remove(network.id)

    # ---- daemon start ---------------------------------------------------------------------

    async def restore(self) -> None:
        """Load networks and sandboxes, set up bridges, rules and DNS again."""
        for network in await asyncio.to_thread(self.store.load_networks):
            self._add(network)
        for sandbox in await asyncio.to_thread(self.store.load_sandboxes):
            self._sandboxes[sandbox.container_id] = sandbox
        await self._ensure_predefined()
        bridges = [n for n in self._networks.values() if n.driver == BRIDGE]
        if bridges:
            await asyncio.to_thread(links.enable_forwarding)
        for network in bridges:
            await self._setup_bridge(network)
        for sandbox in self._sandboxes.values():
            for mapping in sandbox.ports:
                if not self.ports.hold(mapping.proto, mapping.host_ip, mapping.host_port):
                    log.warning(
                        "host port %s/%s of %s was taken while the daemon was down",
                        mapping.host_port,
                        mapping.proto,
                        sandbox.container_id[:12],
                    )
        await self._apply_rules()

    async def reconcile(self, container_ids: set[str]) -> None:
        """Drop sandboxes of unknown containers, and netns files, bridges and veths of this
        daemon that no record refers to (what a crash may have left)."""
        for cid in [c for c in self._sandboxes if c not in container_ids]:
            await self.release(cid)
            self._sandboxes.pop(cid, None)
            await asyncio.to_thread(self.store.delete_sandbox, cid)
        wanted_ns = {s.netns for s in self._sandboxes.values() if s.netns}
        if self.netns_dir.is_dir():
            for path in self.netns_dir.iterdir():
                if str(path) not in wanted_ns:
                    await asyncio.to_thread(netns.remove, path)
        wanted_links = {n.bridge for n in self._networks.values() if n.bridge}
        wanted_links |= {e.veth for s in self._sandboxes.values() for e in s.endpoints}
        prefix = self.settings.link_prefix
        for name in await asyncio.to_thread(links.list_links, prefix):
            is_ours = name.startswith((f"{prefix}br-", f"{prefix}veth"))
            if is_ours and name not in wanted_links:
                log.info("removing stale link %s", name)
                await asyncio.to_thread(links.delete_link, name)
        await self._apply_rules()

    async def close(self) -> None:
        for server in self._dns.values():
            server.close()
        self._dns.clear()
        self.ports.close()

    async def _ensure_predefined(self) -> None:
        bip = self.settings.bip or DEFAULT_BIP
        gateway, _, prefix = bip.partition("/")
        subnet = ipaddress.ip_network(f"{gateway}/{prefix or 16}", strict=False)
        wanted = {
            "bridge": Network(
                id=generate_id(),
                name="bridge",
                driver=BRIDGE,
                created=_now(),
                subnet=str(subnet),
                gateway=gateway,
                bridge=self.settings.default_bridge,
                default_bridge=True,
                options={
                    "com.docker.network.bridge.default_bridge": "true",
                    "com.docker.network.bridge.name": self.settings.default_bridge,
                },
            ),
            "host": Network(id=generate_id(), name="host", driver=HOST, created=_now()),
            "none": Network(id=generate_id(), name="none", driver=NULL, created=_now()),
        }
        for name, fresh in wanted.items():
            current = next((n for n in self._networks.values() if n.name == name), None)
            # bip or the bridge name may have changed in daemon.json since.
            changed = current is not None and (
                current.subnet,
                current.gateway,
                current.bridge,
            ) != (fresh.subnet, fresh.gateway, fresh.bridge)
            if current is not None and name == "bridge" and changed:
                if current.bridge != fresh.bridge:
                    await asyncio.to_thread(links.delete_link, current.bridge)
                fresh = Network(**{**fresh.to_dict(), "id": current.id})
                current = None
            if current is None:
                self._add(fresh)
                await asyncio.to_thread(self.store.save_network, fresh)

    async def _setup_bridge(self, network: Network) -> None:
        prefixlen = ipaddress.ip_network(network.subnet).prefixlen
        await asyncio.to_thread(links.ensure_bridge, network.bridge, network.gateway, prefixlen)
        if network.user_defined and network.id not in self._dns:
            upstream = list(self.settings.dns) or host_resolvers()
            server = NetworkDNS(network.id, network.gateway, self.resolve, upstream)
            try:
                await server.start()
            except OSError as exc:
                raise errors.SystemError(
                    f"cannot start the DNS server of network {network.name} on "
                    f"{network.gateway}:53: {exc}"
                ) from exc
            self._dns[network.id] = server

    async def _apply_rules(self) -> None:
        if not self.settings.iptables:
            return
        bridges = [
            BridgeRules(n.bridge, n.subnet, n.internal, self._masquerade(n))
            for n in self._networks.values()
            if n.driver == BRIDGE
        ]
        ports = [p for s in self._sandboxes.values() for p in s.ports]
        await self.firewall.apply(bridges, ports)

    def _masquerade(self, network: Network) -> bool:
        option = network.options.get("com.docker.network.bridge.enable_ip_masquerade")
        if option is not None:
            return option.lower() in ("true", "1")
        return self.settings.ip_masq

    # ---- networks -------------------------------------------------------------------------

    async def create(
        self,
        name: str,
        *,
        driver: str = "bridge",
        subnet: str = "",
        gateway: str = "",
        ip_range: str = "",
        internal: bool = False,
        labels: dict[str, str] | None = None,
        options: dict[str, str] | None = None,
    ) -> Network:
        """A user-defined bridge network; nothing is left behind when it fails."""
        if not name:
            raise errors.InvalidParameter("network name must not be empty")
        driver = driver or BRIDGE
        if driver in (HOST, NULL):
            raise errors.Forbidden(f'only one instance of "{driver}" network is allowed')
        if driver != BRIDGE:
            raise errors.NotFound(f'plugin "{driver}" not found')
        options = dict(options or {})
        async with self._lock:
            if any(n.name == name for n in self._networks.values()):
                raise errors.Conflict(f"network with name {name} already exists")
            used = [
                (n.name, ipaddress.IPv4Network(n.subnet))
                for n in self._networks.values()
                if n.subnet
            ]
            if subnet:
                net = ipam.parse_subnet(subnet)
                ipam.check_overlap(net, used)
            else:
                if gateway or ip_range:
                    raise errors.InvalidParameter(
                        "--gateway and --ip-range need --subnet to be given too"
                    )
                pools = [(ipaddress.IPv4Network(b), size) for b, size in self.settings.pools]
                # As Docker does, a picked subnet also stays clear of the host's routes (a
                # VPN, another engine's bridge), which it would shadow or be shadowed by.
                routed = await asyncio.to_thread(links.routed_subnets)
                taken = [u for _, u in used] + [ipaddress.IPv4Network(r) for r in routed]
                net = ipam.pick_subnet(pools, taken)
            if gateway:
                gw = ipam.parse_address(gateway, "gateway")
                ipam.check_gateway(net, gw)
            else:
                gw = next(net.hosts())
            if ip_range:
                ipam.check_ip_range(net, ipam.parse_subnet(ip_range))
            network_id = generate_id()
            prefix = self.settings.link_prefix
            bridge = options.get("com.docker.network.bridge.name") or (
                f"{prefix}br-{network_id[: 12 - len(prefix)]}"
            )
            if len(bridge) > 15:
                raise errors.InvalidParameter(f"bridge name {bridge!r} is longer than 15 bytes")
            if any(n.bridge == bridge for n in self._networks.values()):
                raise errors.Conflict(f"bridge name {bridge} is used by another network")
            if bridge in await asyncio.to_thread(links.list_links, bridge):
                raise errors.Conflict(f"a network interface named {bridge} already exists")
            network = Network(
                id=network_id,
                name=name,
                driver=BRIDGE,
                created=_now(),
                subnet=str(net),
                gateway=str(gw),
                ip_range=ip_range,
                bridge=bridge,
                internal=internal,
                labels=dict(labels or {}),
                options=options,
            )
            self._add(network)
            try:
                await asyncio.to_thread(links.enable_forwarding)
                await self._setup_bridge(network)
                await self._apply_rules()
                await asyncio.to_thread(self.store.save_network, network)
            except BaseException:
                await self._teardown_network(network)
                raise
        self.events.publish("network", "create", network.id, {"name": name, "type": BRIDGE})
        return network

    async def _teardown_network(self, network: Network) -> None:
        self._drop(network)
        server = self._dns.pop(network.id, None)
        if server is not None:
            server.close()
        if network.bridge:
            await asyncio.to_thread(links.delete_link, network.bridge)
        try:
            await self._apply_rules()
        except errors.DocklingError as exc:
            log.error("rules after removing network %s: %s", network.name, exc)
        await asyncio.to_thread(self.store.delete_network, network.id)

    async def remove(self, ref: str) -> None:
        network = self.get(ref)
        if network.name in PREDEFINED and not network.user_defined:
            raise errors.Forbidden(f"{network.name} is a pre-defined network and cannot be removed")
        async with self._lock:
            attached = [s for s in self._sandboxes.values() if s.endpoint(network.id)]
            if attached:
                raise errors.Conflict(
                    f"error while removing network: network {network.name} id {network.id} "
                    "has active endpoints"
                )
            await self._teardown_network(network)
            for sandbox in self._sandboxes.values():
                kept = [a for a in sandbox.attachments if a.network_id != network.id]
                if len(kept) != len(sandbox.attachments):
                    sandbox.attachments = kept
                    await asyncio.to_thread(self.store.save_sandbox, sandbox)
        self.events.publish("network", "destroy", network.id, {"name": network.name})

    async def prune(self) -> builtins.list[str]:
        removed = []
        for network in self.list():
            if not network.user_defined:
                continue
            if any(s.endpoint(network.id) for s in self._sandboxes.values()):
                continue
            if any(
                a.network_id == network.id for s in self._sandboxes.values() for a in s.attachments
            ):
                continue
            await self.remove(network.id)
            removed.append(network.name)
        return removed

    # ---- containers -----------------------------------------------------------------------

    async def register(
        self,
        container_id: str,
        *,
        name: str,
        hostname: str,
        network_mode: str,
        aliases: tuple[str, ...] = (),
        ipv4: str = "",
        mac: str = "",
    ) -> None:
        """Record which network a new container joins (validated; nothing runs yet)."""
        attachments: builtins.list[Attachment] = []
        mode = network_mode or "default"
        if mode.startswith("container:"):
            pass
        else:
            network = self.get("bridge" if mode == "default" else mode)
            attachments.append(self._validated(network, aliases, ipv4, mac))
        sandbox = Sandbox(container_id, name, hostname, attachments)
        self._sandboxes[container_id] = sandbox
        await asyncio.to_thread(self.store.save_sandbox, sandbox)

    def _validated(
        self, network: Network, aliases: tuple[str, ...], ipv4: str, mac: str
    ) -> Attachment:
        if aliases and not network.user_defined:
            raise errors.InvalidParameter(
                "network-scoped alias is supported only for containers in user defined networks"
            )
        if ipv4:
            if not network.user_defined:
                raise errors.InvalidParameter(
                    "user specified IP address is supported on user defined networks only"
                )
            address = ipam.parse_address(ipv4, "IPv4")
            subnet = ipaddress.IPv4Network(network.subnet)
            if address not in subnet:
                raise errors.InvalidParameter(
                    f"Invalid address {ipv4}: It does not belong to any of this network's subnets"
                )
        if mac and network.driver != BRIDGE:
            raise errors.InvalidParameter("a MAC address needs a bridge network")
        return Attachment(network.id, aliases, ipv4, mac)

    async def forget(self, container_id: str) -> None:
        """The container is gone: release everything and drop its record."""
        await self.release(container_id)
        self._sandboxes.pop(container_id, None)
        await asyncio.to_thread(self.store.delete_sandbox, container_id)

    def rename(self, container_id: str, name: str) -> None:
        sandbox = self._sandboxes.get(container_id)
        if sandbox is not None:
            sandbox.name = name
            self.store.save_sandbox(sandbox)

    async def attach(self, container_id: str, requests: builtins.list[PortRequest]) -> Sandbox:
        """Before start: the netns, one veth per bridge attachment, addresses, routes and
        published ports.  All undone on failure."""
        sandbox = self._sandboxes.get(container_id)
        if sandbox is None:
            raise errors.NotFound(f"no network record for container {container_id[:12]}")
        async with self._lock:
            bridged = [a for a in sandbox.attachments if self.get(a.network_id).driver == BRIDGE]
            if not bridged:
                if requests and not any(
                    self.get(a.network_id).driver == HOST for a in sandbox.attachments
                ):
                    log.debug("ports of %s are not published: no bridge", container_id[:12])
                return sandbox
            try:
                path = self.netns_dir / container_id
                await asyncio.to_thread(netns.remove, path)
                await asyncio.to_thread(netns.create, path)
                sandbox.netns = str(path)
                for attachment in bridged:
                    await self._add_endpoint(sandbox, attachment)
                if requests:
                    endpoint = sandbox.endpoints[0]
                    bridge = self.get(endpoint.network_id).bridge
                    for request in requests:
                        host_port = self.ports.claim(request)
                        sandbox.ports.append(
                            PortMapping(
                                request.proto,
                                request.host_ip,
                                host_port,
                                endpoint.ip,
                                request.container_port,
                                bridge,
                            )
                        )
                await self._apply_rules()
                await asyncio.to_thread(self.store.save_sandbox, sandbox)
            except BaseException as exc:
                await self._release_locked(sandbox)
                if isinstance(exc, errors.Conflict) and "port is already allocated" in str(exc):
                    raise errors.Conflict(
                        f"driver failed programming external connectivity on endpoint "
                        f"{sandbox.name} ({container_id[:12]}): {exc}"
                    ) from None
                raise
        return sandbox

    async def _add_endpoint(self, sandbox: Sandbox, attachment: Attachment) -> Endpoint:
        network = self.get(attachment.network_id)
        subnet = ipaddress.IPv4Network(network.subnet)
        used = {ipaddress.IPv4Address(network.gateway)}
        used |= {
            ipaddress.IPv4Address(e.ip)
            for s in self._sandboxes.values()
            for e in s.endpoints
            if e.network_id == network.id
        }
        address = ipam.allocate(
            subnet,
            used,
            ip_range=ipaddress.IPv4Network(network.ip_range) if network.ip_range else None,
            wanted=ipaddress.IPv4Address(attachment.ipv4) if attachment.ipv4 else None,
        )
        taken = {e.ifname for e in sandbox.endpoints}
        ifname = next(f"eth{i}" for i in range(len(taken) + 1) if f"eth{i}" not in taken)
        digest = hashlib.sha256(f"{sandbox.container_id}/{network.id}".encode()).hexdigest()
        veth = f"{self.settings.link_prefix}veth{digest[:7]}"
        has_route = any(not self.get(e.network_id).internal for e in sandbox.endpoints)
        gateway = None if network.internal or has_route else network.gateway
        endpoint = Endpoint(
            network_id=network.id,
            ip=str(address),
            prefixlen=subnet.prefixlen,
            gateway=network.gateway,
            mac=attachment.mac or ipam.mac_for(address),
            veth=veth,
            ifname=ifname,
            aliases=attachment.aliases,
        )
        await asyncio.to_thread(
            lambda: links.add_veth(
                host_name=veth,
                bridge=network.bridge,
                netns_path=sandbox.netns,
                ifname=ifname,
                address=endpoint.ip,
                prefixlen=endpoint.prefixlen,
                mac=endpoint.mac,
                gateway=gateway,
            )
        )
        sandbox.endpoints.append(endpoint)
        return endpoint

    async def release(self, container_id: str) -> None:
        """After exit: ports, rules, veths and the netns go; attachments stay."""
        sandbox = self._sandboxes.get(container_id)
        if sandbox is None or not (sandbox.netns or sandbox.endpoints or sandbox.ports):
            return
        async with self._lock:
            await self._release_locked(sandbox)
            await asyncio.to_thread(self.store.save_sandbox, sandbox)

    async def _release_locked(self, sandbox: Sandbox) -> None:
        for mapping in sandbox.ports:
            self.ports.release(mapping.proto, mapping.host_ip, mapping.host_port)
        had_ports = bool(sandbox.ports)
        sandbox.ports = []
        if had_ports:
            try:
                await self._apply_rules()
            except errors.DocklingError as exc:
                log.error("rules after releasing %s: %s", sandbox.container_id[:12], exc)
        for endpoint in sandbox.endpoints:
            await asyncio.to_thread(links.delete_link, endpoint.veth)
        sandbox.endpoints = []
        if sandbox.netns:
            await asyncio.to_thread(netns.remove, Path(sandbox.netns))
            sandbox.netns = ""

    async def connect(
        self,
        container_id: str,
        ref: str,
        *,
        running: bool,
        aliases: tuple[str, ...] = (),
        ipv4: str = "",
        hosts_file: Path | None = None,
    ) -> None:
        """Join `ref`: recorded for the next start, and when `running` a new interface now,
        its address added to the container's `hosts_file` as Docker does."""
        network = self.get(ref)
        sandbox = self._sandboxes.get(container_id)
        if sandbox is None:
            raise errors.NotFound(f"no network record for container {container_id[:12]}")
        if network.driver != BRIDGE or any(
            self.get(a.network_id).driver != BRIDGE for a in sandbox.attachments
        ):
            raise errors.Forbidden(
                "container sharing network namespace with another container or host cannot "
                "be connected to any other network"
            )
        if any(a.network_id == network.id for a in sandbox.attachments):
            raise errors.Forbidden(
                f"endpoint with name {sandbox.name} already exists in network {network.name}"
            )
        attachment = self._validated(network, aliases, ipv4, "")
        async with self._lock:
            if running:
                if not sandbox.netns:
                    raise errors.Conflict(f"container {container_id[:12]} has no network sandbox")
                endpoint = await self._add_endpoint(sandbox, attachment)
                if hosts_file is not None and hosts_file.is_file():
                    await asyncio.to_thread(
                        etc_hosts.add_entry, hosts_file, endpoint.ip, sandbox.hostname
                    )
            sandbox.attachments.append(attachment)
            await asyncio.to_thread(self.store.save_sandbox, sandbox)
        self.events.publish(
            "network", "connect", network.id, {"container": container_id, "name": network.name}
        )

    async def disconnect(
        self, container_id: str, ref: str, *, hosts_file: Path | None = None
    ) -> None:
        """Leave `ref`: the interface and its published ports go, and its line in the
        container's `hosts_file`."""
        network = self.get(ref)
        sandbox = self._sandboxes.get(container_id)
        if sandbox is None or not any(a.network_id == network.id for a in sandbox.attachments):
            raise errors.Forbidden(
                f"container {container_id} is not connected to network {network.name}"
            )
        async with self._lock:
            endpoint = sandbox.endpoint(network.id)
            if endpoint is not None:
                dropped = [p for p in sandbox.ports if p.container_ip == endpoint.ip]
                for mapping in dropped:
                    self.ports.release(mapping.proto, mapping.host_ip, mapping.host_port)
                sandbox.ports = [p for p in sandbox.ports if p not in dropped]
                await asyncio.to_thread(links.delete_link, endpoint.veth)
                sandbox.endpoints.remove(endpoint)
                if hosts_file is not None and hosts_file.is_file():
                    await asyncio.to_thread(etc_hosts.remove_entries, hosts_file, endpoint.ip)
                if dropped:
                    await self._apply_rules()
            sandbox.attachments = [a for a in sandbox.attachments if a.network_id != network.id]
            await asyncio.to_thread(self.store.save_sandbox, sandbox)
        self.events.publish(
            "network", "disconnect", network.id, {"container": container_id, "name": network.name}
        )

    # ---- DNS ------------------------------------------------------------------------------

    def resolve(self, client_ip: str, name: str) -> builtins.list[str] | None:
        """Addresses for `name` as seen from the container at `client_ip`: containers on the
        user-defined networks it shares, by name, alias or short id; None to forward."""
        name = name.lower()
        client = next(
            (s for s in self._sandboxes.values() for e in s.endpoints if e.ip == client_ip),
            None,
        )
        if client is None or not name or "." in name.rstrip("."):
            return None
        shared = {e.network_id for e in client.endpoints if self.get(e.network_id).user_defined}
        found: builtins.list[str] = []
        for sandbox in self._sandboxes.values():
            for endpoint in sandbox.endpoints:
                if endpoint.network_id not in shared:
                    continue
                names = {sandbox.name.lower(), sandbox.container_id[:12]}
                names |= {a.lower() for a in endpoint.aliases}
                if name in names and endpoint.ip not in found:
                    found.append(endpoint.ip)
        return found or None
