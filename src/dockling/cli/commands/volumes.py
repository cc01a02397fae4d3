"""Volume commands: volume create, ls, inspect, rm, prune."""

from __future__ import annotations

import sys

from dockling.cli.commands.lifecycle import confirm_prune, for_each, parse_filters, write_reclaimed
from dockling.cli.context import CLIError, Context
from dockling.cli.flags import FlagSet
from dockling.cli.humanize import human_size

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs every CLI start a few ms: annotations only
    from typing import Any

DEFAULT_FORMAT = "table {{.Driver}}\t{{.Name}}"
HEADERS = {
    "Name": "VOLUME NAME",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "Mountpoint": "MOUNTPOINT",
    "Labels": "LABELS",
    "Links": "LINKS",
    "Size": "SIZE",
    "CreatedAt": "CREATED AT",
}


class VolumeRow:
    """One volume as docker's volume template context."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def template_field(self, name: str) -> Any:
        if name == "Labels":
            labels = self.data.get("Labels") or {}
            return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        if name == "Label":
            labels = self.data.get("Labels") or {}
            return lambda key: labels.get(key, "")
        if name in ("Links", "Size"):
            usage = self.data.get("UsageData") or {}
            key = "RefCount" if name == "Links" else "Size"
            value = usage.get(key)
            if value is None or value < 0:
                return "N/A"
            return str(value) if name == "Links" else human_size(value)
        if name in ("Name", "Driver", "Scope", "Mountpoint", "CreatedAt"):
            return str(self.data.get(name) or "")
        from dockling.cli.template import TemplateError

        raise TemplateError(f"can't evaluate field {name} in type *formatter.volumeContext")

    def template_json(self) -> dict[str, str]:
        keys = (
            "Availability",
            "Driver",
            "Group",
            "Labels",
            "Links",
            "Mountpoint",
            "Name",
            "Scope",
            "Size",
            "Status",
        )
        out: dict[str, str] = {}
        for key in keys:
            try:
                out[key] = str(self.template_field(key))
            except Exception:
                out[key] = "N/A"
        return out


def cmd_volume_create(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(display, "[OPTIONS] [VOLUME]", "Create a volume", max_args=1)
    fs.value("driver", "d", "Specify volume driver name", default="local")
    fs.list("label", None, "Set metadata for a volume")
    fs.list("opt", "o", "Set driver specific options")
    fs.value("name", None, "Specify volume name")
    values, rest = fs.parse(args)
    name = rest[0] if rest else (values["name"] or "")
    if rest and values["name"] and values["name"] != rest[0]:
        raise CLIError(
            "conflicting options: cannot specify a volume-name through both "
            "--name and as a positional arg",
            1,
        )
    from dockling.cli.commands.create_options import parse_labels

    body = {
        "Name": name,
        "Driver": values["driver"] or "local",
        "DriverOpts": parse_labels(values["opt"]),
        "Labels": parse_labels(values["label"]),
    }
    created = ctx.client.create_volume(body) or {}
    sys.stdout.write(f"{created.get('Name', name)}\n")
    return 0


def cmd_volume_ls(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(display, "[OPTIONS]", "List volumes", max_args=0)
    fs.list("filter", "f", 'Provide filter values (e.g. "dangling=true")')
    fs.value("format", None, "Format output using a custom template")
    fs.bool("quiet", "q", "Only display volume names")
    values, _ = fs.parse(args)
    filters = parse_filters(values["filter"]) or None
    listing = ctx.client.list_volumes(filters) or {}
    volumes = sorted(listing.get("Volumes") or [], key=lambda v: v.get("Name", ""))
    for warning in listing.get("Warnings") or []:
        sys.stderr.write(f"{warning}\n")
    if values["quiet"]:
        sys.stdout.write("".join(f"{v.get('Name')}\n" for v in volumes))
        return 0
    from dockling.cli.table import write_listing

    write_listing(values["format"] or DEFAULT_FORMAT, [VolumeRow(v) for v in volumes], HEADERS)
    return 0


def cmd_volume_inspect(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(
        display,
        "[OPTIONS] VOLUME [VOLUME...]",
        "Display detailed information on one or more volumes",
        min_args=1,
    )
    fs.value("format", "f", "Format output using a custom template")
    values, refs = fs.parse(args)
    from dockling.cli.commands.inspect import _run

    return _run(
        refs, values["format"], [ctx.client.inspect_volume], lambda ref: f"No such volume: {ref}"
    )


def cmd_volume_rm(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(display, "[OPTIONS] VOLUME [VOLUME...]", "Remove one or more volumes", min_args=1)
    fs.bool("force", "f", "Force the removal of one or more volumes")
    values, refs = fs.parse(args)
    failed = for_each(refs, lambda ref: ctx.client.remove_volume(ref, force=values["force"]))
    return 1 if failed else 0


def cmd_volume_prune(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(display, "[OPTIONS]", "Remove unused local volumes", max_args=0)
    fs.bool("all", "a", "Remove all unused volumes, not just anonymous ones")
    fs.list("filter", None, 'Provide filter values (e.g. "label=<label>")')
    fs.bool("force", "f", "Do not prompt for confirmation")
    values, _ = fs.parse(args)
    filters = parse_filters(values["filter"])
    if values["all"]:
        filters["all"] = ["true"]
        warning = "WARNING! This will remove all local volumes not used by at least one container."
    else:
        warning = (
            "WARNING! This will remove anonymous local volumes not used by at least one container."
        )
    if not confirm_prune(warning, force=values["force"]):
        return 0
    report = ctx.client.prune_volumes(filters or None) or {}
    write_deleted_volumes(report)
    write_reclaimed(report)
    return 0


def write_deleted_volumes(report: dict[str, Any]) -> None:
    deleted = report.get("VolumesDeleted") or []
    if deleted:
        sys.stdout.write("Deleted Volumes:\n" + "".join(f"{v}\n" for v in deleted) + "\n")
