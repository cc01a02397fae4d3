"""Dockerfile text to a `NodeTree`: directives, continuations, comments, heredocs.

This is the first of the two parsing steps, as in BuildKit: it knows how to find the
instructions and split their arguments but not what they mean; unknown keywords pass
through (the `parser` module names them).
"""

from __future__ import annotations

import re
from dataclasses import replace

from dockling.build.directives import DirectiveScanner
from dockling.build.heredoc import heredocs_in_line, read_heredoc_bodies
from dockling.build.line_parsers import (
    WHITESPACE,
    Parsed,
    extract_flags,
    parse_health_config,
    parse_maybe_json,
    parse_maybe_json_to_list,
    parse_name_or_name_val,
    parse_name_val,
    parse_string,
    parse_whitespace_delimited,
)
from dockling.build.nodes import Heredoc, Node, NodeTree
from dockling.errors import InvalidParameter

_BOM = "\ufeff"
_HEREDOC_COMMANDS = frozenset({"run", "copy", "add"})


def located(filename: str, line: int, message: str) -> InvalidParameter:
    """The error for `message` at `line` of `filename`: `Dockerfile:7: message`."""
    return InvalidParameter(f"{filename}:{line}: {message}")


def parse_nodes(text: str, filename: str = "Dockerfile") -> NodeTree:
    """Parse Dockerfile `text` into nodes.

    Raises InvalidParameter naming `filename` and the line for malformed input
    (bad directive, unterminated heredoc, bad ENV syntax) and for a file with no
    instructions.
    """
    if text.startswith(_BOM):
        text = text[1:]
    # Go's line scanner drops the "\r" of "\r\n" and splits only on "\n".
    lines = _split_go_lines(text)
    scanner = DirectiveScanner()
    nodes: list[Node] = []
    warnings: list[str] = []
    empty_continuations: list[int] = []
    comments: list[str] = []
    i = 0
    while i < len(lines):
        raw = _strip_newline(lines[i])
        i += 1
        start = i
        stripped = raw.lstrip()
        try:
            scanner.feed(stripped)
        except InvalidParameter as exc:
            raise located(filename, start, exc.message) from None
        if stripped.startswith("#"):
            comment = stripped[1:].strip()
            comments = [*comments, comment] if comment else []
            continue
        continuation = _continuation(scanner.escape)
        line, more = _trim_continuation(stripped, continuation)
        if not more and line == "":
            continue
        empty_continuation = False
        while more and i < len(lines):
            raw = _strip_newline(lines[i])
            i += 1
            try:
                scanner.feed(raw)
            except InvalidParameter as exc:
                raise located(filename, i, exc.message) from None
            if raw.lstrip().startswith("#"):
                continue
            if raw.strip() == "":
                empty_continuation = True
                continue
            part, more = _trim_continuation(raw, continuation)
            line += part
        if empty_continuation:
            warnings.append(f"{filename}:{i}: Empty continuation line found in: {line}")
            empty_continuations.append(start)
        try:
            node = node_from_line(line, scanner.escape, start, i, tuple(comments))
        except InvalidParameter as exc:
            raise located(filename, start, exc.message) from None
        if _can_contain_heredoc(node) and "<<" in line:
            try:
                docs = heredocs_in_line(line)
            except InvalidParameter as exc:
                raise located(filename, start, exc.message) from None
            if docs:
                bodies, i = read_heredoc_bodies(docs, lines, i)
                if bodies is None:
                    raise located(filename, start, "unterminated heredoc")
                node = _with_heredocs(node, bodies, i)
        nodes.append(node)
        comments = []
    if not nodes:
        raise located(filename, max(len(lines), 1), "file with no instructions")
    return NodeTree(scanner.result(), tuple(nodes), tuple(warnings), tuple(empty_continuations))


def _split_go_lines(text: str) -> list[str]:
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _strip_newline(line: str) -> str:
    if line.endswith("\n"):
        line = line[:-1]
    if line.endswith("\r"):
        line = line[:-1]
    return line


def _continuation(escape: str) -> re.Pattern[str]:
    return re.compile(re.escape(escape) + r"[ \t]*$")


def _trim_continuation(line: str, pattern: re.Pattern[str]) -> tuple[str, bool]:
    """(line without its continuation mark, whether it continues)."""
    match = pattern.search(line)
    if match is None:
        return line, False
    return line[: match.start()], True


_LINE_PARSERS = {
    "add": parse_maybe_json_to_list,
    "arg": parse_name_or_name_val,
    "cmd": parse_maybe_json,
    "copy": parse_maybe_json_to_list,
    "entrypoint": parse_maybe_json,
    "expose": parse_whitespace_delimited,
    "from": parse_whitespace_delimited,
    "healthcheck": parse_health_config,
    "maintainer": parse_string,
    "run": parse_maybe_json,
    "shell": parse_maybe_json,
    "stopsignal": parse_string,
    "user": parse_string,
    "volume": parse_maybe_json_to_list,
    "workdir": parse_string,
}


def node_from_line(
    line: str, escape: str, start: int, end: int, comments: tuple[str, ...] = ()
) -> Node:
    """One instruction's node from its logical line (keyword, flags, arguments)."""
    parts = WHITESPACE.split(line.strip(), maxsplit=1)
    keyword = parts[0]
    rest, flags = extract_flags(parts[1]) if len(parts) == 2 else ("", [])
    rest = rest.strip()
    command = keyword.lower()
    child: Node | None = None
    parsed: Parsed
    if command in ("env", "label"):
        parsed = parse_name_val(rest, escape, command.upper())
    elif command == "onbuild":
        parsed = ((), False)
        if rest:
            child = node_from_line(rest, escape, start, end)
    elif command in _LINE_PARSERS:
        parsed = _LINE_PARSERS[command](rest, escape)
    else:
        parsed = ((), False)
    args, is_json = parsed
    return Node(
        keyword=keyword,
        flags=tuple(flags),
        args=args,
        json=is_json,
        original=line,
        start_line=start,
        end_line=end,
        child=child,
        comments=comments,
    )


def _can_contain_heredoc(node: Node) -> bool:
    if node.command == "onbuild" and node.child is not None:
        return _can_contain_heredoc(node.child)
    return node.command in _HEREDOC_COMMANDS and not node.json


def _with_heredocs(node: Node, docs: tuple[Heredoc, ...], end: int) -> Node:
    if node.child is not None:
        return replace(node, end_line=end, child=replace(node.child, heredocs=docs, end_line=end))
    return replace(node, heredocs=docs, end_line=end)
