"""`run` and `create` flags, and the pure translation of them into a create body.

`build_create(values, args)` returns the `POST /containers/create` JSON the docker
CLI would send for the same command line; it raises `CreateOptionError` with
docker's wording for values the client itself rejects.
"""

from __future__ import annotations

import os

from dockling import errors
from dockling.cli.flags import FlagSet
from dockling.cli.units import memory_swap, nano_cpus, parse_go_int, ram_in_bytes
from dockling.durations import parse_go_duration

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs every CLI start a few ms: annotations only
    from typing import Any

RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")


class CreateOptionError(Exception):
    """A value docker's client rejects after flag parsing (printed as `dockling: ...`)."""


def add_container_flags(fs: FlagSet, *, run: bool) -> None:
    """Declare the flags shared by run and create (plus run's own when `run`)."""
    if run:
        fs.bool("detach", "d", "Run container in background and print container ID")
        fs.bool("sig-proxy", None, "Proxy received signals to the process", default=True)
        fs.bool("quiet", "q", "Suppress the pull output")
    fs.list("add-host", None, "Add a custom host-to-IP mapping (host:ip)")
    fs.list("attach", "a", "Attach to STDIN, STDOUT or STDERR")
    fs.list("cap-add", None, "Add Linux capabilities")
    fs.list("cap-drop", None, "Drop Linux capabilities")
    fs.value("cgroupns", None, "Cgroup namespace to use (host|private)")
    fs.value("cidfile", None, "Write the container ID to the file")
    fs.value("cpu-shares", "c", "CPU shares (relative weight)", convert=parse_go_int)
    fs.value("cpus", None, "Number of CPUs", convert=nano_cpus)
    fs.value("cpuset-cpus", None, "CPUs in which to allow execution (0-3, 0,1)")
    fs.value("cpuset-mems", None, "MEMs in which to allow execution (0-3, 0,1)")
    fs.value(
        "cpu-period", None, "Limit CPU CFS (Completely Fair Scheduler) period", convert=parse_go_int
    )
    fs.value(
        "cpu-quota", None, "Limit CPU CFS (Completely Fair Scheduler) quota", convert=parse_go_int
    )
    fs.value(
        "oom-score-adj", None, "Tune host's OOM preferences (-1000 to 1000)", convert=parse_go_int
    )
    fs.value("detach-keys", None, "Override the key sequence for detaching a container")
    fs.list("device", None, "Add a host device to the container")
    fs.list("dns", None, "Set custom DNS servers")
    fs.list("dns-option", None, "Set DNS options")
    fs.list("dns-search", None, "Set custom DNS search domains")
    fs.value("domainname", None, "Container NIS domain name")
    fs.value("entrypoint", None, "Overwrite the default ENTRYPOINT of the image")
    fs.list("env", "e", "Set environment variables")
    fs.list("env-file", None, "Read in a file of environment variables")
    fs.list("expose", None, "Expose a port or a range of ports")
    fs.list("group-add", None, "Add additional groups to join")
    fs.value("hostname", "h", "Container host name")
    fs.bool("init", None, "Run an init inside the container")
    fs.bool("interactive", "i", "Keep STDIN open even if not attached")
    fs.value("ipc", None, "IPC mode to use")
    fs.list("label", "l", "Set meta data on a container")
    fs.list("label-file", None, "Read in a line delimited file of labels")
    fs.value("log-driver", None, "Logging driver for the container")
    fs.list("log-opt", None, "Log driver options")
    fs.value("memory", "m", "Memory limit", convert=ram_in_bytes)
    fs.value("memory-reservation", None, "Memory soft limit", convert=ram_in_bytes)
    fs.value("memory-swap", None, "Swap limit equal to memory plus swap", convert=memory_swap)
    fs.list("mount", None, "Attach a filesystem mount to the container")
    fs.value("name", None, "Assign a name to the container")
    fs.value("network", None, "Connect a container to a network", default="default")
    fs.alias("net", "network")
    fs.list("network-alias", None, "Add network-scoped alias for the container")
    fs.alias("net-alias", "network-alias")
    fs.value("ip", None, "IPv4 address (e.g., 172.30.100.104)")
    fs.value("mac-address", None, "Container MAC address (e.g., 92:d0:c6:0a:29:33)")
    fs.value("health-cmd", None, "Command to run to check health")
    fs.value("health-interval", None, "Time between running the check (ms|s|m|h)", convert=duration)
    fs.value(
        "health-retries",
        None,
        "Consecutive failures needed to report unhealthy",
        convert=parse_go_int,
    )
    fs.value(
        "health-start-interval",
        None,
        "Time between running the check during the start period (ms|s|m|h)",
        convert=duration,
    )
    fs.value(
        "health-start-period",
        None,
        "Start period for the container to initialize before "
        "starting health-retries countdown (ms|s|m|h)",
        convert=duration,
    )
    fs.value(
        "health-timeout",
        None,
        "Maximum time to allow one check to run (ms|s|m|h)",
        convert=duration,
    )
    fs.bool("no-healthcheck", None, "Disable any container-specified HEALTHCHECK")
    fs.value("pid", None, "PID namespace to use")
    fs.value(
        "pids-limit", None, "Tune container pids limit (-1 for unlimited)", convert=parse_go_int
    )
    fs.value("platform", None, "Set platform if server is multi-platform capable")
    fs.bool("privileged", None, "Give extended privileges to this container")
    fs.list("publish", "p", "Publish a container's port(s) to the host")
    fs.bool("publish-all", "P", "Publish all exposed ports to random ports")
    fs.value(
        "pull", None, 'Pull image before running ("always", "missing", "never")', default="missing"
    )
    fs.bool("read-only", None, "Mount the container's root filesystem as read only")
    fs.value("restart", None, "Restart policy to apply when a container exits", default="no")
    fs.bool("rm", None, "Automatically remove the container when it exits")
    fs.value("runtime", None, "Runtime to use for this container")
    fs.list("security-opt", None, "Security Options")
    fs.value("shm-size", None, "Size of /dev/shm", convert=ram_in_bytes)
    fs.value("stop-signal", None, "Signal to stop the container")
    fs.value("stop-timeout", None, "Timeout (in seconds) to stop a container", convert=parse_go_int)
    fs.list("sysctl", None, "Sysctl options")
    fs.list("tmpfs", None, "Mount a tmpfs directory")
    fs.bool("tty", "t", "Allocate a pseudo-TTY")
    fs.list("ulimit", None, "Ulimit options")
    fs.value("user", "u", "Username or UID (format: <name|uid>[:<group|gid>])")
    fs.value("userns", None, "User namespace to use")
    fs.value("uts", None, "UTS namespace to use")
    fs.list("volume", "v", "Bind mount a volume")
    fs.list("volumes-from", None, "Mount volumes from the specified container(s)")
    fs.value("workdir", "w", "Working directory inside the container")


# -- helpers ----------------------------------------------------------------------------


def duration(text: str) -> int:
    """A Go duration flag value ("30s", "1m30s") in nanoseconds."""
    try:
        return parse_go_duration(text)
    except errors.InvalidParameter as exc:
        raise ValueError(exc.message) from None


def healthcheck(values: dict[str, Any]) -> dict[str, Any] | None:
    """Config.Healthcheck from the --health-* flags (None when none was given)."""
    numbers = {
        "Interval": values["health_interval"],
        "Timeout": values["health_timeout"],
        "StartPeriod": values["health_start_period"],
        "StartInterval": values["health_start_interval"],
        "Retries": values["health_retries"],
    }
    given = {key: value for key, value in numbers.items() if value is not None}
    if values["no_healthcheck"]:
        if values["health_cmd"] or given:
            raise CreateOptionError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    for key, value in given.items():
        if value < 0:
            flag = {"StartPeriod": "start-period", "StartInterval": "start-interval"}.get(
                key, key.lower()
            )
            raise CreateOptionError(f"--health-{flag} cannot be negative")
    if not values["health_cmd"] and not given:
        return None
    check: dict[str, Any] = (
        {"Test": ["CMD-SHELL", values["health_cmd"]]} if values["health_cmd"] else {}
    )
    check.update(given)
    return check


def _lookup_env(item: str) -> str | None:
    """KEY=VAL as is; bare KEY takes the local value, or stays bare if unset (docker)."""
    if "=" in item:
        return item
    value = os.environ.get(item)
    return f"{item}={value}" if value is not None else item


def environment(values: dict[str, Any]) -> list[str]:
    """KEY=VAL entries of `--env-file` files then `-e` flags (run, create and exec)."""
    env: list[str] = []
    for path in values["env_file"]:
        env.extend(read_kv_file(path, env=True))
    for item in values["env"]:
        looked = _lookup_env(item)
        if looked is not None:
            env.append(looked)
    return env


def read_kv_file(path: str, *, env: bool) -> list[str]:
    """Lines of an --env-file / --label-file: comments and blanks skipped."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        raise CreateOptionError(f"open {path}: no such file or directory") from None
    except OSError as exc:
        raise CreateOptionError(f"open {path}: {exc.strerror}") from None
    out: list[str] = []
    for raw in lines:
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        if any(ch.isspace() for ch in key):
            raise CreateOptionError(f"variable '{key}' contains whitespaces")
        if env and not eq:
            looked = _lookup_env(key)
            if looked is not None and "=" in looked:
                out.append(looked)
            continue
        out.append(f"{key}={value}" if eq else key)
    return out


def parse_device(text: str) -> dict[str, str]:
    """`--device HOST[:CONTAINER][:PERMISSIONS]` (permissions a subset of "rwm")."""
    parts = text.split(":")
    if len(parts) > 3 or not parts[0]:
        raise CreateOptionError(f"invalid device specification: {text}")
    host, container, permissions = parts[0], parts[0], "rwm"
    if len(parts) == 2:
        if parts[1] and not set(parts[1]) - set("rwm"):
            permissions = parts[1]
        elif parts[1]:
            container = parts[1]
    elif len(parts) == 3:
        container, permissions = parts[1] or host, parts[2]
        if not permissions or set(permissions) - set("rwm"):
            raise CreateOptionError(f"invalid device mode: {permissions}")
    return {"PathOnHost": host, "PathInContainer": container, "CgroupPermissions": permissions}


def parse_ulimit(text: str) -> dict[str, Any]:
    """`--ulimit NAME=SOFT[:HARD]` (one number sets both)."""
    name, sep, limits = text.partition("=")
    if not sep or not name:
        raise CreateOptionError(f"invalid ulimit argument: {text}")
    soft_text, _, hard_text = limits.partition(":")
    try:
        soft = int(soft_text)
        hard = int(hard_text) if hard_text else soft
    except ValueError:
        raise CreateOptionError(f"invalid ulimit argument: {text}") from None
    return {"Name": name, "Soft": soft, "Hard": hard}


def parse_labels(items: list[str]) -> dict[str, str]:
    """KEY=VALUE items as a map (a bare KEY maps to ""); labels, sysctls, driver options."""
    labels: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        labels[key] = value
    return labels


def parse_restart(text: str) -> dict[str, Any]:
    """--restart value as a RestartPolicy (docker's client checks plus the daemon's)."""
    if text == "":
        return {"Name": "", "MaximumRetryCount": 0}
    name, colon, count_text = text.partition(":")
    if colon and name == "":
        raise CreateOptionError("invalid restart policy format: no policy provided before colon")
    count = 0
    if count_text:
        try:
            count = int(count_text)
        except ValueError:
            raise CreateOptionError(
                "invalid restart policy format: maximum retry count must be an integer"
            ) from None
    if name not in RESTART_POLICIES:
        raise CreateOptionError(
            f"invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', "
            "'on-failure', or 'unless-stopped'"
        )
    if count and name != "on-failure":
        raise CreateOptionError(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'"
        )
    if count < 0:
        raise CreateOptionError("invalid restart policy: maximum retry count cannot be negative")
    return {"Name": name, "MaximumRetryCount": count}


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


def parse_mount(spec: str) -> dict[str, Any]:
    """One --mount CSV spec as a HostConfig.Mounts entry."""
    mount: dict[str, Any] = {"Type": "volume"}
    bind: dict[str, Any] = {}
    volume: dict[str, Any] = {}
    tmpfs: dict[str, Any] = {}
    for field in spec.split(","):
        if not field:
            continue
        key, eq, value = field.partition("=")
        key = key.strip().lower()
        if not eq:
            if key in ("readonly", "ro"):
                mount["ReadOnly"] = True
                continue
            if key == "volume-nocopy":
                volume["NoCopy"] = True
                continue
            raise ValueError(f"invalid field '{field}' must be a key=value pair")
        if key == "type":
            mount["Type"] = value.lower()
        elif key in ("source", "src"):
            mount["Source"] = value
        elif key in ("target", "dst", "destination"):
            mount["Target"] = value
        elif key in ("readonly", "ro"):
            mount["ReadOnly"] = _parse_bool(value)
        elif key == "consistency":
            mount["Consistency"] = value
        elif key == "bind-propagation":
            bind["Propagation"] = value.lower()
        elif key == "bind-recursive":
            pass  # accepted; recursive binds are the default
        elif key == "volume-nocopy":
            volume["NoCopy"] = _parse_bool(value)
        elif key == "volume-label":
            lk, _, lv = value.partition("=")
            volume.setdefault("Labels", {})[lk] = lv
        elif key == "volume-driver":
            volume.setdefault("DriverConfig", {})["Name"] = value
        elif key == "volume-subpath":
            volume["Subpath"] = value
        elif key == "volume-opt":
            ok, _, ov = value.partition("=")
            volume.setdefault("DriverConfig", {}).setdefault("Options", {})[ok] = ov
        elif key == "tmpfs-size":
            tmpfs["SizeBytes"] = ram_in_bytes(value)
        elif key == "tmpfs-mode":
            try:
                tmpfs["Mode"] = int(value, 8)
            except ValueError:
                raise ValueError(f'strconv.ParseUint: parsing "{value}": invalid syntax') from None
        else:
            raise ValueError(f"unexpected key '{key}' in '{field}'")
    if not mount.get("Target"):
        raise ValueError("target is required")
    if bind:
        mount["BindOptions"] = bind
    if volume:
        mount["VolumeOptions"] = volume
    if tmpfs:
        mount["TmpfsOptions"] = tmpfs
    return mount


def parse_port_spec(spec: str) -> tuple[str, dict[str, str] | None]:
    """`[ip:][hostPort:]containerPort[/proto]` as ("80/tcp", binding or None)."""
    raw, _, proto = spec.partition("/")
    proto = proto or "tcp"
    parts = raw.rsplit(":", 2) if not raw.startswith("[") else [raw]
    container = parts[-1]
    host_port = parts[-2] if len(parts) >= 2 else ""
    host_ip = parts[-3] if len(parts) == 3 else ""
    if not container or not all(p.isdigit() for p in container.split("-", 1)):
        raise CreateOptionError(f"invalid containerPort: {container}")
    if host_port and not all(p.isdigit() for p in host_port.split("-", 1)):
        raise CreateOptionError(f"invalid hostPort: {host_port}")
    for port, what in ((container, "containerPort"), (host_port, "hostPort")):
        if port and not all(0 < int(p) <= 65535 for p in port.split("-", 1)):
            raise CreateOptionError(f"invalid {what}: {port}")
    key = f"{container}/{proto.lower()}"
    if len(parts) == 1:
        return key, None
    return key, {"HostIp": host_ip.strip("[]"), "HostPort": host_port}


# -- the body ---------------------------------------------------------------------------


def build_create(values: dict[str, Any], args: list[str], *, run: bool) -> dict[str, Any]:
    """The create body for parsed flag `values` and positionals `[IMAGE, CMD...]`."""
    image, command = args[0], args[1:]
    detach = bool(values.get("detach")) if run else False
    interactive = bool(values["interactive"])
    attach = [a.lower() for a in values["attach"]]

    env = environment(values)

    labels_list: list[str] = []
    for path in values["label_file"]:
        labels_list.extend(read_kv_file(path, env=False))
    labels_list.extend(values["label"])

    binds: list[str] = []
    volumes: dict[str, dict[str, Any]] = {}
    for spec in values["volume"]:
        if ":" in spec.lstrip(":"):
            binds.append(spec)
        else:
            volumes[spec] = {}

    mounts = [parse_mount(spec) for spec in values["mount"]]

    tmpfs: dict[str, str] = {}
    for spec in values["tmpfs"]:
        path, _, opts = spec.partition(":")
        tmpfs[path] = opts

    exposed: dict[str, dict[str, Any]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in values["expose"]:
        port, _, proto = spec.partition("/")
        exposed[f"{port}/{proto or 'tcp'}"] = {}
    for spec in values["publish"]:
        key, binding = parse_port_spec(spec)
        exposed[key] = {}
        bindings.setdefault(key, []).append(binding or {"HostIp": "", "HostPort": ""})

    restart = parse_restart(values["restart"] or "")
    if values["rm"] and restart["Name"] not in ("", "no"):
        raise CreateOptionError("conflicting options: cannot specify both --restart and --rm")

    log_config: dict[str, Any] = {"Type": values["log_driver"] or "", "Config": {}}
    for opt in values["log_opt"]:
        key, _, value = opt.partition("=")
        log_config["Config"][key] = value

    if attach:
        attach_stdin = "stdin" in attach
        attach_stdout = "stdout" in attach
        attach_stderr = "stderr" in attach
    else:
        attach_stdin = interactive and not detach
        attach_stdout = attach_stderr = not detach
    entrypoint: list[str] | None = None
    if values["entrypoint"] is not None:
        entrypoint = [values["entrypoint"]] if values["entrypoint"] else [""]

    config: dict[str, Any] = {
        "Hostname": values["hostname"] or "",
        "Domainname": values["domainname"] or "",
        "User": values["user"] or "",
        "AttachStdin": attach_stdin,
        "AttachStdout": attach_stdout,
        "AttachStderr": attach_stderr,
        "Tty": bool(values["tty"]),
        "OpenStdin": interactive,
        "StdinOnce": interactive and attach_stdin,
        "Env": env,
        "Cmd": command or None,
        "Image": image,
        "Volumes": volumes or None,
        "WorkingDir": values["workdir"] or "",
        "Entrypoint": entrypoint,
        "Labels": parse_labels(labels_list),
    }
    if exposed:
        config["ExposedPorts"] = exposed
    if values["stop_signal"]:
        config["StopSignal"] = values["stop_signal"]
    if values["stop_timeout"] is not None:
        config["StopTimeout"] = values["stop_timeout"]
    check = healthcheck(values)
    if check is not None:
        config["Healthcheck"] = check

    host: dict[str, Any] = {
        "Binds": binds or None,
        "NetworkMode": values["network"] or "default",
        "PortBindings": bindings or {},
        "RestartPolicy": restart,
        "AutoRemove": bool(values["rm"]),
        "Privileged": bool(values["privileged"]),
        "PublishAllPorts": bool(values["publish_all"]),
        "ReadonlyRootfs": bool(values["read_only"]),
        "CapAdd": values["cap_add"] or None,
        "CapDrop": values["cap_drop"] or None,
        "SecurityOpt": values["security_opt"] or None,
        "LogConfig": log_config,
        "ExtraHosts": [h.replace("=", ":", 1) for h in values["add_host"]] or None,
        "Dns": values["dns"] or [],
        "DnsOptions": values["dns_option"] or [],
        "DnsSearch": values["dns_search"] or [],
        "GroupAdd": values["group_add"] or None,
        "VolumesFrom": values["volumes_from"] or None,
    }
    if mounts:
        host["Mounts"] = mounts
    if tmpfs:
        host["Tmpfs"] = tmpfs
    if values["init"]:
        host["Init"] = True
    if values["runtime"]:
        host["Runtime"] = values["runtime"]
    optional_host = {
        "Memory": "memory",
        "MemorySwap": "memory_swap",
        "MemoryReservation": "memory_reservation",
        "NanoCpus": "cpus",
        "CpuShares": "cpu_shares",
        "CpusetCpus": "cpuset_cpus",
        "CpusetMems": "cpuset_mems",
        "CpuPeriod": "cpu_period",
        "CpuQuota": "cpu_quota",
        "OomScoreAdj": "oom_score_adj",
        "PidsLimit": "pids_limit",
        "ShmSize": "shm_size",
        "IpcMode": "ipc",
        "PidMode": "pid",
        "UTSMode": "uts",
        "UsernsMode": "userns",
        "CgroupnsMode": "cgroupns",
    }
    for api_key, dest in optional_host.items():
        if values[dest] is not None:
            host[api_key] = values[dest]
    if values["sysctl"]:
        host["Sysctls"] = parse_labels(values["sysctl"])
    if values["device"]:
        host["Devices"] = [parse_device(item) for item in values["device"]]
    if values["ulimit"]:
        host["Ulimits"] = [parse_ulimit(item) for item in values["ulimit"]]
    config["HostConfig"] = host
    endpoint: dict[str, Any] = {}
    if values["network_alias"]:
        endpoint["Aliases"] = list(values["network_alias"])
    if values["ip"]:
        endpoint["IPAMConfig"] = {"IPv4Address": values["ip"]}
    if values["mac_address"]:
        endpoint["MacAddress"] = values["mac_address"]
        config["MacAddress"] = values["mac_address"]
    network = values["network"] or "default"
    config["NetworkingConfig"] = {"EndpointsConfig": {network: endpoint} if endpoint else {}}
    return config
