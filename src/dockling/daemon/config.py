"""Daemon configuration: daemon.json (Docker's key names) overlaid by command-line flags."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockling import errors
from dockling.distribution.settings import RegistrySettings
from dockling.network.settings import DEFAULT_POOLS, NetworkSettings

DEFAULT_SOCKET = "unix:///run/dockling/dockling.sock"
DEFAULT_CONFIG = "/etc/dockling/daemon.json"

KNOWN_KEYS = {
    "data-root",
    "exec-root",
    "hosts",
    "pidfile",
    "group",
    "default-runtime",
    "runtimes",
    "log-driver",
    "log-opts",
    "log-level",
    "debug",
    "live-restore",
    "storage-driver",
    "registry-mirrors",
    "insecure-registries",
    "max-concurrent-downloads",
    "proxies",
    "detach-keys",
    "max-concurrent-uploads",
    "max-download-attempts",
    "bip",
    "dns",
    "default-address-pools",
    "ip-masq",
    "iptables",
    # dockling's own: names of the default bridge, the nft table and dockling-made links
    "default-bridge-name",
    "nft-table",
    "link-prefix",
}


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    data_root: Path = Path("/var/lib/dockling")
    exec_root: Path = Path("/run/dockling")
    hosts: tuple[str, ...] = (DEFAULT_SOCKET,)
    pidfile: Path | None = None
    group: str = "dockling"
    default_runtime: str = "runc"
    runtimes: dict[str, str] = field(default_factory=dict)  # name -> binary path
    log_opts: dict[str, str] = field(default_factory=dict)
    log_level: str = "info"
    detach_keys: str = ""
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    network: NetworkSettings = field(default_factory=NetworkSettings)

    @property
    def pid_path(self) -> Path:
        return self.pidfile or self.exec_root / "docklingd.pid"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="docklingd", description="The dockling daemon: runs containers, serves the Engine API."
    )
    parser.add_argument(
        "-H",
        "--host",
        action="append",
        default=None,
        help="daemon socket(s) to listen on (unix:///path or tcp://127.0.0.1:port)",
    )
    parser.add_argument("--data-root", default=None, help="root of persistent state")
    parser.add_argument("--exec-root", default=None, help="root of runtime state")
    parser.add_argument("--config-file", default=DEFAULT_CONFIG, help="daemon configuration file")
    parser.add_argument("-p", "--pidfile", default=None, help="path of the pid file")
    parser.add_argument("-G", "--group", default=None, help="group owning the unix socket")
    parser.add_argument("--default-runtime", default=None, help="OCI runtime for containers")
    parser.add_argument(
        "-l", "--log-level", default=None, choices=["debug", "info", "warn", "error", "fatal"]
    )
    parser.add_argument("-D", "--debug", action="store_true", help="debug logging")
    parser.add_argument("-v", "--version", action="store_true", help="print the version and exit")
    return parser.parse_args(argv)


def load(args: argparse.Namespace) -> DaemonConfig:
    data: dict[str, Any] = {}
    path = Path(args.config_file)
    if path.exists():
        try:
            data = json.loads(path.read_text() or "{}")
        except ValueError as exc:
            raise errors.InvalidParameter(
                f"unable to configure the daemon: {path} is not valid JSON: {exc}"
            ) from None
        if not isinstance(data, dict):
            raise errors.InvalidParameter(
                f"unable to configure the daemon: {path} must hold an object"
            )
        unknown = sorted(set(data) - KNOWN_KEYS)
        if unknown:
            raise errors.InvalidParameter(
                f"unable to configure the daemon: {path}: unknown keys: {', '.join(unknown)}"
            )
    elif args.config_file != DEFAULT_CONFIG:
        raise errors.InvalidParameter(f"unable to configure the daemon: {path} does not exist")
    runtimes = {name: str(v.get("path", name)) for name, v in (data.get("runtimes") or {}).items()}
    log_level = (
        args.log_level
        or data.get("log-level")
        or ("debug" if args.debug or data.get("debug") else "info")
    )
    return DaemonConfig(
        data_root=Path(args.data_root or data.get("data-root") or "/var/lib/dockling"),
        exec_root=Path(args.exec_root or data.get("exec-root") or "/run/dockling"),
        hosts=tuple(args.host or data.get("hosts") or [DEFAULT_SOCKET]),
        pidfile=Path(args.pidfile or data["pidfile"])
        if (args.pidfile or data.get("pidfile"))
        else None,
        group=args.group or data.get("group") or "dockling",
        default_runtime=args.default_runtime or data.get("default-runtime") or "runc",
        runtimes=runtimes,
        log_opts={k: str(v) for k, v in (data.get("log-opts") or {}).items()},
        log_level=log_level,
        detach_keys=data.get("detach-keys") or "",
        registry=registry_settings(data),
        network=network_settings(data),
    )


def network_settings(data: dict[str, Any]) -> NetworkSettings:
    """daemon.json's network keys (bip, default-address-pools, ip-masq, iptables, ...)."""
    import ipaddress

    def fail(message: str) -> errors.InvalidParameter:
        return errors.InvalidParameter(f"unable to configure the daemon: {message}")

    bip = str(data.get("bip") or "")
    if bip:
        try:
            iface = ipaddress.ip_interface(bip)
        except ValueError:
            raise fail(f"invalid bip {bip!r}: expected an address with a prefix") from None
        if "/" not in bip or iface.ip == iface.network.network_address:
            raise fail(f"invalid bip {bip!r}: give the bridge's address, e.g. 172.17.0.1/16")
    pools: tuple[tuple[str, int], ...] = DEFAULT_POOLS
    if data.get("default-address-pools"):
        parsed = []
        for pool in data["default-address-pools"]:
            try:
                base = str(ipaddress.ip_network(pool["base"]))
                size = int(pool["size"])
            except (KeyError, TypeError, ValueError):
                raise fail(f"invalid default-address-pools entry {pool!r}") from None
            parsed.append((base, size))
        pools = tuple(parsed)
    prefix = str(data.get("link-prefix", "dl"))
    if len(prefix) > 4:
        raise fail("link-prefix must be at most 4 characters")
    bridge = str(data.get("default-bridge-name") or "dockling0")
    if len(bridge) > 15:
        raise fail("default-bridge-name must be at most 15 characters")
    dns = data.get("dns") or []
    if not isinstance(dns, list):
        raise fail("dns must be a list of IP addresses")
    for server in dns:
        try:
            ipaddress.IPv4Address(server)
        except ValueError:
            raise fail(f"{server!r} is not an IPv4 address (dns)") from None
    return NetworkSettings(
        dns=tuple(dns),
        default_bridge=bridge,
        bip=bip,
        pools=pools,
        ip_masq=bool(data.get("ip-masq", True)),
        iptables=bool(data.get("iptables", True)),
        nft_table=str(data.get("nft-table") or "dockling"),
        link_prefix=prefix,
    )


def registry_settings(data: dict[str, Any]) -> RegistrySettings:
    """daemon.json's registry keys, with Docker's names and defaults."""
    proxies = data.get("proxies") or {}
    if not isinstance(proxies, dict):
        raise errors.InvalidParameter("unable to configure the daemon: proxies must be an object")

    def count(key: str, default: int) -> int:
        value = data.get(key, default)
        if not isinstance(value, int) or value < 1:
            raise errors.InvalidParameter(
                f"unable to configure the daemon: {key} must be a positive integer"
            )
        return value

    return RegistrySettings(
        mirrors=tuple(str(m).rstrip("/") for m in data.get("registry-mirrors") or ()),
        insecure_registries=tuple(str(r) for r in data.get("insecure-registries") or ()),
        max_concurrent_downloads=count("max-concurrent-downloads", 3),
        max_concurrent_uploads=count("max-concurrent-uploads", 5),
        max_download_attempts=count("max-download-attempts", 5),
        http_proxy=str(proxies.get("http-proxy", "")),
        https_proxy=str(proxies.get("https-proxy", "")),
        no_proxy=str(proxies.get("no-proxy", "")),
    )
