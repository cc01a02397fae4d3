"""Bridges and veth pairs through netlink (pyroute2), in the host and in container netns.

Blocking calls: run them in a worker thread.  Netlink errors become `errors.SystemError`
naming the link.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import os
import socket
from collections.abc import Iterator
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from dockling import errors
from dockling.network import netns

# pyroute2 logs every netlink message at debug level: far too much for the daemon's log.
logging.getLogger("pyroute2").setLevel(logging.WARNING)


@contextlib.contextmanager
def _ipr(netns_path: str | None = None) -> Iterator[Any]:
    if netns_path is None:
        ipr = IPRoute()
    else:
        ipr = IPRoute(fileno=netns.netlink_socket(netns_path).detach())
    try:
        yield ipr
    finally:
        ipr.close()


def _fail(what: str, name: str, exc: NetlinkError) -> errors.SystemError:
    return errors.SystemError(f"{what} {name}: {os.strerror(exc.code) or exc}")


def _sysctl(path: str, value: str) -> None:
    with open(f"/proc/sys/{path}", "w") as f:
        f.write(value)


def enable_forwarding() -> None:
    """Routing between bridges and the outside, as Docker turns it on."""
    _sysctl("net/ipv4/ip_forward", "1")


def ensure_bridge(name: str, gateway: str, prefixlen: int, *, mtu: int = 1500) -> None:
    """The bridge `name`, up, holding `gateway/prefixlen`; created if missing."""
    with _ipr() as ipr:
        try:
            found = ipr.link_lookup(ifname=name)
            if not found:
                ipr.link("add", ifname=name, kind="bridge", mtu=mtu)
                found = ipr.link_lookup(ifname=name)
            index = found[0]
            have = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=index, family=2)}
            if gateway not in have:
                ipr.addr("add", index=index, address=gateway, prefixlen=prefixlen)
            ipr.link("set", index=index, state="up")
        except NetlinkError as exc:
            raise _fail("cannot set up bridge", name, exc) from exc
    # Published ports on 127.0.0.1 are DNATed to the bridge; the kernel routes a
    # loopback source out of it only with route_localnet.
    _sysctl(f"net/ipv4/conf/{name}/route_localnet", "1")


def delete_link(name: str) -> None:
    """Delete a link of the host; a missing one is fine."""
    with _ipr() as ipr:
        try:
            found = ipr.link_lookup(ifname=name)
            if found:
                ipr.link("del", index=found[0])
        except NetlinkError as exc:
            if exc.code != errno.ENODEV:
                raise _fail("cannot delete link", name, exc) from exc


def list_links(prefix: str) -> list[str]:
    with _ipr() as ipr:
        names = [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()]
    return sorted(n for n in names if n and n.startswith(prefix))


def routed_subnets() -> list[str]:
    """Destinations (CIDR) of the host's IPv4 routes in the main table, the default route
    left out: a new network's subnet must not shadow any of them."""
    with _ipr() as ipr:
        routes = ipr.get_routes(family=socket.AF_INET, table=254)
    found = []
    for route in routes:
        length = route["dst_len"]
        dst = route.get_attr("RTA_DST")
        if dst and length:
            found.append(f"{dst}/{length}")
    return sorted(set(found))


def add_veth(
    *,
    host_name: str,
    bridge: str,
    netns_path: str,
    ifname: str,
    address: str,
    prefixlen: int,
    mac: str,
    gateway: str | None,
) -> None:
    """A veth pair: `host_name` on `bridge`, its peer `ifname` in the namespace, addressed,
    up, with a default route via `gateway` when one is given.  Undone on failure."""
    fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with _ipr() as ipr:
            try:
                master = ipr.link_lookup(ifname=bridge)
                if not master:
                    raise errors.SystemError(f"bridge {bridge} is missing")
                ipr.link(
                    "add",
                    ifname=host_name,
                    kind="veth",
                    peer={"ifname": ifname, "net_ns_fd": fd, "address": mac},
                )
                index = ipr.link_lookup(ifname=host_name)[0]
                ipr.link("set", index=index, master=master[0], state="up")
            except NetlinkError as exc:
                delete_link(host_name)
                raise _fail("cannot create veth", host_name, exc) from exc
    finally:
        os.close(fd)
    try:
        with _ipr(netns_path) as inner:
            lo = inner.link_lookup(ifname="lo")[0]
            inner.link("set", index=lo, state="up")
            index = inner.link_lookup(ifname=ifname)[0]
            # With its broadcast address, as Docker's (`ip addr` shows "brd").
            broadcast = str(
                ipaddress.IPv4Network(f"{address}/{prefixlen}", strict=False).broadcast_address
            )
            inner.addr(
                "add", index=index, address=address, prefixlen=prefixlen, broadcast=broadcast
            )
            inner.link("set", index=index, state="up")
            if gateway:
                inner.route("add", dst="0.0.0.0/0", gateway=gateway)
    except NetlinkError as exc:
        delete_link(host_name)
        raise _fail("cannot configure", f"{ifname} in {netns_path}", exc) from exc
    except BaseException:
        delete_link(host_name)
        raise


def loopback_up(netns_path: str) -> None:
    with _ipr(netns_path) as inner:
        inner.link("set", index=inner.link_lookup(ifname="lo")[0], state="up")


def container_links(netns_path: str) -> list[str]:
    with _ipr(netns_path) as inner:
        return [link.get_attr("IFLA_IFNAME") for link in inner.get_links()]
