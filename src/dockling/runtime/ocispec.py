"""Derive the OCI runtime spec (config.json) of a container: a pure function.

Input is what the user asked (`ContainerSpec`), the process after image defaults were
merged (`ProcessConfig`), the rootfs and extra mounts the caller prepared, and a few
host facts passed as keyword arguments (their defaults read the host once per call, so
tests can pin them).  Output is a JSON-ready dict with Docker's security defaults.
"""

from __future__ import annotations

import os
import platform
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dockling.containers.spec import ContainerSpec, DeviceMapping, Resources, Ulimit
from dockling.errors import InvalidParameter
from dockling.mount import Mount
from dockling.runtime import defaults, seccomp

OCI_VERSION = "1.0.2"
MIN_MEMORY = 6 * 1024 * 1024
CFS_PERIOD = 100_000
NANO = 1_000_000_000


@dataclass(frozen=True, slots=True)
class ProcessConfig:
    """The container's process, resolved: image defaults merged, user looked up."""

    args: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    uid: int
    gid: int
    additional_gids: tuple[int, ...]
    terminal: bool


@dataclass(frozen=True, slots=True)
class SecurityOptions:
    """`--security-opt` values, parsed."""

    no_new_privileges: bool = False
    seccomp: str = ""  # "" = default profile, "unconfined", or a profile file path
    unconfined_paths: bool = False  # systempaths=unconfined


def parse_security_opts(opts: Iterable[str]) -> SecurityOptions:
    """Parse `--security-opt` values; an unknown option raises InvalidParameter."""
    nnp = False
    profile = ""
    unconfined_paths = False
    for opt in opts:
        if opt == "no-new-privileges":
            nnp = True
            continue
        key, sep, value = opt.partition("=")
        if not sep:
            key, sep, value = opt.partition(":")
        if not sep:
            raise InvalidParameter(f'invalid --security-opt 1: "{opt}"')
        if key == "no-new-privileges":
            if value not in ("true", "false"):
                raise InvalidParameter(f"invalid --security-opt 2: {opt!r}")
            nnp = value == "true"
        elif key == "seccomp":
            profile = value
        elif key == "systempaths" and value == "unconfined":
            unconfined_paths = True
        elif key in ("apparmor", "label"):
            # Neither AppArmor nor SELinux is enforced by dockling; accepted like
            # Docker does on a host without them.
            pass
        else:
            raise InvalidParameter(f'invalid --security-opt 2: "{opt}"')
    return SecurityOptions(nnp, profile, unconfined_paths)


def seccomp_profile_path(spec: ContainerSpec) -> str | None:
    """The profile file the caller must load and pass as `seccomp_profile`, if any."""
    name = parse_security_opts(spec.security_opt).seccomp
    return name if name and name != "unconfined" else None


def _normalize_caps(names: Iterable[str]) -> list[str]:
    known = set(defaults.CAPABILITIES)
    out: list[str] = []
    for name in names:
        upper = name.strip().upper()
        if upper == "ALL":
            out.append("ALL")
            continue
        if not upper.startswith("CAP_"):
            upper = "CAP_" + upper
        if upper not in known:
            raise InvalidParameter(f'unknown capability: "{upper}"')
        out.append(upper)
    return out


def capabilities(
    *,
    privileged: bool,
    cap_add: Iterable[str],
    cap_drop: Iterable[str],
    available: Sequence[str],
) -> list[str]:
    """The container's capability set, with Docker's --cap-add/--cap-drop rules.

    `available` is what "ALL" and --privileged mean (the host's bounding set).  Names
    are accepted with or without CAP_, in any case; a drop beats an add unless the drop
    is ALL, in which case only the adds remain.  A default capability the host lacks is
    left out (nested engines); an explicitly added one raises InvalidParameter, since
    the runtime could not grant it.
    """
    adds = _normalize_caps(cap_add)
    drops = _normalize_caps(cap_drop)
    if privileged:
        return list(available)
    for cap in adds:
        if cap != "ALL" and cap not in available:
            raise InvalidParameter(
                f"capability {cap} is not in the daemon's bounding set, "
                "so no container on this host can have it"
            )
    if "ALL" in adds:
        caps = [c for c in available if c not in drops]
    elif "ALL" in drops:
        caps = [c for c in adds if c != "ALL"]
    else:
        caps = [c for c in defaults.DEFAULT_CAPABILITIES if c not in drops and c in available]
        caps += [c for c in adds if c not in drops]
    # Keep order, drop duplicates.
    return list(dict.fromkeys(caps))


def _process_caps(caps: list[str]) -> dict[str, list[str]]:
    # Inheritable and ambient stay empty (Docker 20.10+): exec'ing a file with file
    # capabilities must not grant more than the container's set.
    return {"bounding": list(caps), "effective": list(caps), "permitted": list(caps)}


def container_env(env: Iterable[str], *, hostname: str, tty: bool) -> list[str]:
    """Docker's environment: PATH, HOSTNAME and (with a TTY) TERM, overridden by `env`."""
    base = [f"PATH={defaults.DEFAULT_PATH_ENV}", f"HOSTNAME={hostname}"]
    if tty:
        base.append("TERM=xterm")
    return _replace_or_append(base, env)


def _replace_or_append(base: list[str], extra: Iterable[str]) -> list[str]:
    out = list(base)
    index = {item.partition("=")[0]: i for i, item in enumerate(out)}
    for item in extra:
        key = item.partition("=")[0]
        if key in index:
            out[index[key]] = item
        else:
            index[key] = len(out)
            out.append(item)
    return out


def validate_resources(resources: Resources, *, host_cpus: int) -> None:
    """Reject resource limits Docker rejects, with Docker's messages."""
    r = resources
    if r.memory < 0 or (r.memory and r.memory < MIN_MEMORY):
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    if r.memory_swap > 0 and r.memory == 0:
        raise InvalidParameter(
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        )
    if r.memory > 0 and r.memory_swap > 0 and r.memory_swap < r.memory:
        raise InvalidParameter(
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        )
    if r.nano_cpus and r.cpu_period:
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if r.nano_cpus and r.cpu_quota:
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if r.nano_cpus < 0 or r.nano_cpus > host_cpus * NANO:
        raise InvalidParameter(
            f"Range of CPUs is from 0.01 to {host_cpus}.00, "
            f"as there are only {host_cpus} CPUs available"
        )
    if r.cpu_period and not 1000 <= r.cpu_period <= 1_000_000:
        raise InvalidParameter(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
        )
    if r.cpu_quota > 0 and r.cpu_quota < 1000:
        raise InvalidParameter("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if r.cpu_shares < 0:
        raise InvalidParameter("invalid CPU shares: must not be negative")


def linux_resources(resources: Resources, *, swap_limit: bool = True) -> dict[str, Any]:
    """The OCI `linux.resources` (without devices) for Docker's resource flags.

    --memory-swap is memory plus swap: unset means twice --memory, -1 means unlimited.
    `swap_limit` is false on hosts without swap accounting, where Docker ignores it.
    """
    r = resources
    out: dict[str, Any] = {}
    memory: dict[str, int] = {}
    if r.memory > 0:
        memory["limit"] = r.memory
        if swap_limit:
            if r.memory_swap == 0:
                memory["swap"] = 2 * r.memory
            elif r.memory_swap == -1:
                memory["swap"] = -1
            else:
                memory["swap"] = r.memory_swap
    if r.memory_reservation > 0:
        memory["reservation"] = r.memory_reservation
    if memory:
        out["memory"] = memory
    cpu: dict[str, Any] = {}
    if r.cpu_shares > 0:
        # The kernel's bounds; Docker clamps rather than fails.
        cpu["shares"] = min(max(r.cpu_shares, 2), 262144)
    if r.nano_cpus > 0:
        cpu["period"] = CFS_PERIOD
        cpu["quota"] = r.nano_cpus * CFS_PERIOD // NANO
    else:
        if r.cpu_period > 0:
            cpu["period"] = r.cpu_period
        if r.cpu_quota > 0 or r.cpu_quota == -1:
            cpu["quota"] = r.cpu_quota
    if r.cpuset_cpus:
        cpu["cpus"] = r.cpuset_cpus
    if r.cpuset_mems:
        cpu["mems"] = r.cpuset_mems
    if cpu:
        out["cpu"] = cpu
    if r.pids_limit > 0:
        out["pids"] = {"limit": r.pids_limit}
    return out


def updated_resources(resources: Resources) -> dict[str, Any]:
    """The `linux.resources` for `runc update` to a container's new `resources`: as at
    create, and a pids limit of "max" when there is none (the old one may have been set)."""
    out = linux_resources(resources)
    if resources.pids_limit <= 0:
        out["pids"] = {"limit": -1}
    return out


def _namespaces(
    spec: ContainerSpec, netns_path: str | None, joins: Mapping[str, str]
) -> list[dict[str, str]]:
    """The container's namespaces: its own, none where a mode says "host", or another
    container's (`joins`: type -> /proc/<pid>/ns/<type>)."""
    host = {
        "pid": spec.pid_mode == "host",
        "ipc": spec.ipc_mode == "host",
        "uts": spec.uts_mode == "host",
        "mount": False,
        "cgroup": spec.cgroupns_mode == "host",
    }
    namespaces: list[dict[str, str]] = []
    for kind, shared in host.items():
        if shared:
            continue
        entry = {"type": kind}
        if kind in joins:
            entry["path"] = joins[kind]
        namespaces.append(entry)
    network_mode = spec.network_mode
    if network_mode != "host":
        net: dict[str, str] = {"type": "network"}
        if netns_path:
            net["path"] = netns_path
        namespaces.append(net)
    return namespaces


def _rlimits(
    nofile_limit: tuple[int, int] | None, ulimits: Sequence[Ulimit] = ()
) -> list[dict[str, Any]]:
    """The process's rlimits: `--ulimit`s as given, and NOFILE as the daemon's own.

    No entry means the process inherits runc's limits; the default NOFILE entry must not
    exceed the current hard limit, since raising it needs CAP_SYS_RESOURCE (a `--ulimit`
    above it fails at start, as it does with Docker on such a host).
    """
    limits: dict[str, dict[str, Any]] = {}
    if nofile_limit is not None:
        soft, hard = nofile_limit
        limits["RLIMIT_NOFILE"] = {"type": "RLIMIT_NOFILE", "soft": min(soft, hard), "hard": hard}
    for ulimit in ulimits:
        kind = f"RLIMIT_{ulimit.name.upper()}"
        limits[kind] = {"type": kind, "soft": ulimit.soft, "hard": ulimit.hard}
    return list(limits.values())


def build_spec(
    *,
    container_id: str,
    spec: ContainerSpec,
    process: ProcessConfig,
    rootfs: str,
    mounts: Sequence[Mount],
    hostname: str,
    netns_path: str | None,
    cgroup_parent: str = "/dockling",
    seccomp_profile: dict[str, Any] | None = None,
    nofile_limit: tuple[int, int] | None = None,
    available_caps: Sequence[str] | None = None,
    machine: str | None = None,
    kernel_release: str | None = None,
    swap_limit: bool = True,
    joins: Mapping[str, str] | None = None,
    shm_source: str | None = None,
) -> dict[str, Any]:
    """The OCI runtime spec for one container, with Docker's defaults.

    `mounts` (volumes, binds, /etc/hosts...) are mounted after the default kernel
    filesystems, in order; a default mount whose destination a caller mount takes
    over is left out.  `seccomp_profile` is the loaded content of
    `--security-opt seccomp=<path>` (see `seccomp_profile_path`).  The host facts
    default to this host's: `available_caps` to the bounding set, `machine` and
    `kernel_release` to uname.
    """
    opts = parse_security_opts(spec.security_opt)
    if available_caps is None:
        available_caps = defaults.host_capabilities()
    caps = capabilities(
        privileged=spec.privileged,
        cap_add=spec.cap_add,
        cap_drop=spec.cap_drop,
        available=available_caps,
    )
    joins = joins or {}
    user_dests = {m.target for m in mounts}
    oci_mounts: list[dict[str, Any]] = [
        _shm_mount(m, spec, shm_source) if m["destination"] == "/dev/shm" else m
        for m in defaults.default_mounts(privileged=spec.privileged)
        if m["destination"] not in user_dests
        and not (m["destination"] == "/dev/shm" and spec.ipc_mode == "none")
    ]
    oci_mounts.extend(m.to_oci() for m in mounts)

    proc: dict[str, Any] = {
        "terminal": process.terminal,
        "user": _user(process.uid, process.gid, process.additional_gids),
        "args": list(process.args),
        "env": container_env(process.env, hostname=hostname, tty=process.terminal),
        "cwd": process.cwd or "/",
        "capabilities": _process_caps(caps),
        "noNewPrivileges": opts.no_new_privileges,
        "oomScoreAdj": spec.oom_score_adj,
    }
    rlimits = _rlimits(nofile_limit, spec.ulimits)
    if rlimits:
        proc["rlimits"] = rlimits

    resources = linux_resources(spec.resources, swap_limit=swap_limit)
    resources["devices"] = [
        dict(rule)
        for rule in (
            defaults.PRIVILEGED_DEVICE_RULES if spec.privileged else defaults.DEFAULT_DEVICE_RULES
        )
    ]
    devices = [device_node(d) for d in spec.devices]
    resources["devices"] += [
        {
            "allow": True,
            "type": node["type"],
            "major": node["major"],
            "minor": node["minor"],
            "access": mapping.permissions,
        }
        for mapping, node in zip(spec.devices, devices, strict=True)
    ]
    linux: dict[str, Any] = {
        "namespaces": _namespaces(spec, netns_path, joins),
        "cgroupsPath": f"{cgroup_parent.rstrip('/')}/{container_id}",
        "resources": resources,
    }
    if devices:
        linux["devices"] = devices
    sysctls = {**_private_network_sysctls(spec), **dict(spec.sysctls)}
    if sysctls:
        linux["sysctl"] = sysctls
    if not spec.privileged and not opts.unconfined_paths:
        linux["maskedPaths"] = list(defaults.MASKED_PATHS)
        linux["readonlyPaths"] = list(defaults.READONLY_PATHS)
    profile = _seccomp(spec, opts, seccomp_profile, caps, machine, kernel_release)
    if profile is not None:
        linux["seccomp"] = profile

    oci: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "root": {"path": rootfs, "readonly": spec.read_only_rootfs},
        "hostname": hostname,
        "process": proc,
        "mounts": oci_mounts,
        "linux": linux,
    }
    if spec.uts_mode == "host":
        del oci["hostname"]  # the host's own: without a UTS namespace none can be set
    return oci


def _shm_mount(
    default: dict[str, Any], spec: ContainerSpec, shm_source: str | None
) -> dict[str, Any]:
    """/dev/shm: a tmpfs of --shm-size (64 MiB by default); the host's with --ipc host; a
    tmpfs the daemon mounted on the host (`shm_source`) for a shareable IPC namespace and
    for those who join it, since POSIX shared memory lives in those files."""
    bind_options = ["rbind", "rprivate", "nosuid", "nodev", "noexec"]
    if spec.ipc_mode == "host":
        return {
            "destination": "/dev/shm",
            "type": "bind",
            "source": "/dev/shm",
            "options": bind_options,
        }
    if shm_source is not None:
        return {
            "destination": "/dev/shm",
            "type": "bind",
            "source": shm_source,
            "options": bind_options,
        }
    if spec.shm_size <= 0:
        return default
    options = [o for o in default["options"] if not o.startswith("size=")]
    return {**default, "options": [*options, f"size={spec.shm_size // 1024}k"]}


def device_node(mapping: DeviceMapping) -> dict[str, Any]:
    """The OCI `linux.devices` entry for a `--device`: the host node's type and numbers."""
    try:
        st = os.stat(mapping.path_on_host)
    except OSError as exc:
        raise InvalidParameter(
            f"error gathering device information while adding custom device "
            f"{mapping.path_on_host!r}: {exc.strerror}"
        ) from None
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        raise InvalidParameter(f"{mapping.path_on_host} is not a device node")
    return {
        "path": mapping.path_in_container,
        "type": kind,
        "major": os.major(st.st_rdev),
        "minor": os.minor(st.st_rdev),
        "fileMode": stat.S_IMODE(st.st_mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
    }


def _private_network_sysctls(spec: ContainerSpec) -> dict[str, str]:
    """Docker's defaults for a container in a network namespace of its own: any user may
    bind ports below 1024 and open ICMP echo sockets (ping without CAP_NET_RAW). Not for
    host or container: networking, whose namespace is not the container's to change."""
    mode = spec.network_mode
    if mode == "host" or mode.startswith("container:"):
        return {}
    wanted = {
        "net.ipv4.ping_group_range": "0 2147483647",
        "net.ipv4.ip_unprivileged_port_start": "0",
    }
    return {k: v for k, v in wanted.items() if os.path.exists("/proc/sys/" + k.replace(".", "/"))}


def _user(uid: int, gid: int, additional_gids: Sequence[int]) -> dict[str, Any]:
    user: dict[str, Any] = {"uid": uid, "gid": gid}
    if additional_gids:
        user["additionalGids"] = list(additional_gids)
    return user


def _seccomp(
    spec: ContainerSpec,
    opts: SecurityOptions,
    loaded: dict[str, Any] | None,
    caps: Sequence[str],
    machine: str | None,
    kernel_release: str | None,
) -> dict[str, Any] | None:
    if opts.seccomp == "unconfined":
        return None
    if opts.seccomp:
        if loaded is None:
            raise InvalidParameter(f"seccomp profile {opts.seccomp} was not loaded")
        profile = loaded
    elif spec.privileged:
        # Docker: a privileged container runs without seccomp unless one is named.
        return None
    else:
        profile = seccomp.default_profile()
    return seccomp.compile_profile(
        profile,
        capabilities=caps,
        machine=machine or platform.machine(),
        kernel_release=kernel_release or os.uname().release,
    )


def build_exec_process(
    *,
    args: Sequence[str],
    env: Sequence[str],
    cwd: str,
    uid: int,
    gid: int,
    additional_gids: Sequence[int],
    terminal: bool,
    privileged: bool,
    cap_add: Iterable[str],
    cap_drop: Iterable[str],
    no_new_privileges: bool,
    available_caps: Sequence[str] | None = None,
    nofile_limit: tuple[int, int] | None = None,
    ulimits: Sequence[Ulimit] = (),
) -> dict[str, Any]:
    """process.json for `runc exec --process` (with the container's `ulimits`).

    `env` is the exec's complete environment (the caller merges the container's env
    with the exec's); PATH is added when missing.  `privileged` is the exec's
    --privileged or the container's.  The container's seccomp filter still applies:
    runc takes it from the container's config.
    """
    if available_caps is None:
        available_caps = defaults.host_capabilities()
    caps = capabilities(
        privileged=privileged, cap_add=cap_add, cap_drop=cap_drop, available=available_caps
    )
    full_env = _replace_or_append([f"PATH={defaults.DEFAULT_PATH_ENV}"], env)
    if terminal and not any(e.startswith("TERM=") for e in full_env):
        full_env.append("TERM=xterm")
    proc: dict[str, Any] = {
        "terminal": terminal,
        "user": _user(uid, gid, additional_gids),
        "args": list(args),
        "env": full_env,
        "cwd": cwd or "/",
        "capabilities": _process_caps(caps),
        "noNewPrivileges": no_new_privileges,
    }
    rlimits = _rlimits(nofile_limit, ulimits)
    if rlimits:
        proc["rlimits"] = rlimits
    return proc
