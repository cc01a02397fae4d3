"""IPAM: subnet and gateway validation and address allocation (pure functions)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network

from dockling import errors


def parse_subnet(text: str) -> IPv4Network:
    """A subnet in CIDR form; host bits must be zero, as Docker requires."""
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise errors.InvalidParameter(
            f"Invalid subnet {text} : invalid CIDR address: {text}"
        ) from None
    if not isinstance(network, IPv4Network):
        raise errors.NotImplementedFeature(f"IPv6 subnet {text} is not supported yet")
    if str(network) != text.strip():
        raise errors.InvalidParameter(f"invalid subnet {text}: it should be {network}")
    if network.prefixlen > 30:
        raise errors.InvalidParameter(f"subnet {text} is too small: use a /30 or larger")
    return network


def parse_address(text: str, what: str) -> IPv4Address:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise errors.InvalidParameter(f"invalid {what} address {text!r}") from None
    if not isinstance(address, IPv4Address):
        raise errors.NotImplementedFeature(f"IPv6 {what} {text} is not supported yet")
    return address


def check_gateway(subnet: IPv4Network, gateway: IPv4Address) -> None:
    if gateway not in subnet:
        raise errors.InvalidParameter(
            f"no matching subnet for gateway {gateway}: it is outside {subnet}"
        )
    if gateway in (subnet.network_address, subnet.broadcast_address):
        raise errors.InvalidParameter(f"gateway {gateway} is not a host address of {subnet}")


def check_ip_range(subnet: IPv4Network, ip_range: IPv4Network) -> None:
    if not ip_range.subnet_of(subnet):
        raise errors.InvalidParameter(f"ip-range {ip_range} is not within subnet {subnet}")


def check_overlap(subnet: IPv4Network, existing: Iterable[tuple[str, IPv4Network]]) -> None:
    for name, other in existing:
        if subnet.overlaps(other):
            raise errors.Conflict(
                f"Pool overlaps with other one on this address space: {subnet} overlaps "
                f"{other} of network {name}"
            )


def pick_subnet(
    pools: Iterable[tuple[IPv4Network, int]], used: Iterable[IPv4Network]
) -> IPv4Network:
    """The first subnet of the pools (base, size) that overlaps none in use."""
    taken = list(used)
    for base, size in pools:
        for candidate in base.subnets(new_prefix=size):
            if not any(candidate.overlaps(t) for t in taken):
                return candidate
    raise errors.Unavailable(
        "could not find an available, non-overlapping IPv4 address pool among the defaults to "
        "assign to the network"
    )


def allocate(
    subnet: IPv4Network,
    used: Iterable[IPv4Address],
    *,
    ip_range: IPv4Network | None = None,
    wanted: IPv4Address | None = None,
) -> IPv4Address:
    """A free host address of `subnet` (within `ip_range`), or `wanted` if it is free."""
    taken = set(used)
    if wanted is not None:
        if wanted not in subnet or wanted in (subnet.network_address, subnet.broadcast_address):
            raise errors.InvalidParameter(f"address {wanted} is not a host address of {subnet}")
        if wanted in taken:
            raise errors.Conflict(f"Address already in use: {wanted}")
        return wanted
    pool = ip_range or subnet
    for host in pool.hosts():
        if host not in taken and host != subnet.broadcast_address:
            return host
    raise errors.Unavailable(f"no available IPv4 addresses on network {subnet}")


def mac_for(address: IPv4Address) -> str:
    """Docker's MAC scheme: 02:42 followed by the four bytes of the IPv4 address."""
    return "02:42:" + ":".join(f"{b:02x}" for b in address.packed)
