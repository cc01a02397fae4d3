"""Marked sections of docs/benchmarks.md: each benchmark script rewrites only its own."""

from __future__ import annotations

from pathlib import Path


def write_section(doc: Path, begin: str, end: str, report: str) -> None:
    """Replace the text between `begin` and `end` in `doc` (appended the first time)."""
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    block = f"{begin}\n{report.rstrip()}\n{end}\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block
    doc.write_text(text)
