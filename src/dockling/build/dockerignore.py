"""`.dockerignore`: which files of the build context are sent, by Docker's rules.

Patterns use Go's filepath.Match syntax (`*`, `?`, `[a-z]`, `\\` escapes) plus `**`
for any number of directories; `!` makes an exception; the last matching pattern
wins; a pattern matching a directory excludes everything under it.  Patterns are
cleaned (`./a/` -> `a`, leading `/` dropped).  The Dockerfile and `.dockerignore`
are always sent (the builder does not copy them unless asked).
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterator

from dockling.errors import InvalidParameter

_REGEX_SPECIAL = frozenset(".+()|{}$^")


def read_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore file, cleaned, with `!` kept on exceptions."""
    if text.startswith("\ufeff"):
        text = text[1:]
    patterns: list[str] = []
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        pattern = raw.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = posixpath.normpath(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern.lstrip("/") or "/"
        patterns.append("!" + pattern if invert else pattern)
    return patterns


class Pattern:
    """One compiled pattern.  (No dataclass: this module is imported by every CLI build
    and dataclasses costs a start several ms.)"""

    __slots__ = ("exclusion", "regex", "text")

    def __init__(self, text: str, exclusion: bool, regex: re.Pattern[str]) -> None:
        self.text = text
        self.exclusion = exclusion  # a `!` exception
        self.regex = regex

    def __repr__(self) -> str:
        return f"Pattern({self.text!r}, exclusion={self.exclusion})"

    def match(self, path: str) -> bool:
        return self.regex.match(path) is not None


def compile_pattern(pattern: str) -> Pattern:
    """Compile one pattern; raises InvalidParameter for a malformed one."""
    exclusion = pattern.startswith("!")
    if exclusion:
        pattern = pattern[1:]
        if not pattern:
            raise InvalidParameter('illegal exclusion pattern: "!"')
    pattern = posixpath.normpath(pattern) if pattern else pattern
    try:
        regex = re.compile(_to_regex(pattern), re.DOTALL)
    except re.error:
        raise InvalidParameter(f"syntax error in pattern: {pattern}") from None
    return Pattern(pattern, exclusion, regex)


def _to_regex(pattern: str) -> str:
    out = ["^"]
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        i += 1
        if in_class:
            if ch == "]":
                in_class = False
            elif ch == "\\" and i < n:
                out.append("\\" + pattern[i])
                i += 1
                continue
            out.append(ch)
            continue
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                # `**` crosses directories; `**/` may also match no directory at all
                out.append(".*" if i == n else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            in_class = True
            out.append("[")
            if i < n and pattern[i] in "!^":
                out.append("^")
                i += 1
        elif ch == "\\":
            if i < n:
                out.append(re.escape(pattern[i]))
                i += 1
            else:
                out.append("\\\\")
        elif ch in _REGEX_SPECIAL:
            out.append("\\" + ch)
        else:
            out.append(re.escape(ch) if not ch.isalnum() and ch not in "/_-" else ch)
    if in_class:
        raise InvalidParameter(f"syntax error in pattern: {pattern}")
    out.append("$")
    return "".join(out)


class PatternMatcher:
    """A list of patterns applied in order (last match wins)."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns = [compile_pattern(p) for p in patterns if p and p != "!"]
        self.has_exclusions = any(p.exclusion for p in self.patterns)

    def matches(self, path: str) -> bool:
        """Whether `path` (relative, `/`-separated) is excluded, by itself or a parent."""
        path = posixpath.normpath(path)
        parent = posixpath.dirname(path)
        parents = parent.split("/") if parent else []
        matched = False
        for pattern in self.patterns:
            # an exception only matters once excluded; an exclusion only while included
            if pattern.exclusion != matched:
                continue
            hit = pattern.match(path)
            if not hit:
                hit = any(pattern.match("/".join(parents[: i + 1])) for i in range(len(parents)))
            if hit:
                matched = not pattern.exclusion
        return matched

    def may_include_under(self, directory: str) -> bool:
        """Whether an exception could re-include something under an excluded directory."""
        if not self.has_exclusions:
            return False
        prefix = directory.rstrip("/") + "/"
        for pattern in self.patterns:
            if not pattern.exclusion:
                continue
            text = pattern.text
            if "*" in text or "?" in text or "[" in text or text.startswith(prefix):
                return True
        return False


def keep_build_files(
    patterns: list[str], dockerfile: str, *, from_stdin: bool = False
) -> list[str]:
    """`patterns` plus exceptions so the Dockerfile and .dockerignore are always sent."""
    result = list(patterns)
    matcher = PatternMatcher(patterns)
    if matcher.matches(".dockerignore"):
        result.append("!.dockerignore")
    dockerfile = dockerfile.replace(os.sep, "/")
    if from_stdin or matcher.matches(dockerfile):
        result.append("!" + dockerfile)
    return result


def walk_context(root: str, matcher: PatternMatcher) -> Iterator[str]:
    """The context's paths to send, relative and `/`-separated, sorted per directory.

    Directories are yielded before their contents; an excluded directory is skipped
    unless an exception may re-include something inside it.
    """
    yield from _walk(root, "", matcher)


def _walk(root: str, relative: str, matcher: PatternMatcher) -> Iterator[str]:
    directory = os.path.join(root, relative) if relative else root
    with os.scandir(directory) as entries:
        names = sorted((entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries)
    for name, is_dir in names:
        path = f"{relative}/{name}" if relative else name
        excluded = matcher.matches(path)
        if not excluded:
            yield path
        if is_dir and (not excluded or matcher.may_include_under(path)):
            yield from _walk(root, path, matcher)
