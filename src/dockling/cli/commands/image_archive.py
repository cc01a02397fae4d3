"""Image commands: history, save, load."""

from __future__ import annotations

import os
import sys
import time

from dockling.cli.context import CLIError, Context
from dockling.cli.flags import FlagSet
from dockling.cli.humanize import ago, human_size
from dockling.client.transport import APIError, iter_json, quote_ref

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs every CLI start a few ms: annotations only
    from typing import Any

HISTORY_FORMAT = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
HISTORY_FORMAT_NOT_HUMAN = "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
HISTORY_HEADERS = {
    "ID": "IMAGE",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "CreatedBy": "CREATED BY",
    "Size": "SIZE",
    "Comment": "COMMENT",
}
_CREATED_BY_WIDTH = 45
_COPY_CHUNK = 1 << 16


def _rfc3339_seconds(timestamp: float) -> str:
    """Go's time.Unix(t, 0).Format(time.RFC3339) in local time ("Z" for UTC)."""
    from datetime import datetime

    text = datetime.fromtimestamp(int(timestamp)).astimezone().isoformat(timespec="seconds")
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text


def ellipsis(text: str, width: int) -> str:
    """Docker's Ellipsis: cut to `width` characters, the last one an ellipsis."""
    if len(text) <= width:
        return text
    return text[: width - 1] + "…"


class HistoryRow:
    """One history entry as docker's historyContext."""

    def __init__(self, entry: dict[str, Any], *, trunc: bool, human: bool, now: float) -> None:
        image_id = str(entry.get("Id") or "")
        if trunc and image_id.startswith("sha256:"):
            image_id = image_id[7:19]
        created = float(entry.get("Created") or 0)
        created_by = str(entry.get("CreatedBy") or "")
        if trunc:
            created_by = ellipsis(created_by.replace("\t", " "), _CREATED_BY_WIDTH)
        size = int(entry.get("Size") or 0)
        created_at = _rfc3339_seconds(created)
        self.values = {
            "ID": image_id,
            "CreatedSince": ago(created, now) if human else created_at,
            "CreatedAt": created_at,
            "CreatedBy": created_by,
            "Size": human_size(size, 3) if human else str(size),
            "Comment": str(entry.get("Comment") or ""),
        }

    def template_field(self, name: str) -> Any:
        if name not in self.values:
            from dockling.cli.template import TemplateError

            raise TemplateError(f"can't evaluate field {name} in type *image.historyContext")
        return self.values[name]

    def template_json(self) -> dict[str, str]:
        return dict(sorted(self.values.items()))


def cmd_history(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(
        display, "[OPTIONS] IMAGE", "Show the history of an image", min_args=1, exact_args=True
    )
    fs.value("format", None, "Format output using a custom template")
    fs.bool("human", "H", "Print sizes and dates in human readable format", default=True)
    fs.bool("no-trunc", None, "Don't truncate output")
    fs.bool("quiet", "q", "Only show image IDs")
    fs.value("platform", None, "Show history for the given platform")
    values, (image,) = fs.parse(args)
    entries = ctx.client.transport.call("GET", f"/images/{quote_ref(image)}/history") or []
    now = time.time()
    rows = [
        HistoryRow(e, trunc=not values["no_trunc"], human=bool(values["human"]), now=now)
        for e in entries
    ]
    if values["quiet"]:
        sys.stdout.write("".join(r.values["ID"] + "\n" for r in rows))
        return 0
    from dockling.cli.table import write_listing

    default = HISTORY_FORMAT if values["human"] else HISTORY_FORMAT_NOT_HUMAN
    write_listing(values["format"] or default, rows, HISTORY_HEADERS)
    return 0


def cmd_save(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(
        display,
        "[OPTIONS] IMAGE [IMAGE...]",
        "Save one or more images to a tar archive (streamed to STDOUT by default)",
        min_args=1,
    )
    fs.value("output", "o", "Write to a file, instead of STDOUT")
    fs.value("format", None, "Archive format: docker (docker and OCI views) or oci")
    fs.list("platform", None, "Save only the given platform(s)")
    values, names = fs.parse(args)
    output = values["output"]
    if not output and sys.stdout.isatty():
        raise CLIError("cowardly refusing to save to a terminal. Use the -o flag or redirect", 1)
    query: dict[str, Any] = {"names": names, "format": values["format"]}
    resp = ctx.client.transport.request("GET", "/images/get", query=query)
    _write_body(resp, output)
    return 0


def _write_body(resp: Any, output: str | None) -> None:
    """Copy a response body to the file `output` (atomically) or to stdout."""
    try:
        if output:
            tmp = f"{output}.tmp-{os.getpid()}"
            try:
                with open(tmp, "wb") as out:
                    while chunk := resp.read1(_COPY_CHUNK):
                        out.write(chunk)
                os.replace(tmp, output)
            except OSError as exc:
                raise CLIError(f"failed to save image: {exc.strerror}: {output}", 1) from None
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        else:
            stdout = sys.stdout.buffer
            while chunk := resp.read1(_COPY_CHUNK):
                stdout.write(chunk)
            stdout.flush()
    finally:
        resp.close()


def cmd_load(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(display, "[OPTIONS]", "Load an image from a tar archive or STDIN", max_args=0)
    fs.value("input", "i", "Read from tar archive file, instead of STDIN")
    fs.bool("quiet", "q", "Suppress the load output")
    fs.list("platform", None, "Load only the given platform(s)")
    values, _ = fs.parse(args)
    source = values["input"]
    if not source and sys.stdin.isatty():
        raise CLIError("requested load from stdin, but stdin is empty", 1)
    try:
        stream: Any = open(source, "rb") if source else sys.stdin.buffer  # noqa: SIM115
    except OSError as exc:
        raise CLIError(f"open {source}: {(exc.strerror or '').lower()}", 1) from None
    try:
        resp = ctx.client.transport.request(
            "POST", "/images/load", query={"quiet": bool(values["quiet"])}, data=stream
        )
        for event in iter_json(resp):
            if not isinstance(event, dict):
                continue
            if event.get("error"):
                raise APIError(500, str(event["error"]))
            if event.get("stream"):
                sys.stdout.write(str(event["stream"]))
    finally:
        if source:
            stream.close()
    return 0
