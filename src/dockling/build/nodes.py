"""The raw syntax tree of a Dockerfile: one `Node` per instruction, as BuildKit's parser builds it.

A node keeps the keyword as written, the `--flags` before the arguments, and the
arguments split the way Docker's line parsers split them (a shell-form command stays one
string; JSON form gives one argument per element; ENV and LABEL give key, value and
separator triples).  `dockling.build.parser` turns nodes into typed instructions.
"""

from __future__ import annotations

from dataclasses import dataclass

from dockling.build.directives import Directives


@dataclass(frozen=True)
class Heredoc:
    """A here-document read after an instruction line (`<<EOF`, `<<-EOF`, `<<"EOF"`)."""

    name: str
    content: str  # the body lines, each with its newline, tabs not yet stripped
    expand: bool  # False when the delimiter was quoted: no variable expansion
    chomp: bool  # `<<-`: leading tabs are stripped from the body lines
    fd: int = 0  # the file descriptor written before `<<` (`3<<EOF`), 0 when none


@dataclass(frozen=True)
class Node:
    """One instruction of a Dockerfile, before any validation."""

    keyword: str  # as written, e.g. "run" or "RUN"
    flags: tuple[str, ...]  # e.g. ("--from=build", "--chown=1:1") with quotes removed
    args: tuple[str, ...]
    json: bool  # the arguments were a JSON array (exec form)
    original: str  # the logical line (continuations joined)
    start_line: int  # 1-based
    end_line: int
    heredocs: tuple[Heredoc, ...] = ()
    child: Node | None = None  # ONBUILD's trigger instruction
    comments: tuple[str, ...] = ()  # the comment lines right above the instruction

    @property
    def command(self) -> str:
        """The keyword in lower case (`run`, `copy`, ...)."""
        return self.keyword.lower()


@dataclass(frozen=True)
class NodeTree:
    """A whole parsed file: its directives, nodes in order, and parser warnings."""

    directives: Directives
    nodes: tuple[Node, ...]
    warnings: tuple[str, ...] = ()
    empty_continuations: tuple[int, ...] = ()  # first lines of instructions that have one
