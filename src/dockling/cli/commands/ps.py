"""`dockling ps`: the container table, `-q`, and `--format` with docker's fields."""

from __future__ import annotations

import sys
import time

from dockling.cli.context import Context
from dockling.cli.flags import FlagSet
from dockling.cli.humanize import ago, go_time, human_size
from dockling.cli.units import parse_go_int

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


DEFAULT_FORMAT = (
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
)
HEADERS = {
    "ID": "CONTAINER ID",
    "Image": "IMAGE",
    "Command": "COMMAND",
    "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED",
    "Ports": "PORTS",
    "Status": "STATUS",
    "Size": "SIZE",
    "Names": "NAMES",
    "Labels": "LABELS",
    "Mounts": "MOUNTS",
    "LocalVolumes": "LOCAL VOLUMES",
    "Networks": "NETWORKS",
    "State": "STATE",
    "Platform": "PLATFORM",
}


def ellipsis(text: str, width: int) -> str:
    """Cut `text` to `width` characters, ending with "…" when cut (docker's Ellipsis)."""
    if len(text) <= width:
        return text
    return text[: width - 1] + "…"


def go_quote(text: str) -> str:
    """strconv.Quote for printable text: double quotes with \\ and " escaped."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def short_id(value: str) -> str:
    if value.startswith("sha256:"):
        value = value[len("sha256:") :]
    return value[:12]


def format_ports(ports: list[dict[str, Any]]) -> str:
    """`0.0.0.0:8080->80/tcp, 443/tcp` from the API's Ports list."""
    shown: list[str] = []
    for port in sorted(ports, key=lambda p: (p.get("PrivatePort", 0), p.get("Type", ""))):
        private = f"{port.get('PrivatePort')}/{port.get('Type', 'tcp')}"
        if port.get("PublicPort"):
            ip = port.get("IP") or "0.0.0.0"
            host = f"[{ip}]" if ":" in ip else ip
            entry = f"{host}:{port['PublicPort']}->{private}"
        else:
            entry = private
        if entry not in shown:
            shown.append(entry)
    return ", ".join(shown)


class ContainerRow:
    """One container as docker's ps template context (fields are methods there)."""

    def __init__(self, data: dict[str, Any], *, trunc: bool, now: float) -> None:
        self.data = data
        self.trunc = trunc
        self.now = now

    def template_field(self, name: str) -> Any:
        getter = getattr(self, "f_" + name, None)
        if getter is None:
            from dockling.cli.template import TemplateError

            raise TemplateError(f"can't evaluate field {name} in type *formatter.ContainerContext")
        return getter()

    def f_ID(self) -> str:
        return short_id(self.data["Id"]) if self.trunc else str(self.data["Id"])

    def f_Names(self) -> str:
        names = [n.lstrip("/") for n in self.data.get("Names") or []]
        if self.trunc:
            names = [n for n in names if "/" not in n][:1] or names[:1]
        return ",".join(names)

    def f_Image(self) -> str:
        image = str(self.data.get("Image") or "")
        if self.trunc and image.startswith("sha256:"):
            return short_id(image)
        return image

    def f_Command(self) -> str:
        command = str(self.data.get("Command") or "")
        return go_quote(ellipsis(command, 20) if self.trunc else command)

    def f_CreatedAt(self) -> str:
        return go_time(float(self.data.get("Created") or 0))

    def f_RunningFor(self) -> str:
        return ago(float(self.data.get("Created") or 0), self.now)

    def f_Ports(self) -> str:
        return format_ports(self.data.get("Ports") or [])

    def f_State(self) -> str:
        return str(self.data.get("State") or "")

    def f_Status(self) -> str:
        return str(self.data.get("Status") or "")

    def f_Size(self) -> str:
        rw = human_size(self.data.get("SizeRw") or 0, 3)
        root = self.data.get("SizeRootFs") or 0
        return f"{rw} (virtual {human_size(root, 3)})" if root else rw

    def f_Labels(self) -> str:
        labels = self.data.get("Labels") or {}
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))

    def f_Label(self) -> Any:
        labels = self.data.get("Labels") or {}
        return lambda key: labels.get(key, "")

    def f_Mounts(self) -> str:
        names = []
        for mount in self.data.get("Mounts") or []:
            name = mount.get("Name") or mount.get("Source") or ""
            names.append(ellipsis(name, 15) if self.trunc else name)
        return ",".join(names)

    def f_LocalVolumes(self) -> str:
        mounts = self.data.get("Mounts") or []
        return str(sum(1 for m in mounts if m.get("Driver") == "local"))

    def f_Platform(self) -> str:
        # The list API carries no platform; docker prints its nil pointer so.
        return "<nil>"

    def f_Networks(self) -> str:
        networks = ((self.data.get("NetworkSettings") or {}).get("Networks")) or {}
        return ",".join(sorted(networks))

    def template_json(self) -> dict[str, Any]:
        keys = (
            "Command",
            "CreatedAt",
            "ID",
            "Image",
            "Labels",
            "LocalVolumes",
            "Mounts",
            "Names",
            "Networks",
            "Ports",
            "RunningFor",
            "Size",
            "State",
            "Status",
        )
        data: dict[str, Any] = {key: self.template_field(key) for key in keys}
        data["Platform"] = None
        return dict(sorted(data.items()))


def _probe_format(fmt: str) -> None:
    """Run the user's template once, as given, before asking the daemon: the docker CLI
    does so (to learn whether .Size is wanted) and so reports a bad field even when no
    container is listed, with positions counted in the raw text."""
    from dockling.cli.context import CLIError
    from dockling.cli.template import Template, TemplateError

    try:
        template = Template(fmt)
    except TemplateError as exc:
        raise CLIError(f"failed to parse template: template: {exc}", 1) from None
    try:
        template.render(ContainerRow({"Id": ""}, trunc=True, now=0.0))
    except TemplateError as exc:
        raise CLIError(f"failed to execute template: template: {exc}", 1) from None


def cmd_ps(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(display, "[OPTIONS]", "List containers", max_args=0)
    fs.bool("all", "a", "Show all containers (default shows just running)")
    fs.list("filter", "f", "Filter output based on conditions provided")
    fs.value("format", None, "Format output using a custom template")
    fs.value(
        "last",
        "n",
        "Show n last created containers (includes all states)",
        default=-1,
        convert=parse_go_int,
    )
    fs.bool("latest", "l", "Show the latest created container (includes all states)")
    fs.bool("no-trunc", None, "Don't truncate output")
    fs.bool("quiet", "q", "Only display container IDs")
    fs.bool("size", "s", "Display total file sizes")
    values, _ = fs.parse(args)

    filters = None
    if values["filter"]:
        from dockling.cli.commands.lifecycle import parse_filters

        filters = parse_filters(values["filter"])
    limit = 1 if values["latest"] else values["last"]
    fmt = values["format"]
    if values["quiet"]:
        if fmt:
            sys.stderr.write(
                "WARNING: Ignoring custom format, because both --format and --quiet are set.\n"
            )
        fmt = "{{.ID}}"
    elif not fmt or fmt == "table":
        fmt = DEFAULT_FORMAT + ("\t{{.Size}}" if values["size"] else "")
    elif fmt != "json":
        _probe_format(fmt)
    want_size = bool(values["size"]) or ".Size" in fmt
    containers = ctx.client.list_containers(
        all=bool(values["all"]),
        limit=limit if limit and limit > 0 else None,
        size=want_size and not values["quiet"],
        filters=filters,
    )
    now = time.time()
    rows = [ContainerRow(c, trunc=not values["no_trunc"], now=now) for c in containers or []]
    if fmt == "{{.ID}}":
        # The common `ps -q` path needs no template engine.
        sys.stdout.write("".join(row.f_ID() + "\n" for row in rows))
        return 0

    from dockling.cli.table import write_listing

    write_listing(fmt, rows, HEADERS)
    return 0
