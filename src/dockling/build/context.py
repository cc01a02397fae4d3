"""The build context: the tar the client sent, unpacked safely, `.dockerignore` applied.

Members may not leave the directory: absolute names and `..` are refused, nothing is
written through a symlink the tar itself made, hard links must point inside, devices are
skipped.  Modes and mtimes are kept (COPY preserves them); owners are not (COPY writes
0:0 unless --chown).
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
import tempfile
from pathlib import Path

from dockling.build.dockerignore import PatternMatcher, read_patterns
from dockling.errors import InvalidParameter


def _clean(name: str) -> str:
    path = posixpath.normpath("/" + name).lstrip("/")
    if name.startswith("/") or ".." in name.split("/"):
        raise InvalidParameter(f"invalid path in build context: {name}")
    return "" if path == "." else path


def unpack_context(archive: Path, dest: Path) -> None:
    """Unpack the (optionally compressed) tar `archive` into the directory `dest`."""
    links: set[str] = set()
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = _clean(member.name)
                if not name:
                    continue
                parts = name.split("/")
                if any("/".join(parts[:i]) in links for i in range(1, len(parts))):
                    raise InvalidParameter(f"invalid path in build context: {member.name}")
                target = dest / name
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    os.chmod(target, member.mode & 0o7777)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.is_symlink() or target.exists():
                    if target.is_dir() and not target.is_symlink():
                        shutil.rmtree(target)
                    else:
                        target.unlink()
                if member.issym():
                    os.symlink(member.linkname, target)
                    links.add(name)
                elif member.islnk():
                    source = dest / _clean(member.linkname)
                    if not source.is_file() or source.is_symlink():
                        raise InvalidParameter(f"invalid hard link in build context: {name}")
                    os.link(source, target)
                elif member.isreg():
                    data = tar.extractfile(member)
                    assert data is not None
                    with data, open(target, "wb") as out:
                        shutil.copyfileobj(data, out, 1 << 20)
                    os.chmod(target, member.mode & 0o7777)
                else:
                    continue  # devices and fifos are not build inputs
                os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)
    except tarfile.TarError as exc:
        raise InvalidParameter(f"invalid build context: {exc}") from None


def apply_dockerignore(root: Path) -> None:
    """Delete what `.dockerignore` excludes (the Dockerfile too, if it is excluded: it is
    read before, and COPY must not see it)."""
    ignore = root / ".dockerignore"
    if not ignore.is_file() or ignore.is_symlink():
        return
    matcher = PatternMatcher(read_patterns(ignore.read_text("utf-8", "surrogateescape")))
    _prune(root, "", matcher)


def _prune(root: Path, relative: str, matcher: PatternMatcher) -> bool:
    """Remove excluded entries under `relative`; True when the directory kept something."""
    kept = False
    directory = root / relative if relative else root
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        path = f"{relative}/{entry.name}" if relative else entry.name
        excluded = matcher.matches(path)
        is_dir = entry.is_dir(follow_symlinks=False)
        if is_dir and (not excluded or matcher.may_include_under(path)):
            inner = _prune(root, path, matcher)
            if excluded and not inner:
                shutil.rmtree(entry.path)
            else:
                kept = True
        elif excluded:
            if is_dir:
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        else:
            kept = True
    return kept


def new_context_dir(data_root: Path) -> Path:
    """A fresh private directory under DATA_ROOT/tmp for one build's context."""
    tmp = data_root / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="build-context-", dir=tmp))
