"""Here-documents in RUN, COPY and ADD (`<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`).

A word of the instruction line that reads `[fd]<<[-]NAME` starts a heredoc; the bodies
follow the instruction line in the order the words appear, each ended by a line equal
to NAME (after stripping leading tabs for `<<-`).  A quoted NAME turns off variable
expansion in the body.
"""

from __future__ import annotations

import re
from dataclasses import replace

from dockling.build.expand import ShellLex
from dockling.build.line_parsers import parse_words
from dockling.build.nodes import Heredoc
from dockling.errors import InvalidParameter

_HEREDOC_WORD = re.compile(r"^(\d*)<<(-?)([^<]*)$")
_LEADING_TABS = re.compile(r"^\t+", re.MULTILINE)


def parse_heredoc_word(word: str) -> Heredoc | None:
    """The heredoc a single word starts (body still empty), or None if it is not one."""
    match = _HEREDOC_WORD.match(word)
    if match is None or not match.group(3):
        return None
    rest = match.group(3)
    lex = ShellLex("\\", skip_unset=True)
    words = lex.process_words(rest, {})
    if len(words) != 1:
        return None
    raw = ShellLex("\\", raw_quotes=True, skip_unset=True).process_words(rest, {})
    name = words[0]
    quotes = name.count("'") + name.count('"')
    raw_quotes = raw[0].count("'") + raw[0].count('"')
    return Heredoc(
        name=name,
        content="",
        expand=quotes == raw_quotes,
        chomp=match.group(2) == "-",
        fd=int(match.group(1) or 0),
    )


def heredocs_in_line(line: str) -> list[Heredoc]:
    """The heredocs an instruction line opens, in order."""
    docs: list[Heredoc] = []
    for word in parse_words(line, "\\"):
        doc = parse_heredoc_word(word)
        if doc is not None:
            docs.append(doc)
    return docs


def read_heredoc_bodies(
    docs: list[Heredoc], lines: list[str], index: int
) -> tuple[tuple[Heredoc, ...] | None, int]:
    """Read the bodies of `docs` from `lines[index:]` (lines keep their newlines).

    Returns the completed heredocs (None if one was not terminated) and the index of
    the first line after the last terminator, which is also the 1-based number of
    that terminator line.
    """
    done: list[Heredoc] = []
    for doc in docs:
        body: list[str] = []
        terminated = False
        while index < len(lines):
            line = lines[index]
            index += 1
            candidate = line.rstrip("\n").removesuffix("\r")
            if doc.chomp:
                candidate = candidate.lstrip("\t")
            if candidate == doc.name:
                terminated = True
                break
            body.append(line)
        if not terminated:
            return None, index
        done.append(replace(doc, content="".join(body)))
    return tuple(done), index


def chomp(content: str) -> str:
    """The body of a `<<-` heredoc with each line's leading tabs removed."""
    return _LEADING_TABS.sub("", content)


def is_heredoc_word(word: str) -> bool:
    """Whether an argument of COPY/ADD/RUN names a heredoc (`<<EOF`)."""
    try:
        return parse_heredoc_word(word) is not None
    except InvalidParameter:
        return False
