"""ContainerSpec: what the user asked for, validated, before image defaults are applied.

The API layer converts Docker's create body (Config + HostConfig) into these values;
`containers.service` merges the image config into them; `runtime.ocispec` derives the OCI
runtime spec from the result.  Field names follow Docker's JSON names in snake_case.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class MountSpec:
    """One entry of HostConfig.Mounts / Binds / Tmpfs, normalised.

    type is "bind", "volume" or "tmpfs".  For "volume", `source` is the volume name
    (empty for an anonymous volume) until the service resolves it to a host path.
    """

    type: str
    target: str
    source: str = ""
    read_only: bool = False
    propagation: str = ""
    tmpfs_options: tuple[str, ...] = ()
    no_copy: bool = False  # a volume not filled with the image's files at its path


@dataclass(frozen=True, slots=True)
class HealthcheckSpec:
    """Docker's Config.Healthcheck; durations in nanoseconds, 0 meaning "the default".

    `test` is ["NONE"] (disabled), ["CMD", arg...], ["CMD-SHELL", command] or empty
    (inherit the image's).
    """

    test: tuple[str, ...] = ()
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    name: str = "no"  # "no" | "always" | "unless-stopped" | "on-failure"
    maximum_retry_count: int = 0


@dataclass(frozen=True, slots=True)
class Resources:
    memory: int = 0  # bytes; 0 = unlimited
    memory_swap: int = 0  # bytes of memory+swap; -1 = unlimited swap; 0 = unset
    nano_cpus: int = 0  # 1e9 = one CPU
    cpu_shares: int = 0
    cpu_period: int = 0
    cpu_quota: int = 0
    pids_limit: int = 0  # 0 or -1 = unlimited
    cpuset_cpus: str = ""  # "0-3,5": the CPUs the container may run on
    cpuset_mems: str = ""  # the memory nodes it may allocate from
    memory_reservation: int = 0  # bytes: the soft limit


@dataclass(frozen=True, slots=True)
class Ulimit:
    """One `--ulimit name=soft[:hard]` (HostConfig.Ulimits)."""

    name: str  # "nofile", "nproc", ... (RLIMIT_ and upper-cased in the runtime spec)
    soft: int
    hard: int


@dataclass(frozen=True, slots=True)
class DeviceMapping:
    """One `--device host[:container[:permissions]]` (HostConfig.Devices)."""

    path_on_host: str
    path_in_container: str
    permissions: str = "rwm"


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """The Docker create request, typed.  Empty values mean "take the image's"."""

    image: str
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    hostname: str = ""
    domainname: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    attach_stdin: bool = False
    attach_stdout: bool = True
    attach_stderr: bool = True
    stop_signal: str = ""
    stop_timeout: int | None = None
    volumes: tuple[str, ...] = ()  # Config.Volumes: anonymous volume targets asked by the client
    # HostConfig
    mounts: tuple[MountSpec, ...] = ()
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    read_only_rootfs: bool = False
    init: bool = False
    auto_remove: bool = False
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)
    resources: Resources = field(default_factory=Resources)
    network_mode: str = "default"
    runtime: str = ""
    log_config_type: str = "json-file"
    log_config: dict[str, str] = field(default_factory=dict)
    extra_hosts: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    # Published ports, one "HOSTIP:HOSTPORT:CPORT/proto" per HostConfig.PortBindings entry
    # (HOSTIP and HOSTPORT may be empty); checked by `network.ports` at create.
    port_bindings: tuple[str, ...] = ()
    exposed_ports: tuple[str, ...] = ()  # "80/tcp", from Config.ExposedPorts
    publish_all: bool = False
    # The endpoint settings of NetworkingConfig for the network of network_mode.
    ip: str = ""
    aliases: tuple[str, ...] = ()
    mac_address: str = ""
    healthcheck: HealthcheckSpec | None = None
    shm_size: int = 0  # bytes of /dev/shm; 0 = Docker's 64 MiB
    ulimits: tuple[Ulimit, ...] = ()
    devices: tuple[DeviceMapping, ...] = ()
    # Namespaces: "" = the container's own; "host"; "container:<id>" (ipc and pid);
    # ipc also "private", "shareable" (the same here) and "none" (no /dev/shm).
    ipc_mode: str = ""
    pid_mode: str = ""
    uts_mode: str = ""
    cgroupns_mode: str = ""  # "" or "private": its own; "host"
    sysctls: dict[str, str] = field(default_factory=dict)  # namespaced ones only
    group_add: tuple[str, ...] = ()  # supplementary groups, names (from the image) or gids
    volumes_from: tuple[str, ...] = ()  # "container[:ro|rw]": its volumes and binds too
    oom_score_adj: int = 0  # -1000..1000


@dataclass(frozen=True, slots=True)
class ImageDefaults:
    """The parts of an image config that a container inherits."""

    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str = ""
    user: str = ""
    volumes: tuple[str, ...] = ()
    stop_signal: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    healthcheck: HealthcheckSpec | None = None
