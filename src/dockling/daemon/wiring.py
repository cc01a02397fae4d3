"""The composition root: builds the stores and services and picks drivers by name."""

from __future__ import annotations

import ipaddress
import os
import platform
import shutil
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dockling import API_VERSION, MIN_API_VERSION, __version__, errors
from dockling.api import errors as api_errors
from dockling.api.backend import Backend
from dockling.api.http import HttpServer, Router
from dockling.api.routes import (
    build as build_routes,
    container_files,
    containers,
    distribution,
    execs,
    image_archive,
    images,
    networks,
    system,
    volumes,
)
from dockling.containers.execs import ExecService
from dockling.containers.launcher import Launcher, LogDefaults, parse_size
from dockling.containers.service import ContainerService
from dockling.containers.store import ContainerStore
from dockling.daemon.config import DaemonConfig
from dockling.distribution.service import DistributionService
from dockling.events.bus import EventBus
from dockling.images.store import ImageService
from dockling.network.firewall import NftFirewall
from dockling.network.service import NetworkService
from dockling.runtime.runc import OciRuntime
from dockling.runtime.shim import find_shim_binary
from dockling.volumes.local import LocalVolumeStore

KNOWN_RUNTIMES = ("runc", "crun")


def build_runtimes(config: DaemonConfig) -> dict[str, OciRuntime]:
    runtimes: dict[str, OciRuntime] = {}
    wanted = dict.fromkeys(KNOWN_RUNTIMES, "")
    wanted.update(config.runtimes)
    for name, path in wanted.items():
        binary = path or shutil.which(name)
        if binary and os.path.exists(binary):
            root = str(config.exec_root / "runtime" / name)
            runtimes[name] = OciRuntime(name, binary, root)
    if config.default_runtime not in runtimes:
        raise errors.Unavailable(
            f"default runtime {config.default_runtime!r} was not found: install it "
            f"(apt-get install {config.default_runtime}) or set default-runtime in daemon.json"
        )
    return runtimes


def build(config: DaemonConfig, runtime_versions: dict[str, str]) -> tuple[HttpServer, Backend]:
    data_root = config.data_root
    events = EventBus()
    image_service = ImageService(data_root)
    volume_store = LocalVolumeStore(data_root / "volumes")
    runtimes = build_runtimes(config)
    log_defaults = LogDefaults(
        max_size=parse_size(config.log_opts["max-size"]) if "max-size" in config.log_opts else 0,
        max_file=int(config.log_opts.get("max-file", "1")),
    )
    launcher = Launcher(
        data_root=data_root,
        exec_root=config.exec_root,
        snapshotter=image_service.snapshotter(),
        runtimes=runtimes,
        default_runtime=config.default_runtime,
        shim_binary=find_shim_binary(),
        log_defaults=log_defaults,
    )
    network_service = NetworkService(
        root=data_root / "network",
        netns_dir=config.exec_root / "netns",
        settings=config.network,
        firewall=NftFirewall(config.network.nft_table),
        events=events,
    )
    container_service = ContainerService(
        store=ContainerStore(data_root / "containers"),
        images=image_service,
        volumes=volume_store,
        launcher=launcher,
        events=events,
        networks=network_service,
    )
    exec_service = ExecService(container_service, config.exec_root)
    distribution_service = DistributionService(image_service, config.registry)
    backend = Backend(
        containers=container_service,
        execs=exec_service,
        images=image_service,
        volumes=volume_store,
        events=events,
        launcher=launcher,
        distribution=distribution_service,
        networks=network_service,
        info=lambda: info(config, backend, runtime_versions),
        version=lambda: version(runtime_versions),
        detach_keys=config.detach_keys,
    )
    router = Router()
    for module in (
        system,
        containers,
        execs,
        images,
        volumes,
        distribution,
        image_archive,
        container_files,
        networks,
        build_routes,
    ):
        module.register(router, backend)
    server = HttpServer(router, api_errors.error_response, server_header=f"dockling/{__version__}")
    return server, backend


def version(runtime_versions: dict[str, str]) -> dict[str, Any]:
    uname = platform.uname()
    components = [
        {"Name": "Engine", "Version": __version__, "Details": {"ApiVersion": API_VERSION}},
    ]
    for name, text in runtime_versions.items():
        components.append({"Name": name, "Version": text, "Details": {}})
    return {
        "Platform": {"Name": "dockling"},
        "Components": components,
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": f"python{platform.python_version()}",
        "Os": "linux",
        "Arch": _arch(),
        "KernelVersion": uname.release,
        "BuildTime": "",
    }


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _memory_total() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def cgroup_layout() -> tuple[str, str]:
    """(driver, version): "cgroupfs" with "1" on v1 or hybrid hosts, "2" on unified ones."""
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return "cgroupfs", "2"
    return "cgroupfs", "1"


def info(
    config: DaemonConfig, backend: Backend, runtime_versions: dict[str, str]
) -> dict[str, Any]:
    containers = backend.containers.list()
    running = sum(1 for c in containers if c.state.status.value == "running")
    paused = sum(1 for c in containers if c.state.status.value == "paused")
    uname = platform.uname()
    driver, cg_version = cgroup_layout()
    proxies = config.registry.proxies()
    return {
        "ID": _daemon_id(config.data_root),
        "Containers": len(containers),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": len(containers) - running - paused,
        "Images": len(backend.images.list()),
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
        "Plugins": {
            "Volume": ["local"],
            "Network": ["bridge", "host", "null"],
            "Authorization": None,
            "Log": ["json-file"],
        },
        "MemoryLimit": True,
        "SwapLimit": os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"),
        "CpuCfsPeriod": True,
        "CpuCfsQuota": True,
        "CPUShares": True,
        "PidsLimit": True,
        "IPv4Forwarding": True,
        "Debug": config.log_level == "debug",
        "NFd": len(os.listdir("/proc/self/fd")),
        "NGoroutines": 0,
        "SystemTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "LoggingDriver": "json-file",
        "CgroupDriver": driver,
        "CgroupVersion": cg_version,
        "NEventsListener": 0,
        "KernelVersion": uname.release,
        "OperatingSystem": _os_name(),
        "OSType": "linux",
        "OSVersion": "",
        "Architecture": uname.machine,
        "NCPU": os.cpu_count() or 1,
        "MemTotal": _memory_total(),
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": registry_config(config),
        "DockerRootDir": str(config.data_root),
        "HttpProxy": proxies[0],
        "HttpsProxy": proxies[1],
        "NoProxy": proxies[2],
        "Name": socket.gethostname(),
        "Labels": [],
        "ExperimentalBuild": False,
        "ServerVersion": __version__,
        "Runtimes": {name: {"path": rt.binary} for name, rt in backend.launcher.runtimes.items()},
        "DefaultRuntime": config.default_runtime,
        "Swarm": {
            "LocalNodeState": "inactive",
            "NodeID": "",
            "NodeAddr": "",
            "ControlAvailable": False,
            "Error": "",
            "RemoteManagers": None,
        },
        "LiveRestoreEnabled": True,
        "Isolation": "",
        "InitBinary": "",
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "Warnings": [],
    }


def registry_config(config: DaemonConfig) -> dict[str, Any]:
    """Docker's RegistryConfig: CIDRs apart from insecure registry names (the docker CLI
    parses every InsecureRegistryCIDRs entry as a CIDR)."""
    cidrs = ["127.0.0.0/8"]
    index_configs: dict[str, Any] = {
        "docker.io": {
            "Name": "docker.io",
            "Mirrors": list(config.registry.mirrors),
            "Secure": True,
            "Official": True,
        }
    }
    for entry in config.registry.insecure_registries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            index_configs[entry] = {
                "Name": entry,
                "Mirrors": [],
                "Secure": False,
                "Official": False,
            }
        else:
            cidrs.append(entry)
    return {
        "AllowNondistributableArtifactsCIDRs": [],
        "AllowNondistributableArtifactsHostnames": [],
        "InsecureRegistryCIDRs": cidrs,
        "IndexConfigs": index_configs,
        "Mirrors": list(config.registry.mirrors),
    }


def _daemon_id(data_root: Path) -> str:
    path = data_root / "engine-id"
    if not path.exists():
        from dockling.ids import generate_id

        path.write_text(generate_id())
    return path.read_text().strip()


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return "Linux"


Factory = Callable[[], Any]
