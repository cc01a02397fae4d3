"""Parser directives: `# syntax=`, `# escape=` and `# check=` at the top of a Dockerfile.

Directives are recognised only before the first instruction, comment that is not a
directive, or blank line; each may appear once.  Keys are case-insensitive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockling.errors import InvalidParameter

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
KNOWN_DIRECTIVES = frozenset({"syntax", "escape", "check"})


@dataclass(frozen=True)
class Directives:
    """The directives a Dockerfile declared (escape defaults to backslash)."""

    escape: str = "\\"
    syntax: str | None = None
    check: str | None = None


class DirectiveScanner:
    """Fed the file's lines in order (left whitespace trimmed); collects the directives."""

    def __init__(self) -> None:
        self.done = False
        self._seen: dict[str, str] = {}

    def feed(self, line: str) -> None:
        """Record `line` if it is a directive; otherwise stop looking for directives.

        Raises InvalidParameter for a repeated directive or an invalid escape token.
        """
        if self.done:
            return
        match = _DIRECTIVE.match(line)
        if match is None:
            self.done = True
            return
        key = match.group(1).lower()
        if key not in KNOWN_DIRECTIVES:
            self.done = True
            return
        if key in self._seen:
            raise InvalidParameter(f"only one {key} parser directive can be used")
        value = match.group(2)
        if key == "escape" and value not in ("\\", "`"):
            raise InvalidParameter(f"invalid escape token '{value}' does not match ` or \\")
        self._seen[key] = value

    @property
    def escape(self) -> str:
        return self._seen.get("escape", "\\")

    def result(self) -> Directives:
        return Directives(
            escape=self.escape,
            syntax=self._seen.get("syntax"),
            check=self._seen.get("check"),
        )
