"""`dockling build`: for now only `--print-ast`, which parses without a daemon.

The building itself (RUN steps, layers, cache) is the next part of the builder issue.
"""

from __future__ import annotations

import os
import sys

from dockling.build.ast import render
from dockling.build.parser import parse_dockerfile
from dockling.build.syntax import parse_nodes
from dockling.cli.context import CLIError, Context
from dockling.cli.flags import FlagSet
from dockling.errors import DocklingError


def _read_dockerfile(context: str | None, file: str | None) -> tuple[str, str]:
    """(text, name for messages) of the Dockerfile `-f` and the context designate."""
    if file == "-" or (file is None and context == "-"):
        return sys.stdin.buffer.read().decode("utf-8", "surrogateescape"), "Dockerfile"
    path = os.path.join(context or ".", "Dockerfile") if file is None else file
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise CLIError(
            f"unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
            f"lstat {os.path.abspath(path)}: no such file or directory"
        ) from None
    except OSError as exc:
        raise CLIError(f"unable to read Dockerfile {path}: {exc.strerror}") from None
    return data.decode("utf-8", "surrogateescape"), os.path.basename(path)


def cmd_build(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(
        display, "[OPTIONS] PATH | URL | -", "Build an image from a Dockerfile", max_args=1
    )
    fs.value("file", "f", 'Name of the Dockerfile (default: "PATH/Dockerfile")')
    fs.bool("print-ast", None, "Print the parsed Dockerfile and exit (no daemon needed)")
    values, rest = fs.parse(args)
    context = rest[0] if rest else None
    if not values["print_ast"]:
        raise CLIError(
            "dockling build: only --print-ast works yet; building images needs the "
            "builder's execution part (issue 5)"
        )
    if context is None and values["file"] is None:
        raise fs.args_error(f'"dockling {display}" requires exactly 1 argument.')
    text, name = _read_dockerfile(context, values["file"])
    try:
        # The typed parse validates (unknown instructions, flags, argument counts).
        parsed = parse_dockerfile(text, name)
        tree = parse_nodes(text, name)
    except DocklingError as exc:
        raise CLIError(exc.message) from None
    for warning in parsed.warnings:
        sys.stderr.write(f"[WARNING]: {warning}\n")
    sys.stdout.write(render(tree))
    return 0
