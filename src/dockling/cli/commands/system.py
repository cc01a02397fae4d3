"""System commands: version, info, events."""

from __future__ import annotations

import platform
import sys

from dockling.cli.context import CLIError, Context
from dockling.cli.flags import FlagSet
from dockling.client.transport import APIError, DaemonUnreachable

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs every CLI start a few ms: annotations only
    from typing import Any


def client_version() -> dict[str, Any]:
    from dockling import API_VERSION, __version__

    machine = platform.machine()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
    return {
        "Platform": {"Name": ""},
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "DefaultAPIVersion": API_VERSION,
        "GitCommit": "",
        "GoVersion": "python" + platform.python_version(),
        "Os": "linux",
        "Arch": arch,
        "BuildTime": "",
        "Context": "default",
    }


def _template_out(fmt: str, data: Any) -> None:
    from dockling.cli.template import Template, TemplateError

    try:
        sys.stdout.write(Template(fmt).render(data) + "\n")
    except TemplateError as exc:
        raise CLIError(f"template: {exc}", 1) from None


def cmd_version(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(display, "[OPTIONS]", "Show the dockling version information", max_args=0)
    fs.value("format", "f", "Format output using a custom template")
    values, _ = fs.parse(args)
    client = client_version()
    server: Any = None
    failure: str | None = None
    try:
        server = ctx.client.version()
    except (DaemonUnreachable, APIError) as exc:
        failure = (
            str(exc)
            if isinstance(exc, DaemonUnreachable)
            else (f"Error response from daemon: {exc.message}")
        )
    if values["format"]:
        # The docker CLI's template sees Go field names: APIVersion where the JSON says
        # ApiVersion.
        for part in (client, server):
            if isinstance(part, dict) and "ApiVersion" in part:
                part.setdefault("APIVersion", part["ApiVersion"])
        _template_out(values["format"], {"Client": client, "Server": server})
    else:
        lines = [
            "Client:",
            f" Version:           {client['Version']}",
            f" API version:       {client['ApiVersion']}",
            f" Go version:        {client['GoVersion']}",
            f" Git commit:        {client['GitCommit']}",
            f" Built:             {client['BuildTime']}",
            f" OS/Arch:           {client['Os']}/{client['Arch']}",
            f" Context:           {client['Context']}",
        ]
        if server:
            name = (server.get("Platform") or {}).get("Name") or "dockling"
            lines += [
                "",
                f"Server: {name}",
                " Engine:",
                f"  Version:          {server.get('Version', '')}",
                f"  API version:      {server.get('ApiVersion', '')} "
                f"(minimum version {server.get('MinAPIVersion', '')})",
                f"  Go version:       {server.get('GoVersion', '')}",
                f"  Git commit:       {server.get('GitCommit', '')}",
                f"  Built:            {server.get('BuildTime', '')}",
                f"  OS/Arch:          {server.get('Os', '')}/{server.get('Arch', '')}",
                f"  Experimental:     {str(bool(server.get('Experimental'))).lower()}",
            ]
            for component in server.get("Components") or []:
                if component.get("Name") == "Engine":
                    continue
                lines.append(f" {component.get('Name')}:")
                lines.append(f"  Version:          {component.get('Version', '')}")
                for key, value in sorted((component.get("Details") or {}).items()):
                    if key in (
                        "ApiVersion",
                        "MinAPIVersion",
                        "Os",
                        "Arch",
                        "BuildTime",
                        "Experimental",
                        "GitCommit",
                        "GoVersion",
                        "KernelVersion",
                    ):
                        continue
                    lines.append(f"  {key + ':':<18}{value}")
        sys.stdout.write("\n".join(lines) + "\n")
    if failure:
        sys.stderr.write(failure + "\n")
        return 1
    return 0


def cmd_info(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(display, "[OPTIONS]", "Display system-wide information", max_args=0)
    fs.value("format", "f", "Format output using a custom template")
    values, _ = fs.parse(args)
    if values["format"]:
        info = ctx.client.info()
        data = dict(info or {})
        data["ClientInfo"] = client_version()
        _template_out(values["format"], data)
        return 0
    version = client_version()
    out = [
        "Client:",
        f" Version:    {version['Version']}",
        " Context:    default",
        " Debug Mode: false",
        "",
        "Server:",
    ]
    try:
        info = ctx.client.info()
    except DaemonUnreachable as exc:
        sys.stdout.write("\n".join(out) + "\n")
        sys.stderr.write(f"{exc}\n")
        return 1
    from dockling.cli.humanize import bytes_size

    runtimes = " ".join(sorted((info.get("Runtimes") or {}).keys()))
    out += [
        f" Containers: {info.get('Containers', 0)}",
        f"  Running: {info.get('ContainersRunning', 0)}",
        f"  Paused: {info.get('ContainersPaused', 0)}",
        f"  Stopped: {info.get('ContainersStopped', 0)}",
        f" Images: {info.get('Images', 0)}",
        f" Server Version: {info.get('ServerVersion', '')}",
        f" Storage Driver: {info.get('Driver', '')}",
    ]
    for key, value in info.get("DriverStatus") or []:
        out.append(f"  {key}: {value}")
    out += [
        f" Logging Driver: {info.get('LoggingDriver', '')}",
        f" Cgroup Driver: {info.get('CgroupDriver', '')}",
        f" Cgroup Version: {info.get('CgroupVersion', '')}",
        f" Runtimes: {runtimes}",
        f" Default Runtime: {info.get('DefaultRuntime', '')}",
        f" Kernel Version: {info.get('KernelVersion', '')}",
        f" Operating System: {info.get('OperatingSystem', '')}",
        f" OSType: {info.get('OSType', '')}",
        f" Architecture: {info.get('Architecture', '')}",
        f" CPUs: {info.get('NCPU', 0)}",
        f" Total Memory: {bytes_size(info.get('MemTotal') or 0)}",
        f" Name: {info.get('Name', '')}",
        f" ID: {info.get('ID', '')}",
        f" Docker Root Dir: {info.get('DockerRootDir', '')}",
        f" Debug Mode: {str(bool(info.get('Debug'))).lower()}",
    ]
    out += proxy_and_registry_lines(info)
    out += [
        f" Live Restore Enabled: {str(bool(info.get('LiveRestoreEnabled'))).lower()}",
    ]
    sys.stdout.write("\n".join(out) + "\n")
    for warning in info.get("Warnings") or []:
        sys.stderr.write(f"{warning}\n")
    return 0


def proxy_and_registry_lines(info: dict[str, Any]) -> list[str]:
    """The `docker info` lines from " HTTP Proxy:" to " Registry Mirrors:", in docker 28's
    order: proxies, user name and labels only when set, " Experimental:", the insecure
    registries (non-secure index names, then CIDRs) and the mirrors only when there are any.
    """
    out: list[str] = []
    for label, key in (
        ("HTTP Proxy", "HttpProxy"),
        ("HTTPS Proxy", "HttpsProxy"),
        ("No Proxy", "NoProxy"),
        ("Username", "Username"),
    ):
        if info.get(key):
            out.append(f" {label}: {info[key]}")
    labels = info.get("Labels") or []
    if labels:
        out.append(" Labels:")
        out += [f"  {label}" for label in labels]
    out.append(f" Experimental: {str(bool(info.get('ExperimentalBuild'))).lower()}")
    registry = info.get("RegistryConfig") or {}
    index_configs = registry.get("IndexConfigs") or {}
    cidrs = registry.get("InsecureRegistryCIDRs") or []
    if index_configs or cidrs:
        out.append(" Insecure Registries:")
        for name in sorted(index_configs):
            config = index_configs[name] or {}
            if not config.get("Secure", True):
                out.append(f"  {config.get('Name') or name}")
        out += [f"  {cidr}" for cidr in cidrs]
    mirrors = registry.get("Mirrors") or []
    if mirrors:
        out.append(" Registry Mirrors:")
        out += [f"  {mirror}" for mirror in mirrors]
    return out


def format_event(event: dict[str, Any]) -> str:
    """docker's default event line: time, type, action, actor id, (attributes)."""
    from datetime import datetime

    nanos = event.get("timeNano") or int(event.get("time", 0)) * 1_000_000_000
    stamp = datetime.fromtimestamp(nanos // 1_000_000_000).astimezone()
    offset = stamp.strftime("%z")
    zone = "Z" if offset in ("+0000", "") else f"{offset[:3]}:{offset[3:]}"
    when = stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos % 1_000_000_000:09d}{zone}"
    actor = event.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    line = f"{when} {event.get('Type', '')} {event.get('Action', '')} {actor.get('ID', '')}"
    if attrs:
        line += " (" + ", ".join(f"{k}={v}" for k, v in sorted(attrs.items())) + ")"
    return line


def cmd_events(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(display, "[OPTIONS]", "Get real time events from the server", max_args=0)
    fs.list("filter", "f", "Filter output based on conditions provided")
    fs.value("format", None, "Format output using a custom template")
    fs.value("since", None, "Show all events created since timestamp")
    fs.value("until", None, "Stream events until this timestamp")
    values, _ = fs.parse(args)
    from dockling.cli.commands.lifecycle import parse_filters
    from dockling.cli.commands.logs import _time_arg

    template = None
    if values["format"]:
        from dockling.cli.template import Template

        fmt = "{{json .}}" if values["format"] == "json" else values["format"]
        template = Template(fmt)
    events = ctx.client.events(
        since=_time_arg(values["since"]),
        until=_time_arg(values["until"], "until"),
        filters=parse_filters(values["filter"]) or None,
    )
    for event in events:
        line = template.render(event) if template else format_event(event)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    return 0
