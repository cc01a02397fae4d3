""".dockerignore rules: Go filepath.Match plus `**`, exceptions, cleaning, build files kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockling.build.dockerignore import (
    PatternMatcher,
    keep_build_files,
    read_patterns,
    walk_context,
)
from dockling.errors import InvalidParameter


def test_read_patterns_cleans() -> None:
    text = "\ufeff# comment\n  \n/abs/path\n./rel/dir/\n ! keep.txt \n a/../b \n #not comment\n"
    assert read_patterns(text) == ["abs/path", "rel/dir", "!keep.txt", "b", "#not comment"]


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        (["*.md"], "README.md", True),
        (["*.md"], "docs/README.md", False),  # `*` does not cross `/`
        (["**/*.md"], "docs/deep/README.md", True),
        (["**/*.md"], "README.md", True),
        (["docs/**"], "docs/a/b", True),
        (["docs/**"], "docs", False),
        (["a/**/z"], "a/z", True),
        (["a/**/z"], "a/b/c/z", True),
        (["build"], "build/out/bin", True),  # a directory match excludes its contents
        (["?.txt"], "a.txt", True),
        (["?.txt"], "ab.txt", False),
        (["[a-c].txt"], "b.txt", True),
        (["[!a-c].txt"], "b.txt", False),
        (["[^a-c].txt"], "d.txt", True),
        (["\\*.txt"], "*.txt", True),
        (["\\*.txt"], "a.txt", False),
        (["file(1).txt"], "file(1).txt", True),
        (["a.b"], "axb", False),
        (["*", "!keep"], "keep", False),
        (["*", "!keep", "keep"], "keep", True),  # last match wins
        (["logs", "!logs/important.log"], "logs/important.log", False),
        (["logs", "!logs/important.log"], "logs/other.log", True),
        (["*/temp*"], "somedir/temporary.txt", True),
        (["*/*/temp*"], "somedir/subdir/temporary.txt", True),
        (["temp?"], "tempa", True),
    ],
)
def test_matches(patterns: list[str], path: str, excluded: bool) -> None:
    assert PatternMatcher(patterns).matches(path) is excluded


def test_bad_patterns() -> None:
    with pytest.raises(InvalidParameter):
        PatternMatcher(["[unclosed"])


def test_build_files_always_sent() -> None:
    patterns = keep_build_files(["*", "!src"], "Dockerfile")
    matcher = PatternMatcher(patterns)
    assert not matcher.matches("Dockerfile")
    assert not matcher.matches(".dockerignore")
    assert matcher.matches("other")
    assert keep_build_files(["*.txt"], "Dockerfile") == ["*.txt"]
    assert keep_build_files([], "ci/Dockerfile", from_stdin=True) == ["!ci/Dockerfile"]


def test_walk_context(tmp_path: Path) -> None:
    for rel in [
        "Dockerfile",
        "app/main.py",
        "app/main.pyc",
        "node_modules/x/index.js",
        "logs/keep.log",
        "logs/drop.log",
        "docs/a.md",
    ]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    patterns = read_patterns("**/*.pyc\nnode_modules\nlogs\n!logs/keep.log\ndocs/\n")
    sent = list(walk_context(str(tmp_path), PatternMatcher(patterns)))
    assert sent == ["Dockerfile", "app", "app/main.py", "logs/keep.log"]
