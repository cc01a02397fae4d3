"""Turn an overlay upper dir into a layer tar, and list its changes like `docker diff`.

The upper dir of an overlay holds every file the container created or modified (whole,
after copy-up), a 0:0 character device for every deleted name and the xattr
`trusted.overlay.opaque=y` on directories whose lower contents are hidden.  A layer tar
says the same with `.wh.NAME` entries and `.wh..wh..opq` markers.
"""

from __future__ import annotations

import enum
import errno
import os
import stat
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dockling.archive import whiteouts

_XATTR_PAX_PREFIX = "SCHILY.xattr."
# Files the runtime creates in the upper dir as targets of its bind mounts when the image
# lacks them.  Docker keeps them in a hidden "init" layer, so they are never a change.
MOUNT_PLACEHOLDERS = frozenset({"etc/hosts", "etc/hostname", "etc/resolv.conf"})


def is_placeholder(rel: str, st: os.stat_result) -> bool:
    """True for an empty regular file the runtime made as a bind-mount target."""
    return rel in MOUNT_PLACEHOLDERS and stat.S_ISREG(st.st_mode) and st.st_size == 0


class ChangeKind(enum.IntEnum):
    """Docker's change kinds (the numbers of GET /containers/{id}/changes)."""

    MODIFIED = 0
    ADDED = 1
    DELETED = 2

    @property
    def letter(self) -> str:
        return "CAD"[self.value]


@dataclass(frozen=True, slots=True)
class Change:
    path: str  # absolute inside the container: "/etc/passwd"
    kind: ChangeKind


def _walk(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """(relative path, lstat) of everything under `root`, parents first, names sorted."""
    stack: list[str] = [""]
    while stack:
        rel = stack.pop()
        directory = os.path.join(root, rel) if rel else os.fspath(root)
        with os.scandir(directory) as it:
            names = sorted(entry.name for entry in it)
        subdirs: list[str] = []
        for name in names:
            child = f"{rel}/{name}" if rel else name
            st = os.lstat(os.path.join(root, child))
            yield child, st
            if stat.S_ISDIR(st.st_mode):
                subdirs.append(child)
        # Depth-first in name order: push in reverse so the first name is visited first.
        stack.extend(reversed(subdirs))


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, whiteouts.OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _lower_lstat(lowers: Sequence[Path], rel: str) -> os.stat_result | None:
    """What the lower layers show at `rel` (nearest first), honouring their whiteouts."""
    for lower in lowers:
        try:
            st = os.lstat(os.path.join(lower, rel))
        except (FileNotFoundError, NotADirectoryError):
            continue
        if whiteouts.is_overlay_whiteout(st):
            return None
        return st
    return None


def changes(upper: Path, lowers: Sequence[Path]) -> list[Change]:
    """The changes `upper` makes over `lowers` (nearest first), sorted by path.

    As Docker: a directory present below is reported modified only when its mode, size
    or mtime differ, or when something directly inside it was added or deleted.
    """
    found: dict[str, ChangeKind] = {}
    for rel, st in _walk(upper):
        path = "/" + rel
        below = _lower_lstat(lowers, rel)
        if below is None and is_placeholder(rel, st):
            continue
        if whiteouts.is_overlay_whiteout(st):
            if below is None:
                continue
            kind = ChangeKind.DELETED
        elif below is None:
            kind = ChangeKind.ADDED
        elif (
            stat.S_ISDIR(st.st_mode)
            and stat.S_ISDIR(below.st_mode)
            and st.st_mode == below.st_mode
            and (
                st.st_mtime_ns // 1000 == below.st_mtime_ns // 1000
                or _only_placeholders(upper, rel)
            )
            and not _is_opaque(os.path.join(upper, rel))
        ):
            continue
        else:
            kind = ChangeKind.MODIFIED
        found[path] = kind
        if kind is not ChangeKind.MODIFIED:
            parent = os.path.dirname(path)
            if parent != "/" and parent not in found:
                found[parent] = ChangeKind.MODIFIED
    return [Change(p, found[p]) for p in sorted(found)]


def _only_placeholders(upper: Path, rel: str) -> bool:
    """True when everything in the upper dir's `rel` is a mount placeholder."""
    with os.scandir(os.path.join(upper, rel)) as it:
        names = [f"{rel}/{entry.name}" for entry in it]
    return bool(names) and all(is_placeholder(n, os.lstat(os.path.join(upper, n))) for n in names)


def _xattrs(path: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM):
            return headers
        raise
    for name in names:
        # trusted.overlay.* is overlayfs' own bookkeeping, never part of a layer.
        if name.startswith(whiteouts.OVERLAY_XATTR_PREFIX):
            continue
        value = os.getxattr(path, name, follow_symlinks=False)
        headers[_XATTR_PAX_PREFIX + name] = value.decode("utf-8", "surrogateescape")
    return headers


def _header(name: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.mode = stat.S_IMODE(st.st_mode)
    info.mtime = st.st_mtime_ns // 1_000_000_000
    info.uname = info.gname = ""
    return info


def write_layer(upper: Path, out: BinaryIO) -> None:
    """Write `upper` as an uncompressed layer tar (PAX) to `out`.

    Overlay whiteouts become `.wh.NAME` entries, opaque directories get a `.wh..wh..opq`
    marker, the runtime's mount placeholders are left out; owners, modes (setuid, setgid
    and sticky included), mtimes, xattrs (except trusted.overlay.*), hard links (within
    the layer), symlinks, devices and fifos are kept.  Sockets are skipped, as Docker does.
    """
    write_tree(upper, out, name="", skip_placeholders=True)


def write_tree(source: Path, out: BinaryIO, *, name: str, skip_placeholders: bool = False) -> None:
    """Write the file or directory `source` to `out` as a tar whose top entry is `name`.

    With `name=""` a directory's contents are written at the top level without an entry
    for the directory itself (a layer, an export).  Symlinks are stored, never followed
    below `source`.  Entries are written as `write_layer` describes.
    """
    links: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        top = os.lstat(source)
        entries: Iterator[tuple[str, os.stat_result]] = iter(())
        if name:
            entries = iter([("", top)])
        if stat.S_ISDIR(top.st_mode):
            entries = _chain(entries, _walk(source))
        for rel, st in entries:
            if skip_placeholders and is_placeholder(rel, st):
                continue
            full = os.path.join(source, rel) if rel else os.fspath(source)
            arcname = "/".join(p for p in (name, rel) if p)
            _add(tar, full, arcname, st, links)


def _chain(
    first: Iterator[tuple[str, os.stat_result]], second: Iterator[tuple[str, os.stat_result]]
) -> Iterator[tuple[str, os.stat_result]]:
    yield from first
    yield from second


def _add(
    tar: tarfile.TarFile,
    full: str,
    arcname: str,
    st: os.stat_result,
    links: dict[tuple[int, int], str],
) -> None:
    mode = st.st_mode
    if whiteouts.is_overlay_whiteout(st):
        head, base = os.path.split(arcname)
        info = _header(os.path.join(head, whiteouts.WHITEOUT_PREFIX + base), st)
        info.uid = info.gid = 0
        info.mode = 0o600
        tar.addfile(info)
        return
    info = _header(arcname, st)
    if not stat.S_ISLNK(mode):
        info.pax_headers = _xattrs(full)
    if stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        if _is_opaque(full):
            marker = _header(os.path.join(arcname, whiteouts.OPAQUE_MARKER), st)
            marker.mode = 0o600
            tar.addfile(marker)
    elif stat.S_ISREG(mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:
            info.type = tarfile.LNKTYPE
            info.linkname = links[key]
            tar.addfile(info)
            return
        if st.st_nlink > 1:
            links[key] = arcname
        # O_NOFOLLOW: a symlink swapped in since the walk is refused, not followed.
        fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            info.size = os.fstat(f.fileno()).st_size
            tar.addfile(info, f)
    elif stat.S_ISLNK(mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(full)
        tar.addfile(info)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        tar.addfile(info)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
        tar.addfile(info)
