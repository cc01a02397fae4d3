"""Docker-shaped container JSON: the create body into a ContainerSpec, records out to JSON."""

from __future__ import annotations

import datetime as dt
import shlex
from collections.abc import Callable, Mapping
from typing import Any

from dockling import errors
from dockling.containers import health as health_checks, mounts as mount_parsing
from dockling.containers.health import HealthState
from dockling.containers.model import ZERO_TIME, Container, Status
from dockling.containers.spec import (
    ContainerSpec,
    DeviceMapping,
    Resources,
    RestartPolicy,
    Ulimit,
)
from dockling.humanize import human_duration
from dockling.network.service import NetworkService
from dockling.runtime import defaults, ocispec


def network_settings(container: Container, networks: NetworkService | None) -> dict[str, Any]:
    """NetworkSettings of inspect: the sandbox key, published ports and one entry per
    network with its endpoint (address fields empty while the container is not running).
    Without a network service (networking disabled) only the empty shape."""
    settings: dict[str, Any] = {
        "Bridge": "",
        "SandboxID": "",
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": {},
        "SandboxKey": "",
        "Gateway": "",
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "MacAddress": "",
        "EndpointID": "",
        "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None,
        "Networks": {},
    }
    sandbox = networks.sandbox(container.id) if networks is not None else None
    if networks is None or sandbox is None:
        return settings
    settings["SandboxKey"] = sandbox.netns
    settings["SandboxID"] = container.id if sandbox.netns else ""
    ports: dict[str, Any] = dict.fromkeys(container.spec.exposed_ports)
    for mapping in sandbox.ports:
        ports.setdefault(mapping.key, None)
        ports[mapping.key] = [
            *(ports[mapping.key] or []),
            {"HostIp": mapping.host_ip or "0.0.0.0", "HostPort": str(mapping.host_port)},
        ]
    settings["Ports"] = ports
    for attachment in sandbox.attachments:
        try:
            network = networks.get(attachment.network_id)
        except errors.NotFound:
            continue
        endpoint = sandbox.endpoint(network.id)
        entry = {
            "IPAMConfig": {"IPv4Address": attachment.ipv4} if attachment.ipv4 else None,
            "Links": None,
            "Aliases": [*attachment.aliases, container.short_id] if network.user_defined else None,
            "NetworkID": network.id,
            "EndpointID": endpoint.veth if endpoint else "",
            "Gateway": endpoint.gateway if endpoint else "",
            "IPAddress": endpoint.ip if endpoint else "",
            "IPPrefixLen": endpoint.prefixlen if endpoint else 0,
            "IPv6Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "MacAddress": endpoint.mac if endpoint else "",
            "DriverOpts": None,
        }
        settings["Networks"][network.name] = entry
        if network.default_bridge and endpoint is not None:
            for key in ("Gateway", "IPAddress", "IPPrefixLen", "MacAddress"):
                settings[key] = entry[key]
    return settings


def summary_ports(container: Container, networks: NetworkService | None) -> list[dict[str, Any]]:
    """The Ports list of GET /containers/json (none once the container has exited, as
    dockerd clears them at the stop)."""
    if container.state.status in (Status.EXITED, Status.DEAD):
        return []
    sandbox = networks.sandbox(container.id) if networks is not None else None
    published = sandbox.ports if sandbox is not None else []
    result: list[dict[str, Any]] = [
        {
            "IP": m.host_ip or "0.0.0.0",
            "PrivatePort": m.container_port,
            "PublicPort": m.host_port,
            "Type": m.proto,
        }
        for m in published
    ]
    shown = {m.key for m in published}
    for key in container.spec.exposed_ports:
        if key not in shown:
            port, _, proto = key.partition("/")
            if port.isdigit():
                result.append({"PrivatePort": int(port), "Type": proto or "tcp"})
    return result


def _strs(value: Any, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise errors.InvalidParameter(f"{field} must be a list of strings")
    return tuple(value)


def _cmd(value: Any, field: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(shlex.split(value)) if field == "Entrypoint" else ("/bin/sh", "-c", value)
    return _strs(value, field)


def _int(value: Any, field: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise errors.InvalidParameter(f"invalid {field}: {value!r}")
    return int(value)


# POST /containers/{id}/update's fields: Docker's name -> Resources field.  Zero or absent
# keeps the current value (PidsLimit: null keeps it, 0 or -1 means unlimited).
_UPDATABLE = {
    "Memory": "memory",
    "MemorySwap": "memory_swap",
    "NanoCpus": "nano_cpus",
    "CpuShares": "cpu_shares",
    "CpuPeriod": "cpu_period",
    "CpuQuota": "cpu_quota",
    "MemoryReservation": "memory_reservation",
}
_NOT_UPDATABLE = (
    "BlkioWeight",
    "KernelMemory",
    "CpuRealtimePeriod",
    "CpuRealtimeRuntime",
)


def update_from_body(body: Any) -> tuple[dict[str, Any], RestartPolicy | None]:
    """POST /containers/{id}/update's body: the Resources fields to change, and the new
    restart policy if one is given."""
    if not isinstance(body, Mapping):
        raise errors.InvalidParameter("update: the body must be a JSON object")
    for name in _NOT_UPDATABLE:
        if body.get(name):
            raise errors.InvalidParameter(f"{name} is not supported by dockling; leave it unset")
    changes: dict[str, Any] = {
        field: _int(body.get(name), name) for name, field in _UPDATABLE.items() if body.get(name)
    }
    for name, field in (("CpusetCpus", "cpuset_cpus"), ("CpusetMems", "cpuset_mems")):
        if body.get(name):
            changes[field] = str(body[name])
    if body.get("PidsLimit") is not None:
        limit = _int(body.get("PidsLimit"), "PidsLimit")
        changes["pids_limit"] = limit if limit > 0 else -1
    restart = None
    policy = body.get("RestartPolicy")
    if isinstance(policy, Mapping) and policy.get("Name") is not None:
        restart = RestartPolicy(
            name=str(policy.get("Name") or "no"),
            maximum_retry_count=_int(policy.get("MaximumRetryCount"), "restart retries"),
        )
    return changes, restart


def spec_from_create(body: Mapping[str, Any]) -> ContainerSpec:
    """POST /containers/create's body (Config + HostConfig) as a ContainerSpec."""
    if not isinstance(body, Mapping):
        raise errors.InvalidParameter("config cannot be empty in order to create a container")
    image = body.get("Image") or ""
    if not isinstance(image, str) or not image:
        raise errors.InvalidParameter("No image was specified")
    host: Mapping[str, Any] = body.get("HostConfig") or {}
    restart = host.get("RestartPolicy") or {}
    restart_name = restart.get("Name") or "no"
    resources = Resources(
        memory=_int(host.get("Memory"), "memory"),
        memory_swap=_int(host.get("MemorySwap"), "memory-swap"),
        nano_cpus=_int(host.get("NanoCpus"), "cpus"),
        cpu_shares=_int(host.get("CpuShares"), "cpu-shares"),
        cpu_period=_int(host.get("CpuPeriod"), "cpu-period"),
        cpu_quota=_int(host.get("CpuQuota"), "cpu-quota"),
        pids_limit=_int(host.get("PidsLimit"), "pids-limit"),
        cpuset_cpus=str(host.get("CpusetCpus") or ""),
        cpuset_mems=str(host.get("CpusetMems") or ""),
        memory_reservation=_int(host.get("MemoryReservation"), "memory-reservation"),
    )
    _refuse_unsupported(host)
    if resources.memory < 0:
        raise errors.InvalidParameter("invalid value for --memory: must not be negative")
    if resources.nano_cpus < 0:
        raise errors.InvalidParameter("invalid value for --cpus: range of CPUs must be positive")
    mounts = mount_parsing.parse_host_mounts(
        binds=host.get("Binds") or (),
        mounts=host.get("Mounts") or (),
        tmpfs=host.get("Tmpfs") or {},
    )
    log_config = host.get("LogConfig") or {}
    log_type = log_config.get("Type") or "json-file"
    if log_type not in ("json-file", "none", "local"):
        raise errors.InvalidParameter(
            f"logging driver {log_type!r} is not supported: use json-file or none"
        )
    stop_timeout = body.get("StopTimeout")
    endpoint = _endpoint_config(body, host.get("NetworkMode") or "default")
    endpoint_ip = str((endpoint.get("IPAMConfig") or {}).get("IPv4Address") or "")
    return ContainerSpec(
        image=image,
        cmd=_cmd(body.get("Cmd"), "Cmd"),
        entrypoint=_cmd(body.get("Entrypoint"), "Entrypoint"),
        env=_strs(body.get("Env"), "Env"),
        working_dir=body.get("WorkingDir") or "",
        user=body.get("User") or "",
        hostname=body.get("Hostname") or "",
        domainname=body.get("Domainname") or "",
        labels=dict(body.get("Labels") or {}),
        tty=bool(body.get("Tty")),
        open_stdin=bool(body.get("OpenStdin")),
        stdin_once=bool(body.get("StdinOnce")),
        attach_stdin=bool(body.get("AttachStdin")),
        attach_stdout=bool(body.get("AttachStdout", True)),
        attach_stderr=bool(body.get("AttachStderr", True)),
        stop_signal=body.get("StopSignal") or "",
        stop_timeout=int(stop_timeout) if stop_timeout is not None else None,
        volumes=mount_parsing.parse_config_volumes(sorted((body.get("Volumes") or {}).keys())),
        mounts=mounts,
        privileged=bool(host.get("Privileged")),
        cap_add=_strs(host.get("CapAdd"), "CapAdd"),
        cap_drop=_strs(host.get("CapDrop"), "CapDrop"),
        security_opt=_strs(host.get("SecurityOpt"), "SecurityOpt"),
        read_only_rootfs=bool(host.get("ReadonlyRootfs")),
        init=bool(host.get("Init")),
        auto_remove=bool(host.get("AutoRemove")),
        restart_policy=RestartPolicy(
            name=restart_name,
            maximum_retry_count=_int(restart.get("MaximumRetryCount"), "restart retries"),
        ),
        resources=resources,
        network_mode=host.get("NetworkMode") or "default",
        runtime=host.get("Runtime") or "",
        log_config_type=log_type,
        log_config=dict(log_config.get("Config") or {}),
        extra_hosts=_strs(host.get("ExtraHosts"), "ExtraHosts"),
        dns=_strs(host.get("Dns"), "Dns"),
        dns_search=_strs(host.get("DnsSearch"), "DnsSearch"),
        dns_options=_strs(host.get("DnsOptions"), "DnsOptions"),
        port_bindings=_port_bindings(host.get("PortBindings")),
        exposed_ports=tuple(sorted(_port_key(k) for k in (body.get("ExposedPorts") or {}))),
        publish_all=bool(host.get("PublishAllPorts")),
        ip=endpoint_ip,
        aliases=_strs(endpoint.get("Aliases"), "Aliases"),
        mac_address=body.get("MacAddress") or endpoint.get("MacAddress") or "",
        healthcheck=health_checks.healthcheck_from_docker(body.get("Healthcheck")),
        shm_size=_int(host.get("ShmSize"), "shm-size"),
        ulimits=_ulimits(host.get("Ulimits")),
        devices=_devices(host.get("Devices")),
        ipc_mode=_mode(host.get("IpcMode"), "IPC", IPC_MODES, joinable=True),
        pid_mode=_mode(host.get("PidMode"), "PID", ("host",), joinable=True),
        uts_mode=_mode(host.get("UTSMode"), "UTS", ("host",)),
        cgroupns_mode=_mode(host.get("CgroupnsMode"), "cgroup namespace", ("private", "host")),
        sysctls=_sysctls(host),
        group_add=_strs(host.get("GroupAdd"), "GroupAdd"),
        volumes_from=_strs(host.get("VolumesFrom"), "VolumesFrom"),
        oom_score_adj=_oom_score_adj(host.get("OomScoreAdj")),
    )


def _oom_score_adj(value: Any) -> int:
    score = _int(value, "oom-score-adj")
    if not -1000 <= score <= 1000:
        raise errors.InvalidParameter(
            f"Invalid value {score}, range for oom score adj is [-1000, 1000]"
        )
    return score


_IPC_SYSCTLS = frozenset(
    {
        "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
        "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
    }
)  # fmt: skip


def _sysctls(host: Mapping[str, Any]) -> dict[str, str]:
    """--sysctl: only those of a namespace the container has its own of (runc's rule)."""
    value = host.get("Sysctls") or {}
    if not isinstance(value, Mapping):
        raise errors.InvalidParameter("Sysctls must be an object of strings")
    own_ipc = (host.get("IpcMode") or "") not in ("host",)
    own_net = (host.get("NetworkMode") or "default") != "host" and not str(
        host.get("NetworkMode") or ""
    ).startswith("container:")
    for key in value:
        ipc = key in _IPC_SYSCTLS or key.startswith("fs.mqueue.")
        if (ipc and own_ipc) or (key.startswith("net.") and own_net):
            continue
        raise errors.InvalidParameter(f'sysctl "{key}" is not in a separate kernel namespace')
    return {str(k): str(v) for k, v in value.items()}


IPC_MODES = ("private", "shareable", "host", "none")


def _mode(value: Any, what: str, known: tuple[str, ...], *, joinable: bool = False) -> str:
    """A namespace mode: "", one of `known`, or (`joinable`) "container:<name|id>"."""
    mode = str(value or "")
    if mode and mode not in known:
        target = mode.partition(":")[2] if mode.startswith("container:") else ""
        if not (joinable and target):
            raise errors.InvalidParameter(f"invalid {what} mode: {mode}")
    return mode


def _refuse_unsupported(host: Mapping[str, Any]) -> None:
    """HostConfig settings dockling cannot honour: refused by name, never ignored."""
    userns = host.get("UsernsMode") or ""
    if userns not in ("", "host"):
        raise errors.InvalidParameter(
            f"user namespace mode {userns!r} is not supported: dockling runs containers "
            "without user remapping (leave --userns unset or use host)"
        )
    for name in _UNSUPPORTED_HOST_CONFIG:
        if host.get(name):
            raise errors.InvalidParameter(_unsupported(name))
    swappiness = host.get("MemorySwappiness")
    if swappiness is not None and swappiness != -1:
        raise errors.InvalidParameter(_unsupported("MemorySwappiness"))


_FLAGS = {
    "BlkioWeight": "--blkio-weight",
    "OomKillDisable": "--oom-kill-disable",
    "KernelMemory": "--kernel-memory",
    "CgroupParent": "--cgroup-parent",
    "DeviceCgroupRules": "--device-cgroup-rule",
    "DeviceRequests": "--gpus",
    "Links": "--link (use a user-defined network: its DNS resolves container names)",
    "MemorySwappiness": "--memory-swappiness",
    "StorageOpt": "--storage-opt",
}


def _unsupported(name: str) -> str:
    flag = f" ({_FLAGS[name]})" if name in _FLAGS else ""
    return f"{name}{flag} is not supported by dockling; leave it unset"


# HostConfig settings a client may send that dockling does not implement: refusing them
# beats running the container without what was asked.
_UNSUPPORTED_HOST_CONFIG = (
    "BlkioWeight",
    "BlkioWeightDevice",
    "BlkioDeviceReadBps",
    "BlkioDeviceWriteBps",
    "BlkioDeviceReadIOps",
    "BlkioDeviceWriteIOps",
    "OomKillDisable",
    "KernelMemory",
    "KernelMemoryTCP",
    "CpuRealtimePeriod",
    "CpuRealtimeRuntime",
    "CgroupParent",
    "DeviceCgroupRules",
    "DeviceRequests",
    "Links",
    "StorageOpt",
    "CpuCount",
    "CpuPercent",
    "IOMaximumIOps",
    "IOMaximumBandwidth",
)


def _ulimits(value: Any) -> tuple[Ulimit, ...]:
    if not value:
        return ()
    if not isinstance(value, list):
        raise errors.InvalidParameter("Ulimits must be a list of {Name, Soft, Hard}")
    found: dict[str, Ulimit] = {}
    for item in value:
        if not isinstance(item, Mapping) or not item.get("Name"):
            raise errors.InvalidParameter("Ulimits must be a list of {Name, Soft, Hard}")
        name = str(item["Name"]).lower()
        if name not in ULIMIT_NAMES:
            raise errors.InvalidParameter(f"invalid ulimit type: {name}")
        soft, hard = _int(item.get("Soft"), "ulimit"), _int(item.get("Hard"), "ulimit")
        if soft > hard and hard != -1:
            raise errors.InvalidParameter(
                f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            )
        found[name] = Ulimit(name, soft, hard)
    return tuple(found.values())


ULIMIT_NAMES = frozenset(
    {
        "as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue",
        "nice", "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
    }
)  # fmt: skip


def _devices(value: Any) -> tuple[DeviceMapping, ...]:
    if not value:
        return ()
    if not isinstance(value, list):
        raise errors.InvalidParameter("Devices must be a list of device mappings")
    devices = []
    for item in value:
        if not isinstance(item, Mapping) or not item.get("PathOnHost"):
            raise errors.InvalidParameter("a device mapping needs PathOnHost")
        permissions = str(item.get("CgroupPermissions") or "rwm")
        if not permissions or set(permissions) - set("rwm"):
            raise errors.InvalidParameter(f"invalid device cgroup permissions: {permissions}")
        host_path = str(item["PathOnHost"])
        devices.append(
            DeviceMapping(host_path, str(item.get("PathInContainer") or host_path), permissions)
        )
    return tuple(devices)


def _port_key(key: Any) -> str:
    if not isinstance(key, str):
        raise errors.InvalidParameter(f"invalid port: {key!r}")
    return key if "/" in key else f"{key}/tcp"


def _port_bindings(value: Any) -> tuple[str, ...]:
    """HostConfig.PortBindings ({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}) flattened."""
    if not value:
        return ()
    if not isinstance(value, Mapping):
        raise errors.InvalidParameter("PortBindings must be an object")
    entries = []
    for key, bindings in value.items():
        for binding in bindings or [{}]:
            host_ip = str((binding or {}).get("HostIp") or "")
            host_port = str((binding or {}).get("HostPort") or "")
            entries.append(f"{host_ip}:{host_port}:{_port_key(key)}")
    return tuple(entries)


def _endpoint_config(body: Mapping[str, Any], network_mode: str) -> Mapping[str, Any]:
    """NetworkingConfig.EndpointsConfig's entry for the container's network."""
    endpoints = (body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
    if not isinstance(endpoints, Mapping):
        raise errors.InvalidParameter("NetworkingConfig.EndpointsConfig must be an object")
    if network_mode in endpoints:
        return endpoints[network_mode] or {}
    if len(endpoints) == 1:
        return next(iter(endpoints.values())) or {}
    return {}


def _command(container: Container) -> str:
    parts = [container.process.path, *container.process.args]
    return " ".join(parts)


def status_text(container: Container, health: HealthState | None = None) -> str:
    """Docker's human status: "Up 2 minutes (healthy)", "Exited (0) 3 seconds ago", "Created"."""
    state = container.state
    now = dt.datetime.now(dt.UTC)
    if state.status in (Status.RUNNING, Status.PAUSED):
        text = f"Up {_duration(now - _parse_time(state.started_at))}"
        if state.status is Status.PAUSED:
            return text + " (Paused)"
        if health is not None:
            label = "health: starting" if health.status == health_checks.STARTING else health.status
            text += f" ({label})"
        return text
    if state.status is Status.RESTARTING:
        ago = _duration(now - _parse_time(state.finished_at))
        return f"Restarting ({state.exit_code}) {ago} ago"
    if state.status is Status.EXITED:
        if state.finished_at == ZERO_TIME:
            return "Created"
        ago = _duration(now - _parse_time(state.finished_at))
        return f"Exited ({state.exit_code}) {ago} ago"
    if state.status is Status.REMOVING:
        return "Removal In Progress"
    if state.status is Status.DEAD:
        return "Dead"
    return "Created"


def _parse_time(value: str) -> dt.datetime:
    text = value.rstrip("Z")
    if "." in text:
        head, frac = text.split(".", 1)
        text = f"{head}.{frac[:6]}"
    try:
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
    except ValueError:
        return dt.datetime.now(dt.UTC)


def _duration(delta: dt.timedelta) -> str:
    return human_duration(delta.total_seconds())


def _unix(value: str) -> int:
    return int(_parse_time(value).timestamp())


def summary(
    container: Container,
    mounts_json: list[dict[str, Any]],
    size: tuple[int, int] | None = None,
    *,
    networks: NetworkService | None,
    health: HealthState | None = None,
) -> dict[str, Any]:
    """One entry of GET /containers/json."""
    data: dict[str, Any] = {
        "Id": container.id,
        "Names": [f"/{container.name}"],
        "Image": container.image_ref,
        "ImageID": container.image_id,
        "Command": _command(container),
        "Created": _unix(container.created),
        "Ports": summary_ports(container, networks),
        "Labels": dict(container.spec.labels),
        "State": container.state.status.value,
        "Status": status_text(container, health),
        "HostConfig": {"NetworkMode": container.spec.network_mode},
        "NetworkSettings": {"Networks": network_settings(container, networks)["Networks"]},
        "Mounts": mounts_json,
    }
    if size is not None:
        data["SizeRw"], data["SizeRootFs"] = size
    return data


def inspect(
    container: Container,
    *,
    mounts_json: list[dict[str, Any]],
    log_path: str,
    data_dir: str,
    graph: Mapping[str, str],
    networks: NetworkService | None,
    health: HealthState | None = None,
) -> dict[str, Any]:
    """GET /containers/{id}/json."""
    spec = container.spec
    state = container.state
    res = spec.resources
    data: dict[str, Any] = {
        "Id": container.id,
        "Created": container.created,
        "Path": container.process.path,
        "Args": list(container.process.args),
        "State": {
            "Status": state.status.value,
            "Running": state.status in (Status.RUNNING, Status.PAUSED),
            "Paused": state.status is Status.PAUSED,
            "Restarting": state.status is Status.RESTARTING,
            "OOMKilled": state.oom_killed,
            "Dead": state.status is Status.DEAD,
            "Pid": state.pid,
            "ExitCode": state.exit_code,
            "Error": state.error,
            "StartedAt": state.started_at,
            "FinishedAt": state.finished_at,
        },
        "Image": container.image_id,
        "ResolvConfPath": f"{data_dir}/resolv.conf",
        "HostnamePath": f"{data_dir}/hostname",
        "HostsPath": f"{data_dir}/hosts",
        "LogPath": log_path,
        "Name": f"/{container.name}",
        "RestartCount": container.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": list(container.exec_ids) or None,
        "HostConfig": {
            "Binds": [
                f"{m.source}:{m.target}{':ro' if m.read_only else ''}"
                for m in spec.mounts
                if m.type in ("bind", "volume") and m.source
            ]
            or None,
            "ContainerIDFile": "",
            "LogConfig": {"Type": spec.log_config_type, "Config": dict(spec.log_config)},
            "NetworkMode": spec.network_mode,
            "PortBindings": _inspect_port_bindings(spec.port_bindings),
            "PublishAllPorts": spec.publish_all,
            "DnsSearch": list(spec.dns_search),
            "DnsOptions": list(spec.dns_options),
            "RestartPolicy": {
                "Name": spec.restart_policy.name,
                "MaximumRetryCount": spec.restart_policy.maximum_retry_count,
            },
            "AutoRemove": spec.auto_remove,
            "VolumeDriver": "",
            "VolumesFrom": list(spec.volumes_from) or None,
            "GroupAdd": list(spec.group_add) or None,
            "OomScoreAdj": spec.oom_score_adj,
            # What dockling does not implement, in Docker's shape with Docker's defaults
            # (a client sending anything else is refused at create).
            "BlkioWeight": 0,
            "BlkioWeightDevice": [],
            "BlkioDeviceReadBps": None,
            "BlkioDeviceWriteBps": None,
            "BlkioDeviceReadIOps": None,
            "BlkioDeviceWriteIOps": None,
            "Cgroup": "",
            "CgroupParent": "",
            "ConsoleSize": [0, 0],
            "CpuCount": 0,
            "CpuPercent": 0,
            "CpuRealtimePeriod": 0,
            "CpuRealtimeRuntime": 0,
            "DeviceCgroupRules": None,
            "DeviceRequests": None,
            "IOMaximumBandwidth": 0,
            "IOMaximumIOps": 0,
            "Isolation": "",
            "KernelMemoryTCP": 0,
            "Links": None,
            "MemorySwappiness": None,
            "OomKillDisable": False,
            "UsernsMode": "",
            "MaskedPaths": masked_paths(spec),
            "ReadonlyPaths": readonly_paths(spec),
            "CapAdd": list(spec.cap_add) or None,
            "CapDrop": list(spec.cap_drop) or None,
            "Dns": list(spec.dns),
            "ExtraHosts": list(spec.extra_hosts) or None,
            "Init": spec.init,
            "Privileged": spec.privileged,
            "ReadonlyRootfs": spec.read_only_rootfs,
            "SecurityOpt": list(spec.security_opt) or None,
            "Tmpfs": {m.target: ",".join(m.tmpfs_options) for m in spec.mounts if m.type == "tmpfs"}
            or None,
            "Runtime": container.runtime,
            "Memory": res.memory,
            "MemorySwap": res.memory_swap,
            "NanoCpus": res.nano_cpus,
            "CpuShares": res.cpu_shares,
            "CpuPeriod": res.cpu_period,
            "CpuQuota": res.cpu_quota,
            "PidsLimit": res.pids_limit or None,
            "CpusetCpus": res.cpuset_cpus,
            "CpusetMems": res.cpuset_mems,
            "MemoryReservation": res.memory_reservation,
            "ShmSize": spec.shm_size or 64 * 1024 * 1024,
            "IpcMode": spec.ipc_mode or "private",
            "PidMode": spec.pid_mode,
            "UTSMode": spec.uts_mode,
            "CgroupnsMode": spec.cgroupns_mode or "private",
            "Sysctls": dict(spec.sysctls) or None,
            "Ulimits": [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in spec.ulimits]
            or None,
            "Devices": [
                {
                    "PathOnHost": d.path_on_host,
                    "PathInContainer": d.path_in_container,
                    "CgroupPermissions": d.permissions,
                }
                for d in spec.devices
            ],
            "Mounts": [
                {"Type": m.type, "Source": m.source, "Target": m.target, "ReadOnly": m.read_only}
                for m in spec.mounts
                if (m.type in ("bind", "volume") and not m.source.startswith("/"))
                or m.type == "tmpfs"
            ]
            or None,
        },
        "GraphDriver": {"Name": "overlay2", "Data": dict(graph)},
        "Mounts": mounts_json,
        "Config": {
            "Hostname": container.hostname,
            "Domainname": spec.domainname,
            "User": container.process.user,
            "AttachStdin": spec.attach_stdin,
            "AttachStdout": spec.attach_stdout,
            "AttachStderr": spec.attach_stderr,
            "Tty": spec.tty,
            "OpenStdin": spec.open_stdin,
            "StdinOnce": spec.stdin_once,
            "Env": list(container.process.env),
            "Cmd": list(spec.cmd) if spec.cmd is not None else _image_cmd(container),
            "Image": container.image_ref,
            "Volumes": {m.target: {} for m in container.mounts if m.type == "volume"} or None,
            "WorkingDir": spec.working_dir,
            "Entrypoint": list(spec.entrypoint) if spec.entrypoint is not None else None,
            "OnBuild": None,
            "Labels": dict(spec.labels),
            "ExposedPorts": {key: {} for key in spec.exposed_ports} or None,
            "StopSignal": spec.stop_signal or None,
            "StopTimeout": spec.stop_timeout,
        },
        "NetworkSettings": network_settings(container, networks),
    }
    if spec.healthcheck is not None:
        data["Config"]["Healthcheck"] = health_checks.healthcheck_to_docker(spec.healthcheck)
    if health is not None:
        data["State"]["Health"] = health.to_docker()
    return data


def _inspect_port_bindings(entries: tuple[str, ...]) -> dict[str, list[dict[str, str]]]:
    result: dict[str, list[dict[str, str]]] = {}
    for entry in entries:
        host_ip, host_port, key = entry.rsplit(":", 2)
        result.setdefault(key, []).append({"HostIp": host_ip, "HostPort": host_port})
    return result


def _image_cmd(container: Container) -> list[str]:
    return [container.process.path, *container.process.args]


MountsJson = Callable[[Container], list[dict[str, Any]]]


def masked_paths(spec: ContainerSpec) -> list[str]:
    """The paths hidden from the container, as the runtime spec masks them."""
    if spec.privileged or ocispec.parse_security_opts(spec.security_opt).unconfined_paths:
        return []
    return list(defaults.MASKED_PATHS)


def readonly_paths(spec: ContainerSpec) -> list[str]:
    if spec.privileged or ocispec.parse_security_opts(spec.security_opt).unconfined_paths:
        return []
    return list(defaults.READONLY_PATHS)
