"""Network settings of the daemon (daemon.json's bip, default-address-pools, ip-masq, ...)."""

from __future__ import annotations

from dataclasses import dataclass

# Docker's defaults: /16s of 172.16.0.0/12 (the default bridge takes 172.17) and /20s of
# 192.168.0.0/16.
DEFAULT_POOLS = (("172.16.0.0/12", 16), ("192.168.0.0/16", 20))


@dataclass(frozen=True, slots=True)
class NetworkSettings:
    default_bridge: str = "dockling0"
    bip: str = ""  # gateway/prefix of the default bridge, e.g. "172.17.0.1/16"
    pools: tuple[tuple[str, int], ...] = DEFAULT_POOLS
    ip_masq: bool = True
    # daemon.json's "dns": where the embedded DNS forwards names that are not containers'
    # (empty: the host's /etc/resolv.conf servers).
    dns: tuple[str, ...] = ()
    iptables: bool = True
    nft_table: str = "dockling"
    # Names of dockling-made links start with this, so reconcile never touches others'.
    link_prefix: str = "dl"
