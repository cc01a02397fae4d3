"""`dockling inspect`, `container inspect` and `image inspect`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

from dockling.cli.context import CLIError, Context
from dockling.cli.flags import FlagSet
from dockling.client.transport import APIError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs every CLI start a few ms: annotations only
    from typing import Any


def _flags(display: str, description: str, *, with_type: bool) -> FlagSet:
    fs = FlagSet(display, "[OPTIONS] NAME|ID [NAME|ID...]", description, min_args=1)
    fs.value("format", "f", "Format output using a custom template")
    fs.bool("size", "s", "Display total file sizes if the type is container")
    if with_type:
        fs.value("type", None, "Return JSON for specified type")
    return fs


def _emit(objects: list[Any], fmt: str | None) -> None:
    if not fmt or fmt == "json":
        # docker prints the array with 4-space indentation
        text = json.dumps(objects, indent=4, ensure_ascii=False) if objects else "[]"
        sys.stdout.write(text + "\n")
        return
    from dockling.cli.template import Template, TemplateError

    try:
        template = Template(fmt, strict=True)
    except TemplateError as exc:
        # docker's inspect exits 64 for a template that does not parse
        raise CLIError(f"template parsing error: template: {exc}", 64) from None
    try:
        for obj in objects:
            sys.stdout.write(template.render(obj) + "\n")
    except TemplateError as exc:
        raise CLIError(f"template parsing error: template: {exc}", 1) from None


def _run(
    refs: list[str],
    fmt: str | None,
    lookups: list[Callable[[str], Any]],
    missing: Callable[[str], str] | None,
) -> int:
    """Inspect each ref with the first lookup that finds it. A ref none finds is reported
    as `Error: {missing(ref)}`, or, with `missing` None, in the daemon's words (docker's
    image inspect: "Error response from daemon: No such image: x:latest")."""
    found: list[Any] = []
    errors: list[str] = []
    for ref in refs:
        last: APIError | None = None
        for lookup in lookups:
            try:
                found.append(lookup(ref))
                break
            except APIError as exc:
                if exc.status != 404:
                    raise
                last = exc
        else:
            if missing is None and last is not None:
                errors.append(f"Error response from daemon: {last.message}")
            else:
                errors.append(f"Error: {missing(ref) if missing else ref}")
    _emit(found, fmt)
    if errors:
        sys.stderr.write("".join(f"{e}\n" for e in errors))
        return 1
    return 0


def cmd_inspect(ctx: Context, args: list[str], display: str) -> int:
    fs = _flags(display, "Return low-level information on dockling objects", with_type=True)
    values, refs = fs.parse(args)
    client = ctx.client
    kind = values["type"]
    size = bool(values["size"])

    def container(ref: str) -> Any:
        return client.inspect_container(ref, size=size)

    table: dict[str | None, list[Callable[[str], Any]]] = {
        None: [container, client.inspect_image, client.inspect_volume],
        "container": [container],
        "image": [client.inspect_image],
        "volume": [client.inspect_volume],
    }
    if kind not in table:
        raise CLIError(f'"{kind}" is not a valid value for --type', 1)
    noun = {None: "object", "container": "container", "image": "image", "volume": "volume"}[kind]
    if kind == "image":
        return _run(refs, values["format"], table[kind], None)
    return _run(refs, values["format"], table[kind], lambda ref: f"No such {noun}: {ref}")


def cmd_container_inspect(ctx: Context, args: list[str], display: str) -> int:
    values, refs = _flags(
        display, "Display detailed information on one or more containers", with_type=False
    ).parse(args)
    size = bool(values["size"])
    return _run(
        refs,
        values["format"],
        [lambda ref: ctx.client.inspect_container(ref, size=size)],
        lambda ref: f"No such container: {ref}",
    )


def cmd_image_inspect(ctx: Context, args: list[str], display: str) -> int:
    values, refs = _flags(
        display, "Display detailed information on one or more images", with_type=False
    ).parse(args)
    return _run(refs, values["format"], [ctx.client.inspect_image], None)
