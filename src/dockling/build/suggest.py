"""Suggestions for misspelt words: `(did you mean RUN?)`, by edit distance."""

from __future__ import annotations

from collections.abc import Iterable


def edit_distance(a: str, b: str) -> int:
    """Edit distance between `a` and `b`, a swap of two neighbours counting as one edit."""
    rows = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        rows[i][0] = i
    for j in range(len(b) + 1):
        rows[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            best = min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                best = min(best, rows[i - 2][j - 2] + 1)
            rows[i][j] = best
    return rows[-1][-1]


def closest(word: str, options: Iterable[str]) -> str | None:
    """The option nearest `word` (case-insensitive), if it is near enough to be a typo.

    One edit is allowed for short words, two for words of six letters or more; an
    exact match suggests nothing.
    """
    if len(word) <= 1:
        return None
    lowered = word.lower()
    limit = 2 if len(word) < 6 else 3
    best: str | None = None
    for option in options:
        candidate = option.lower()
        if candidate == lowered:
            return None
        distance = edit_distance(lowered, candidate)
        if distance < limit:
            limit, best = distance, option
    return best


def did_you_mean(word: str, options: Iterable[str], *, upper: bool) -> str:
    """` (did you mean X?)` for the closest option, or "" when none is close."""
    match = closest(word, options)
    if match is None:
        return ""
    return f" (did you mean {match.upper() if upper else match}?)"
