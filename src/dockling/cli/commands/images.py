"""Image commands: images / image ls, rmi, tag, import, pull, image prune."""

from __future__ import annotations

import sys
import time

from dockling.cli.commands.lifecycle import confirm_prune, parse_filters, write_reclaimed
from dockling.cli.context import CLIError, Context
from dockling.cli.flags import FlagSet
from dockling.cli.humanize import ago, go_time, human_size
from dockling.client.transport import APIError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs every CLI start a few ms: annotations only
    from typing import Any

DEFAULT_FORMAT = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
HEADERS = {
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "ID": "IMAGE ID",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "Size": "SIZE",
    "Digest": "DIGEST",
    "Containers": "CONTAINERS",
    "VirtualSize": "VIRTUAL SIZE",
    "SharedSize": "SHARED SIZE",
    "UniqueSize": "UNIQUE SIZE",
    "Label": "LABEL",
}


def _short(image_id: str, trunc: bool) -> str:
    if not trunc:
        return image_id
    return image_id.removeprefix("sha256:")[:12]


class ImageRow:
    """One (image, repository, tag) row as docker's image template context."""

    def __init__(
        self, data: dict[str, Any], repo: str, tag: str, digest: str, *, trunc: bool, now: float
    ) -> None:
        self.data = data
        shared_size = data.get("SharedSize")
        shared = -1 if shared_size is None else int(shared_size)
        self.values = {
            "Repository": repo,
            "Tag": tag,
            "Digest": digest,
            "ID": _short(str(data.get("Id", "")), trunc),
            "CreatedSince": ago(float(data.get("Created") or 0), now),
            "CreatedAt": go_time(float(data.get("Created") or 0)),
            "Size": human_size(data.get("Size") or 0, 3),
            # docker: Size with 3 significant digits, the other sizes with HumanSize's 4.
            "VirtualSize": human_size(data.get("VirtualSize", data.get("Size")) or 0),
            "SharedSize": human_size(shared) if shared >= 0 else "N/A",
            "UniqueSize": human_size((data.get("Size") or 0) - shared) if shared >= 0 else "N/A",
            "Containers": str(data["Containers"]) if (data.get("Containers") or -1) >= 0 else "N/A",
        }

    def template_field(self, name: str) -> Any:
        if name not in self.values:
            from dockling.cli.template import TemplateError

            raise TemplateError(f"can't evaluate field {name} in type *formatter.imageContext")
        return self.values[name]

    def template_json(self) -> dict[str, str]:
        return dict(sorted(self.values.items()))


def image_rows(images: list[dict[str, Any]], *, trunc: bool) -> list[ImageRow]:
    """One row per repo:tag of each image (docker's `<none>` rows for untagged ones)."""
    now = time.time()
    rows: list[ImageRow] = []
    for image in images:
        tags = [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"]
        digests = [d for d in image.get("RepoDigests") or [] if d != "<none>@<none>"]
        digest = digests[0].split("@", 1)[1] if digests else "<none>"
        if not tags and digests:
            repo = digests[0].split("@", 1)[0]
            rows.append(ImageRow(image, repo, "<none>", digest, trunc=trunc, now=now))
        elif not tags:
            rows.append(ImageRow(image, "<none>", "<none>", digest, trunc=trunc, now=now))
        for ref in tags:
            colon = ref.rfind(":")
            repo, tag = (ref[:colon], ref[colon + 1 :]) if colon > ref.rfind("/") else (ref, "")
            rows.append(ImageRow(image, repo, tag, digest, trunc=trunc, now=now))
    return rows


def cmd_images(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(display, "[OPTIONS] [REPOSITORY[:TAG]]", "List images", max_args=1)
    fs.bool("all", "a", "Show all images (default hides intermediate images)")
    fs.bool("digests", None, "Show digests")
    fs.list("filter", "f", "Filter output based on conditions provided")
    fs.value("format", None, "Format output using a custom template")
    fs.bool("no-trunc", None, "Don't truncate output")
    fs.bool("quiet", "q", "Only show image IDs")
    fs.bool("tree", None, "List multi-platform images as a tree")
    values, refs = fs.parse(args)
    filters = parse_filters(values["filter"])
    if refs:
        filters.setdefault("reference", []).append(refs[0])
    images = ctx.client.list_images(all=bool(values["all"]), filters=filters or None) or []
    rows = image_rows(images, trunc=not values["no_trunc"])
    if values["quiet"]:
        seen: list[str] = []
        for row in rows:
            if row.values["ID"] not in seen:
                seen.append(row.values["ID"])
        sys.stdout.write("".join(i + "\n" for i in seen))
        return 0
    fmt = values["format"] or DEFAULT_FORMAT
    if values["digests"] and not values["format"]:
        fmt = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    from dockling.cli.table import write_listing

    write_listing(fmt, rows, HEADERS)
    return 0


def cmd_rmi(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(display, "[OPTIONS] IMAGE [IMAGE...]", "Remove one or more images", min_args=1)
    fs.bool("force", "f", "Force removal of the image")
    fs.bool("no-prune", None, "Do not delete untagged parents")
    values, refs = fs.parse(args)
    failed = False
    for ref in refs:
        try:
            report = (
                ctx.client.remove_image(ref, force=values["force"], noprune=values["no_prune"])
                or []
            )
        except APIError as exc:
            sys.stderr.write(f"Error response from daemon: {exc.message}\n")
            failed = True
            continue
        for item in report:
            if item.get("Untagged"):
                sys.stdout.write(f"Untagged: {item['Untagged']}\n")
            if item.get("Deleted"):
                sys.stdout.write(f"Deleted: {item['Deleted']}\n")
    return 1 if failed else 0


def split_repo_tag(target: str) -> tuple[str, str]:
    colon = target.rfind(":")
    if colon > target.rfind("/"):
        return target[:colon], target[colon + 1 :]
    return target, "latest"


def cmd_tag(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(
        display,
        "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
        "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
        min_args=2,
        exact_args=True,
    )
    _, (source, target) = fs.parse(args)
    _check_tag_refs(source, target)
    repo, tag = split_repo_tag(target)
    ctx.client.tag_image(source, repo, tag)
    return 0


def _check_tag_refs(source: str, target: str) -> None:
    """The docker CLI checks both references before asking the daemon; the source may
    also be an image id or digest."""
    import re

    from dockling.errors import InvalidParameter
    from dockling.reference import parse_normalized

    checks = [(source, True), (target, False)]
    for text, may_be_id in checks:
        if may_be_id and re.fullmatch(r"(sha256:)?[a-f0-9]{64}", text):
            continue
        try:
            ref = parse_normalized(text)
        except InvalidParameter as exc:
            raise CLIError(
                f'Error parsing reference: "{text}" is not a valid repository/tag: {exc}', 1
            ) from None
        if not may_be_id and ref.digest:
            raise CLIError("refusing to create a tag with a digest reference", 1)


def _print_progress(events: Any, *, final_to_stdout: bool) -> None:
    last = ""
    for event in events:
        if not isinstance(event, dict):
            continue
        if event.get("error"):
            detail = event.get("errorDetail") or {}
            raise APIError(500, str(detail.get("message") or event["error"]))
        status = event.get("status")
        if not status:
            continue
        if final_to_stdout:
            last = str(status)
            continue
        ident = event.get("id")
        sys.stdout.write(f"{ident}: {status}\n" if ident else f"{status}\n")
    if final_to_stdout and last:
        sys.stdout.write(last + "\n")


def cmd_import(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(
        display,
        "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
        "Import the contents from a tarball to create a filesystem image",
        min_args=1,
        max_args=2,
    )
    fs.list("change", "c", "Apply Dockerfile instruction to the created image")
    fs.value("message", "m", "Set commit message for imported image")
    fs.value("platform", None, "Set platform if server is multi-platform capable")
    values, rest = fs.parse(args)
    source = rest[0]
    repo, tag = split_repo_tag(rest[1]) if len(rest) > 1 else ("", "")
    query: dict[str, Any] = {
        "fromSrc": "-" if source == "-" or "://" not in source else source,
        "repo": repo or None,
        "tag": tag or None,
        "message": values["message"],
        "changes": values["change"] or None,
        "platform": values["platform"],
    }
    if source == "-":
        data: Any = sys.stdin.buffer
        handle = None
    elif "://" in source:
        data, handle = None, None
    else:
        try:
            handle = open(source, "rb")  # noqa: SIM115 - closed in finally below
        except OSError as exc:
            raise CLIError(f"open {source}: {(exc.strerror or '').lower()}", 1) from None
        data = handle
    try:
        _print_progress(ctx.client.import_image(query, data), final_to_stdout=True)
    finally:
        if handle is not None:
            handle.close()
    return 0


def cmd_image_prune(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(display, "[OPTIONS]", "Remove unused images", max_args=0)
    fs.bool("all", "a", "Remove all unused images, not just dangling ones")
    fs.list("filter", None, 'Provide filter values (e.g. "until=<timestamp>")')
    fs.bool("force", "f", "Do not prompt for confirmation")
    values, _ = fs.parse(args)
    filters = parse_filters(values["filter"])
    if values["all"]:
        filters["dangling"] = ["false"]
        warning = (
            "WARNING! This will remove all images without at least one container "
            "associated to them."
        )
    else:
        warning = "WARNING! This will remove all dangling images."
    if not confirm_prune(warning, force=values["force"]):
        return 0
    report = ctx.client.prune_images(filters or None) or {}
    write_deleted_images(report)
    write_reclaimed(report)
    return 0


def write_deleted_images(report: dict[str, Any]) -> None:
    deleted = report.get("ImagesDeleted") or []
    if deleted:
        sys.stdout.write("Deleted Images:\n")
        for item in deleted:
            if item.get("Untagged"):
                sys.stdout.write(f"untagged: {item['Untagged']}\n")
            if item.get("Deleted"):
                sys.stdout.write(f"deleted: {item['Deleted']}\n")
        sys.stdout.write("\n")
