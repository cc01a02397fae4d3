"""Tables and `--format` output the way docker's formatter package writes them.

Docker runs every row through Go's tabwriter with minwidth 10, tabwidth 1,
padding 3 and blank padding: each tab-terminated cell is padded to
max(widest cell in its column + 3, 10); the last cell of a line is not padded.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any, TextIO

MIN_WIDTH = 10
PADDING = 3


def tabwrite(lines: Iterable[str], *, min_width: int = MIN_WIDTH, padding: int = PADDING) -> str:
    """Align tab-separated cells of `lines` into columns like Go's tabwriter (its minwidth
    and padding: docker's tables use 10 and 3, `docker top` 20 and 3)."""
    rows = [line.split("\t") for line in lines]
    widths: dict[int, int] = {}
    for cells in rows:
        for index, cell in enumerate(cells[:-1]):
            widths[index] = max(widths.get(index, min_width), len(cell) + padding)
    out: list[str] = []
    for cells in rows:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(cells[:-1])]
        padded.append(cells[-1])
        out.append("".join(padded))
    return "".join(line + "\n" for line in out)


def prepare_format(fmt: str) -> tuple[bool, str]:
    """(is_table, template source) after docker's trimming and `\\t`/`\\n` escapes."""
    is_table = fmt.startswith("table")
    if is_table:
        fmt = fmt[len("table") :]
    fmt = fmt.strip(" ")
    fmt = fmt.replace("\\t", "\t").replace("\\n", "\n")
    return is_table, fmt


class HeaderContext:
    """Template data that renders each field as its column header."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self.headers = headers

    def template_field(self, name: str) -> Any:
        if name in ("Label", "Annotation"):
            # Most of docker's lists head a `.Label "k"` column with the key; a few say LABEL.
            fixed = self.headers.get(name)
            return lambda key="", *_args: fixed or key
        # docker's header context is a map: a field it has no header for is <no value>.
        return self.headers.get(name, "<no value>")


def write_formatted(
    fmt: str,
    rows: Iterable[Any],
    headers: Mapping[str, str],
    out: TextIO | None = None,
) -> None:
    """Render `rows` through `fmt` (docker semantics: `table` prefix adds a header)."""
    from dockling.cli.template import Template

    stream = out or sys.stdout
    is_table, source = prepare_format(fmt)
    template = Template(source)
    rendered = [template.render(row) for row in rows]
    if is_table:
        header = template.render(HeaderContext(headers))
        text = "\n".join([header, *rendered])
        stream.write(tabwrite(text.split("\n")))
    else:
        stream.write("".join(line + "\n" for line in rendered))


def write_listing(fmt: str, rows: Iterable[Any], headers: Mapping[str, str]) -> None:
    """A list command's `--format` output: `write_formatted`, where "json" means one JSON
    document per row and a bad template stops the command with docker's
    `template parsing error: template: ...` (code 1)."""
    from dockling.cli.context import CLIError
    from dockling.cli.template import TemplateError

    if fmt == "json":
        fmt = "{{json .}}"
    try:
        write_formatted(fmt, rows, headers)
    except TemplateError as exc:
        raise CLIError(f"template parsing error: template: {exc}", 1) from None
