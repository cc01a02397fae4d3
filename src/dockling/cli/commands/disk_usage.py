"""`system df` and `system prune`: disk usage of images, containers, volumes and build
cache, and getting it back."""

from __future__ import annotations

import sys

from dockling.cli.context import Context
from dockling.cli.flags import FlagSet
from dockling.cli.humanize import human_size
from dockling.cli.table import tabwrite

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs every CLI start a few ms: annotations only
    from typing import Any


def _reclaimable(reclaimable: int, total: int) -> str:
    if total <= 0:
        return human_size(reclaimable)
    return f"{human_size(reclaimable)} ({int(100 * reclaimable / total)}%)"


def summary_rows(data: dict[str, Any]) -> list[list[str]]:
    """Docker's four rows: TYPE, TOTAL, ACTIVE, SIZE, RECLAIMABLE."""
    images = data.get("Images") or []
    containers = data.get("Containers") or []
    volumes = data.get("Volumes") or []
    layers = int(data.get("LayersSize") or 0)
    active_images = [i for i in images if int(i.get("Containers") or 0) > 0]
    used = 0
    for image in active_images:
        used += int(image.get("Size") or 0) - max(int(image.get("SharedSize") or 0), 0)
    shared = max((int(i.get("SharedSize") or 0) for i in active_images), default=0)
    image_reclaim = max(layers - used - shared, 0) if active_images else layers
    running = [c for c in containers if c.get("State") in ("running", "paused", "restarting")]
    container_size = sum(int(c.get("SizeRw") or 0) for c in containers)
    container_reclaim = sum(int(c.get("SizeRw") or 0) for c in containers if c not in running)
    volume_size = sum(int((v.get("UsageData") or {}).get("Size") or 0) for v in volumes)
    active_volumes = [v for v in volumes if int((v.get("UsageData") or {}).get("RefCount") or 0)]
    volume_reclaim = sum(
        int((v.get("UsageData") or {}).get("Size") or 0) for v in volumes if v not in active_volumes
    )
    cache = data.get("BuildCache") or []
    return [
        ["Images", str(len(images)), str(len(active_images)), human_size(layers),
         _reclaimable(image_reclaim, layers)],
        ["Containers", str(len(containers)), str(len(running)), human_size(container_size),
         _reclaimable(container_reclaim, container_size)],
        ["Local Volumes", str(len(volumes)), str(len(active_volumes)), human_size(volume_size),
         _reclaimable(volume_reclaim, volume_size)],
        ["Build Cache", str(len(cache)), "0", human_size(0), human_size(0)],
    ]  # fmt: skip


SUMMARY_FORMAT = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
SUMMARY_HEADERS = {
    "Type": "TYPE",
    "TotalCount": "TOTAL",
    "Active": "ACTIVE",
    "Size": "SIZE",
    "Reclaimable": "RECLAIMABLE",
}
# The verbose view's four tables, as the docker CLI lays them out.
IMAGES_FORMAT = (
    "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    "\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}"
)
CONTAINERS_FORMAT = (
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}"
    "\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}"
)
VOLUMES_FORMAT = "table {{.Name}}\t{{.Links}}\t{{.Size}}"
CACHE_HEADER = "CACHE ID\tCACHE TYPE\tSIZE\tCREATED\tLAST USED\tUSAGE\tSHARED"
# Each summary row's Go type, named in docker's "can't evaluate field" errors.
_ROW_TYPES = {
    "Images": "diskUsageImagesContext",
    "Containers": "diskUsageContainersContext",
    "Local Volumes": "diskUsageVolumesContext",
    "Build Cache": "diskUsageBuilderContext",
}


class UsageRow:
    """One line of the summary as docker's disk-usage template context."""

    def __init__(self, cells: list[str]) -> None:
        self.kind = cells[0]
        self.values = dict(zip(SUMMARY_HEADERS, cells, strict=True))

    def template_field(self, name: str) -> Any:
        if name not in self.values:
            from dockling.cli.template import TemplateError

            raise TemplateError(
                f"can't evaluate field {name} in type *formatter.{_ROW_TYPES[self.kind]}"
            )
        return self.values[name]

    def template_json(self) -> dict[str, str]:
        return dict(sorted(self.values.items()))


class DiskContainerRow:
    """A container of the verbose view: SIZE is the writable layer alone."""

    def __init__(self, row: Any) -> None:
        self.row = row

    def template_field(self, name: str) -> Any:
        if name == "Size":
            return human_size(self.row.data.get("SizeRw") or 0)
        return self.row.template_field(name)

    def template_json(self) -> dict[str, Any]:
        data: dict[str, Any] = self.row.template_json()
        data["Size"] = self.template_field("Size")
        return data


class VerboseContext:
    """The whole verbose report, which a custom --format renders once."""

    def __init__(self, images: list[Any], containers: list[Any], volumes: list[Any]) -> None:
        self.fields: dict[str, Any] = {
            "Images": images,
            "Containers": containers,
            "Volumes": volumes,
            "BuildCache": [],
        }

    def template_field(self, name: str) -> Any:
        if name not in self.fields:
            from dockling.cli.template import TemplateError

            raise TemplateError(f"can't evaluate field {name} in type *formatter.diskUsageContext")
        return self.fields[name]

    def template_json(self) -> dict[str, Any]:
        return {k: [row.template_json() for row in v] for k, v in self.fields.items()}


def _verbose_rows(data: dict[str, Any], *, trunc: bool) -> VerboseContext:
    import time

    from dockling.cli.commands.images import ImageRow, split_repo_tag
    from dockling.cli.commands.ps import ContainerRow
    from dockling.cli.commands.volumes import VolumeRow

    now = time.time()
    images = []
    for image in data.get("Images") or []:
        # One row per image, named by its first tag (docker's verbose view).
        tags = [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"]
        repo, tag = split_repo_tag(tags[0]) if tags else ("<none>", "<none>")
        digests = [d for d in image.get("RepoDigests") or [] if "@" in d]
        digest = digests[0].split("@", 1)[1] if digests else ("<none>" if trunc else "")
        images.append(ImageRow(image, repo, tag, digest, trunc=trunc, now=now))
    containers = [
        DiskContainerRow(ContainerRow(c, trunc=trunc, now=now))
        for c in data.get("Containers") or []
    ]
    volumes = [VolumeRow(v) for v in data.get("Volumes") or []]
    return VerboseContext(images, containers, volumes)


def _write_verbose(data: dict[str, Any]) -> None:
    from dockling.cli.commands.images import HEADERS as IMAGE_HEADERS
    from dockling.cli.commands.ps import HEADERS as CONTAINER_HEADERS
    from dockling.cli.commands.volumes import HEADERS as VOLUME_HEADERS
    from dockling.cli.table import write_formatted

    report = _verbose_rows(data, trunc=True)
    out = sys.stdout
    out.write("Images space usage:\n\n")
    write_formatted(IMAGES_FORMAT, report.fields["Images"], IMAGE_HEADERS)
    out.write("\nContainers space usage:\n\n")
    write_formatted(CONTAINERS_FORMAT, report.fields["Containers"], CONTAINER_HEADERS)
    out.write("\nLocal Volumes space usage:\n\n")
    write_formatted(VOLUMES_FORMAT, report.fields["Volumes"], VOLUME_HEADERS)
    out.write(f"\nBuild cache usage: {human_size(0)}\n\n")
    out.write(tabwrite([CACHE_HEADER]))


def cmd_system_df(ctx: Context, args: list[str], display: str) -> int:
    from dockling.cli.context import CLIError
    from dockling.cli.table import write_formatted
    from dockling.cli.template import TemplateError

    fs = FlagSet(display, "[OPTIONS]", "Show docker disk usage", max_args=0)
    fs.value("format", None, "Format output using a custom template")
    fs.bool("verbose", "v", "Show detailed information on space usage")
    values, _ = fs.parse(args)
    fmt = values["format"] or ""
    if fmt == "json":
        fmt = "{{json .}}"
    data = ctx.client.transport.call("GET", "/system/df") or {}
    if values["verbose"]:
        if not fmt:
            _write_verbose(data)
            return 0
        # A custom format renders the whole report once, untruncated and, as the docker
        # CLI writes it, without a final newline.
        from dockling.cli.table import prepare_format
        from dockling.cli.template import Template

        try:
            text = Template(prepare_format(fmt)[1]).render(_verbose_rows(data, trunc=False))
        except TemplateError as exc:
            raise CLIError(f"template: {exc}", 1) from None
        sys.stdout.write(text)
        return 0
    rows = [UsageRow(cells) for cells in summary_rows(data)]
    try:
        write_formatted(fmt or SUMMARY_FORMAT, rows, SUMMARY_HEADERS)
    except TemplateError as exc:
        raise CLIError(f"template parsing error: template: {exc}", 1) from None
    return 0


def _prune_warning(*, all_images: bool, volumes: bool) -> str:
    lines = [
        "WARNING! This will remove:",
        "  - all stopped containers",
        "  - all networks not used by at least one container",
    ]
    if volumes:
        lines.append("  - all anonymous volumes not used by at least one container")
    if all_images:
        lines += ["  - all images without at least one container associated to them",
                  "  - all build cache"]  # fmt: skip
    else:
        lines += ["  - all dangling images", "  - unused build cache"]
    return "\n".join(lines) + "\n"


def cmd_system_prune(ctx: Context, args: list[str], display: str) -> int:
    """Each prune in docker's order, each one's report, then the sum reclaimed."""
    from dockling.cli.commands.build import prune_build_cache
    from dockling.cli.commands.images import write_deleted_images
    from dockling.cli.commands.lifecycle import (
        confirm_prune,
        parse_filters,
        write_deleted_containers,
    )
    from dockling.cli.commands.network import prune_networks, write_deleted_networks
    from dockling.cli.commands.volumes import write_deleted_volumes
    from dockling.cli.context import CLIError

    fs = FlagSet(display, "[OPTIONS]", "Remove unused data", max_args=0)
    fs.bool("all", "a", "Remove all unused images not just dangling ones")
    fs.list("filter", None, 'Provide filter values (e.g. "label=<key>=<value>")')
    fs.bool("force", "f", "Do not prompt for confirmation")
    fs.bool("volumes", None, "Prune anonymous volumes")
    values, _ = fs.parse(args)
    filters = parse_filters(values["filter"])
    if values["volumes"] and "until" in filters:
        raise CLIError('ERROR: The "until" filter is not supported with "--volumes"', 1)
    warning = _prune_warning(all_images=values["all"], volumes=values["volumes"])
    if not confirm_prune(warning, force=values["force"]):
        return 0
    client = ctx.client
    reclaimed = 0
    report = client.prune_containers(filters or None) or {}
    reclaimed += int(report.get("SpaceReclaimed") or 0)
    write_deleted_containers(report)
    report = prune_networks(ctx, filters)
    if report.get("NetworksDeleted"):
        write_deleted_networks(report)
        sys.stdout.write("\n")
    if values["volumes"]:
        report = client.prune_volumes(filters or None) or {}
        reclaimed += int(report.get("SpaceReclaimed") or 0)
        write_deleted_volumes(report)
    image_filters = dict(filters)
    if values["all"]:
        image_filters["dangling"] = ["false"]
    report = client.prune_images(image_filters or None) or {}
    reclaimed += int(report.get("SpaceReclaimed") or 0)
    write_deleted_images(report)
    report = prune_build_cache(ctx, all=bool(values["all"]))
    reclaimed += int(report.get("SpaceReclaimed") or 0)
    caches = report.get("CachesDeleted") or []
    if caches:
        sys.stdout.write("Deleted build cache objects:\n" + "".join(f"{c}\n" for c in caches))
        sys.stdout.write("\n")
    sys.stdout.write(f"Total reclaimed space: {human_size(reclaimed)}\n")
    return 0
