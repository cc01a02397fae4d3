"""The malicious layer corpus (tests/helpers/evil_layers.py) against the extractor: every
case is refused or neutralised, and nothing beside the snapshot directory changes; the
whole parent directory is compared before and after.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from dockling import errors
from dockling.archive.extract import extract_layer
from tests.helpers.evil_layers import EvilLayer, corpus

pytestmark = pytest.mark.root

# The names are fixed; the victim's absolute path only matters to the absolute cases.
CASES = sorted(corpus(Path("/placeholder")))

Snapshot = dict[str, tuple[int, int, int, int, str, tuple[tuple[str, bytes], ...]]]


def tree_snapshot(top: Path, *, skip: Path) -> Snapshot:
    """Every entry under `top` except the subtree `skip`: mode, size, mtime, links, target,
    xattrs (a write, link, delete, whiteout or opaque mark would change one of them)."""
    found: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(top):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d != skip]
        for name in [*dirnames, *filenames, "."]:
            path = here / name
            st = os.lstat(path)
            target = os.readlink(path) if path.is_symlink() else ""
            attrs = tuple(
                sorted((k, os.getxattr(path, k, follow_symlinks=False)) for k in _xattrs(path))
            )
            key = str(path.relative_to(top))
            found[key] = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_nlink, target, attrs)
    return found


def _xattrs(path: Path) -> list[str]:
    try:
        return os.listxattr(path, follow_symlinks=False)
    except OSError:
        return []


def unpack(data: bytes, root: Path, lowers: tuple[Path, ...]) -> None:
    extract_layer(io.BytesIO(data), root, lowers=lowers)


@pytest.mark.parametrize("name", CASES)
def test_evil_layer(name: str, tmp_path: Path) -> None:
    case = tmp_path / "case"
    root, outside = case / "root", case / "outside"
    for p in (root, outside):
        p.mkdir(parents=True)
    (outside / "secret").write_text("secret\n")
    evil: EvilLayer = corpus(outside)[name]
    lowers: list[Path] = []
    for n, lower in enumerate(evil.lowers):
        path = case / f"lower{n}"
        path.mkdir()
        unpack(lower, path, tuple(reversed(lowers)))
        lowers.append(path)
    # The parent of the case directory: an escape by one more ".." would land here.
    before = tree_snapshot(tmp_path, skip=root)
    passwd = os.stat("/etc/passwd")
    if evil.refused:
        with pytest.raises(errors.InvalidParameter) as refused:
            unpack(evil.layer, root, tuple(reversed(lowers)))
        assert "unsafe layer member" in str(refused.value) or "invalid layer" in str(
            refused.value
        ), refused.value
        assert len(str(refused.value)) < 1000  # huge names are cut in messages
    else:
        unpack(evil.layer, root, tuple(reversed(lowers)))
        assert evil.check is not None
        evil.check(root)
    assert tree_snapshot(tmp_path, skip=root) == before
    assert (outside / "secret").read_text() == "secret\n"
    after = os.stat("/etc/passwd")
    assert (after.st_nlink, after.st_ino, after.st_mtime_ns) == (
        passwd.st_nlink,
        passwd.st_ino,
        passwd.st_mtime_ns,
    )
    assert not os.path.lexists("/outside")


def test_corpus_covers_every_attack_family() -> None:
    families = ("dotdot", "absolute", "symlink", "hardlink", "whiteout", "opaque", "huge")
    for family in families:
        assert any(family in name for name in CASES), family
    assert any(name.startswith("lower-") for name in CASES)
