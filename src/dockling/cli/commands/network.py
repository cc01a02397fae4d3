"""Network commands: network create, ls, inspect, rm, prune, connect, disconnect."""

from __future__ import annotations

import json
import sys

from dockling.cli.commands.lifecycle import confirm_prune, for_each, parse_filters
from dockling.cli.context import Context
from dockling.cli.flags import FlagSet

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs every CLI start a few ms: annotations only
    from typing import Any

DEFAULT_FORMAT = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
HEADERS = {
    "ID": "NETWORK ID",
    "Name": "NAME",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "IPv4": "IPV4",
    "IPv6": "IPV6",
    "Internal": "INTERNAL",
    "Labels": "LABELS",
    "CreatedAt": "CREATED AT",
}


def _path(ref: str, suffix: str = "") -> str:
    from dockling.client.transport import quote_ref

    return f"/networks/{quote_ref(ref)}{suffix}"


class NetworkRow:
    """One network as docker's network template context."""

    def __init__(self, data: dict[str, Any], *, trunc: bool) -> None:
        self.data = data
        self.trunc = trunc

    def template_field(self, name: str) -> Any:
        data = self.data
        if name == "ID":
            value = str(data.get("Id") or "")
            return value[:12] if self.trunc else value
        if name in ("Name", "Driver", "Scope"):
            return str(data.get(name) or "")
        if name in ("IPv4", "IPv6"):
            return str(bool(data.get("Enable" + name))).lower()
        if name == "Internal":
            return str(bool(data.get("Internal"))).lower()
        if name == "CreatedAt":
            from dockling.cli.humanize import go_time_text

            return go_time_text(str(data.get("Created") or ""))
        if name == "Labels":
            labels = data.get("Labels") or {}
            return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        if name == "Label":
            labels = data.get("Labels") or {}
            return lambda key: labels.get(key, "")
        from dockling.cli.template import TemplateError

        raise TemplateError(f"can't evaluate field {name} in type *network.networkContext")

    def template_json(self) -> dict[str, str]:
        keys = ("CreatedAt", "Driver", "ID", "IPv4", "IPv6", "Internal", "Labels", "Name", "Scope")
        return {key: str(self.template_field(key)) for key in keys}


def cmd_network_create(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(
        display, "[OPTIONS] NETWORK", "Create a network", min_args=1, max_args=1, exact_args=True
    )
    fs.value("driver", "d", "Driver to manage the Network", default="bridge")
    fs.list("subnet", None, "Subnet in CIDR format that represents a network segment")
    fs.list("gateway", None, "IPv4 or IPv6 Gateway for the master subnet")
    fs.list("ip-range", None, "Allocate container ip from a sub-range")
    fs.bool("internal", None, "Restrict external access to the network")
    fs.bool("attachable", None, "Enable manual container attachment")
    fs.bool("ipv6", None, "Enable IPv6 networking")
    fs.list("label", None, "Set metadata on a network")
    fs.list("opt", "o", "Set driver specific options")
    values, rest = fs.parse(args)
    from dockling.cli.commands.create_options import parse_labels

    config: dict[str, str] = {}
    if values["subnet"]:
        config["Subnet"] = values["subnet"][0]
    if values["gateway"]:
        config["Gateway"] = values["gateway"][0]
    if values["ip_range"]:
        config["IPRange"] = values["ip_range"][0]
    body = {
        "Name": rest[0],
        "CheckDuplicate": True,
        "Driver": values["driver"] or "bridge",
        "Internal": bool(values["internal"]),
        "Attachable": bool(values["attachable"]),
        "EnableIPv6": bool(values["ipv6"]),
        "IPAM": {"Driver": "default", "Config": [config] if config else []},
        "Options": parse_labels(values["opt"]),
        "Labels": parse_labels(values["label"]),
    }
    created = ctx.client.transport.call("POST", "/networks/create", body=body) or {}
    sys.stdout.write(f"{created.get('Id', '')}\n")
    return 0


def cmd_network_ls(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(display, "[OPTIONS]", "List networks", max_args=0)
    fs.list("filter", "f", 'Provide filter values (e.g. "driver=bridge")')
    fs.value("format", None, "Format output using a custom template")
    fs.bool("no-trunc", None, "Do not truncate the output")
    fs.bool("quiet", "q", "Only display network IDs")
    values, _ = fs.parse(args)
    import json

    filters = parse_filters(values["filter"])
    query = {"filters": json.dumps(filters) if filters else None}
    listing = ctx.client.transport.call("GET", "/networks", query=query) or []
    networks = sorted(listing, key=lambda n: n.get("Name", ""))
    rows = [NetworkRow(n, trunc=not values["no_trunc"]) for n in networks]
    if values["quiet"]:
        sys.stdout.write("".join(f"{r.template_field('ID')}\n" for r in rows))
        return 0
    from dockling.cli.table import write_listing

    write_listing(values["format"] or DEFAULT_FORMAT, rows, HEADERS)
    return 0


def cmd_network_inspect(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(
        display,
        "[OPTIONS] NETWORK [NETWORK...]",
        "Display detailed information on one or more networks",
        min_args=1,
    )
    fs.value("format", "f", "Format output using a custom template")
    fs.bool("verbose", "v", "Verbose output for diagnostics")
    values, refs = fs.parse(args)
    from dockling.cli.commands.inspect import _run

    return _run(
        refs,
        values["format"],
        [lambda ref: ctx.client.transport.call("GET", _path(ref))],
        lambda ref: f"No such network: {ref}",
    )


def cmd_network_rm(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(display, "NETWORK [NETWORK...]", "Remove one or more networks", min_args=1)
    fs.bool("force", "f", "Do not error if the network does not exist")
    values, refs = fs.parse(args)

    def remove(ref: str) -> None:
        from dockling.client.transport import APIError

        try:
            ctx.client.transport.call("DELETE", _path(ref))
        except APIError as exc:
            if not (values["force"] and exc.status == 404):
                raise

    failed = for_each(refs, remove)
    return 1 if failed else 0


def cmd_network_prune(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(display, "[OPTIONS]", "Remove all unused networks", max_args=0)
    fs.list("filter", None, 'Provide filter values (e.g. "until=<timestamp>")')
    fs.bool("force", "f", "Do not prompt for confirmation")
    values, _ = fs.parse(args)
    warning = "WARNING! This will remove all custom networks not used by at least one container."
    if not confirm_prune(warning, force=values["force"]):
        return 0
    report = prune_networks(ctx, parse_filters(values["filter"]))
    write_deleted_networks(report)
    return 0


def prune_networks(ctx: Context, filters: dict[str, list[str]]) -> dict[str, Any]:
    query: dict[str, Any] = {"filters": json.dumps(filters) if filters else None}
    return ctx.client.transport.call("POST", "/networks/prune", query=query) or {}


def write_deleted_networks(report: dict[str, Any]) -> None:
    deleted = report.get("NetworksDeleted") or []
    if deleted:
        sys.stdout.write("Deleted Networks:\n" + "".join(f"{n}\n" for n in deleted))


def cmd_network_connect(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(
        display,
        "[OPTIONS] NETWORK CONTAINER",
        "Connect a container to a network",
        min_args=2,
        max_args=2,
    )
    fs.list("alias", None, "Add network-scoped alias for the container")
    fs.value("ip", None, "IPv4 address (e.g., 172.30.100.104)")
    values, rest = fs.parse(args)
    endpoint: dict[str, Any] = {"Aliases": list(values["alias"])}
    if values["ip"]:
        endpoint["IPAMConfig"] = {"IPv4Address": values["ip"]}
    body = {"Container": rest[1], "EndpointConfig": endpoint}
    ctx.client.transport.call("POST", _path(rest[0], "/connect"), body=body)
    return 0


def cmd_network_disconnect(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(
        display,
        "[OPTIONS] NETWORK CONTAINER",
        "Disconnect a container from a network",
        min_args=2,
        max_args=2,
    )
    fs.bool("force", "f", "Force the container to disconnect from a network")
    values, rest = fs.parse(args)
    body = {"Container": rest[1], "Force": bool(values["force"])}
    ctx.client.transport.call("POST", _path(rest[0], "/disconnect"), body=body)
    return 0
