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
from dataclasses import dataclass, field
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
    for path, kind in _each_change(upper, lowers):
        found[path] = kind
        if kind is not ChangeKind.MODIFIED:
            parent = os.path.dirname(path)
            if parent != "/" and parent not in found:
                found[parent] = ChangeKind.MODIFIED
    return [Change(p, found[p]) for p in sorted(found)]


def has_changes(upper: Path, lowers: Sequence[Path]) -> bool:
    """Whether `changes` would find anything; stops at the first change it meets."""
    return next(_each_change(upper, lowers), None) is not None


def _each_change(upper: Path, lowers: Sequence[Path]) -> Iterator[tuple[str, ChangeKind]]:
    """Each entry of `upper` that is a change, in walk order (parents before children);
    the parents of added and deleted entries are left to the caller."""
    for rel, st in _walk(upper):
        below = _lower_lstat(lowers, rel)
        if below is None and is_placeholder(rel, st):
            continue
        if whiteouts.is_overlay_whiteout(st):
            if below is None:
                continue
            yield "/" + rel, ChangeKind.DELETED
        elif below is None:
            yield "/" + rel, ChangeKind.ADDED
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
            yield "/" + rel, ChangeKind.MODIFIED


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


def write_layer(upper: Path, out: BinaryIO) -> None:
    """Write `upper` as an uncompressed layer tar (PAX) to `out`.

    Overlay whiteouts become `.wh.NAME` entries, opaque directories get a `.wh..wh..opq`
    marker, the runtime's mount placeholders are left out; owners, modes (setuid, setgid
    and sticky included), mtimes, xattrs (except trusted.overlay.*), hard links (within
    the layer), symlinks, devices and fifos are kept.  Sockets are skipped, as Docker does.
    """
    write_tree(upper, out, name="", skip_placeholders=True)


@dataclass
class Settling:
    """What makes an upper dir hold exactly what extracting its layer tar gives, so that
    it can be kept as the layer's snapshot: placeholders and sockets deleted, the overlay's
    bookkeeping xattrs (but an opaque mark) and every xattr of a symlink removed, times
    set to the tar's whole-second mtimes (atime too, as extraction sets it)."""

    unlink: list[str] = field(default_factory=list)
    rmdir: list[str] = field(default_factory=list)  # parents before children
    strip: list[tuple[str, str]] = field(default_factory=list)  # (path, xattr name)
    times: list[tuple[str, int]] = field(default_factory=list)  # children before dirs

    def apply(self) -> None:
        """Do it: the upper dir must not be under a mounted overlay any more."""
        for path in self.unlink:
            os.unlink(path)
        for path in reversed(self.rmdir):
            os.rmdir(path)
        for path, name in self.strip:
            os.removexattr(path, name, follow_symlinks=False)
        # After the unlinks: deleting a placeholder changed its directory's mtime.
        for path, ns in self.times:
            os.utime(path, ns=(ns, ns), follow_symlinks=False)


def write_settled_layer(
    upper: Path, out: BinaryIO, epoch: int | None, stubs: Sequence[str] = ()
) -> Settling:
    """Write `upper` as `write_layer` does, with mtimes clamped to `epoch` when given, and
    return the `Settling` that makes `upper` equal to the tar.

    `stubs` are paths (relative, deepest first) that did not exist before the step and
    that the runtime may have made as mount points: those still empty (a directory with
    nothing but other such stubs, or an empty file) are left out and deleted, as BuildKit
    removes RUN --mount's mount points.  The walk only reads, so it may run while the
    overlay is still mounted (and being unmounted): the changes are for the caller to
    apply afterwards.
    """
    root = os.fspath(upper)
    settling = Settling()
    unused = _unused_stubs(root, stubs)
    _settle_xattrs(root, False, settling)  # no tar entry, but overlay marks the root too
    links: dict[tuple[int, int], str] = {}
    timed: list[tuple[str, int]] = []
    tar = TarWriter(out)
    for rel, st in _walk(upper):
        full = os.path.join(root, rel)
        if stat.S_ISSOCK(st.st_mode) or is_placeholder(rel, st):
            settling.unlink.append(full)
            continue
        if rel in unused:
            (settling.rmdir if stat.S_ISDIR(st.st_mode) else settling.unlink).append(full)
            continue
        pax = None
        if not whiteouts.is_overlay_whiteout(st):
            pax = _settle_xattrs(full, stat.S_ISLNK(st.st_mode), settling)
        seconds = st.st_mtime_ns // 1_000_000_000
        if epoch is not None:
            seconds = min(seconds, epoch)
        ns = seconds * 1_000_000_000
        # Directories always: deleting a placeholder will change one's mtime.
        if stat.S_ISDIR(st.st_mode) or st.st_mtime_ns != ns or st.st_atime_ns != ns:
            timed.append((full, ns))
        _add(tar, full, rel, st, links, mtime=seconds, pax=pax)
    tar.close()
    settling.times = timed[::-1]  # the walk lists a directory before its contents
    return settling


def _unused_stubs(root: str, stubs: Sequence[str]) -> set[str]:
    """Which of `stubs` (deepest first) are empty once the deeper unused ones are gone."""
    unused: set[str] = set()
    for rel in stubs:
        full = os.path.join(root, rel)
        try:
            st = os.lstat(full)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISDIR(st.st_mode):
            if any(f"{rel}/{name}" not in unused for name in os.listdir(full)):
                continue
        elif not (stat.S_ISREG(st.st_mode) and st.st_size == 0):
            continue
        unused.add(rel)
    return unused


def _settle_xattrs(path: str, symlink: bool, settling: Settling) -> dict[str, str]:
    """The PAX headers of the xattrs a layer tar carries for `path`; those it does not
    carry go to `settling` for removal."""
    headers: dict[str, str] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM):
            return headers
        raise
    for name in names:
        if not symlink and name.startswith(whiteouts.OVERLAY_XATTR_PREFIX):
            if name == whiteouts.OPAQUE_XATTR and _is_opaque(path):
                continue  # kept on disk; the tar says it with a marker entry
        elif not symlink:
            value = os.getxattr(path, name, follow_symlinks=False)
            headers[_XATTR_PAX_PREFIX + name] = value.decode("utf-8", "surrogateescape")
            continue
        settling.strip.append((path, name))
    return headers


def write_tree(source: Path, out: BinaryIO, *, name: str, skip_placeholders: bool = False) -> None:
    """Write the file or directory `source` to `out` as a tar whose top entry is `name`.

    With `name=""` a directory's contents are written at the top level without an entry
    for the directory itself (a layer, an export).  Symlinks are stored, never followed
    below `source`.  Entries are written as `write_layer` describes; the bytes are those
    Python's tarfile writes in PAX format (see `TarWriter`).
    """
    links: dict[tuple[int, int], str] = {}
    tar = TarWriter(out)
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
    tar.close()


def _chain(
    first: Iterator[tuple[str, os.stat_result]], second: Iterator[tuple[str, os.stat_result]]
) -> Iterator[tuple[str, os.stat_result]]:
    yield from first
    yield from second


def _add(
    tar: TarWriter,
    full: str,
    arcname: str,
    st: os.stat_result,
    links: dict[tuple[int, int], str],
    *,
    mtime: int | None = None,
    pax: dict[str, str] | None = None,
) -> None:
    """Write one entry; `mtime` and `pax` (the xattr headers) when the caller knows them."""
    mode = st.st_mode
    if mtime is None:
        mtime = st.st_mtime_ns // 1_000_000_000
    if whiteouts.is_overlay_whiteout(st):
        head, base = os.path.split(arcname)
        name = os.path.join(head, whiteouts.WHITEOUT_PREFIX + base)
        tar.entry(name, tarfile.REGTYPE, 0o600, 0, 0, mtime)
        return
    perm, uid, gid = stat.S_IMODE(mode), st.st_uid, st.st_gid
    if stat.S_ISLNK(mode):
        pax = None
    elif pax is None:
        pax = _xattrs(full)
    if stat.S_ISDIR(mode):
        dirname = arcname if arcname.endswith("/") else arcname + "/"
        tar.entry(dirname, tarfile.DIRTYPE, perm, uid, gid, mtime, pax=pax)
        if _is_opaque(full):
            marker = os.path.join(arcname, whiteouts.OPAQUE_MARKER)
            tar.entry(marker, tarfile.REGTYPE, 0o600, uid, gid, mtime)
    elif stat.S_ISREG(mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:
            tar.entry(arcname, tarfile.LNKTYPE, perm, uid, gid, mtime, link=links[key], pax=pax)
            return
        if st.st_nlink > 1:
            links[key] = arcname
        # O_NOFOLLOW: a symlink swapped in since the walk is refused, not followed.
        # O_NOATIME: reading a layer should not dirty every inode it reads.
        fd = _open_quietly(full)
        try:
            size = os.fstat(fd).st_size
            tar.entry(arcname, tarfile.REGTYPE, perm, uid, gid, mtime, size=size, pax=pax)
            tar.data(fd, size)
        finally:
            os.close(fd)
    elif stat.S_ISLNK(mode):
        link = os.readlink(full)
        tar.entry(arcname, tarfile.SYMTYPE, perm, uid, gid, mtime, link=link)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        kind = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        dev = (os.major(st.st_rdev), os.minor(st.st_rdev))
        tar.entry(arcname, kind, perm, uid, gid, mtime, dev=dev, pax=pax)
    elif stat.S_ISFIFO(mode):
        tar.entry(arcname, tarfile.FIFOTYPE, perm, uid, gid, mtime, pax=pax)


def _open_quietly(path: str) -> int:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(path, flags | os.O_NOATIME)
    except PermissionError:  # O_NOATIME needs the file's owner or CAP_FOWNER
        return os.open(path, flags)


_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE
_FLUSH_AT = 1 << 20
_NO_DEVICE = bytes(16)
_SMALL7 = 8**7  # largest+1 of an 8-byte octal field
_SMALL11 = 8**11  # largest+1 of a 12-byte octal field


class TarWriter:
    """Writes a stream of tar members byte for byte as `tarfile.open(mode="w|",
    format=PAX_FORMAT)` with empty user and group names would, without its per-member cost.

    A member whose header fits plain ustar (ASCII names of at most 100 bytes, numbers that
    fit their fields, no extended headers) gets its header built here; any other member is
    handed to `tarfile.TarInfo.tobuf`, so long names, non-ASCII names, xattrs and large
    files come out exactly as tarfile writes them.  Output is buffered and written to
    `out` in chunks of about 1 MiB; `close` writes the end-of-archive blocks, padded to a
    10 KiB record as tarfile does.
    """

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._buf = bytearray()
        self._offset = 0

    def entry(
        self,
        name: str,
        kind: bytes,
        mode: int,
        uid: int,
        gid: int,
        mtime: int,
        *,
        size: int = 0,
        link: str = "",
        dev: tuple[int, int] | None = None,
        pax: dict[str, str] | None = None,
    ) -> None:
        """Append the header of one member (`name` already has a directory's "/");
        a regular file's `size` bytes must follow through `data`."""
        header = None
        if (
            not pax
            and len(name) <= 100
            and len(link) <= 100
            and name.isascii()
            and link.isascii()
            and 0 <= uid < _SMALL7
            and 0 <= gid < _SMALL7
            and 0 <= size < _SMALL11
            and 0 <= mtime < _SMALL11
            and (dev is None or (0 <= dev[0] < _SMALL7 and 0 <= dev[1] < _SMALL7))
        ):
            header = _ustar(name, kind, mode, uid, gid, size, mtime, link, dev)
        else:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.gid = kind, mode, uid, gid
            info.size, info.mtime, info.linkname = size, mtime, link
            info.uname = info.gname = ""
            if dev is not None:
                info.devmajor, info.devminor = dev
            if pax:
                info.pax_headers = pax
            header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        self._put(header)

    def data(self, fd: int, size: int) -> None:
        """Append `size` bytes read from `fd` and pad them to a block; a file that ends
        sooner is an error (as with tarfile), one that grew is cut at `size`."""
        left = size
        while left:
            chunk = os.read(fd, min(left, _FLUSH_AT))
            if not chunk:
                raise OSError(errno.EIO, "unexpected end of data")
            self._put(chunk)
            left -= len(chunk)
        if size % _BLOCK:
            self._put(bytes(_BLOCK - size % _BLOCK))

    def close(self) -> None:
        """End the archive (two zero blocks, then zeros up to a whole record) and flush."""
        self._put(bytes(2 * _BLOCK))
        if self._offset % _RECORD:
            self._put(bytes(_RECORD - self._offset % _RECORD))
        self._flush()

    def _put(self, data: bytes) -> None:
        self._buf += data
        self._offset += len(data)
        if len(self._buf) >= _FLUSH_AT:
            self._flush()

    def _flush(self) -> None:
        if self._buf:
            self._out.write(bytes(self._buf))
            self._buf.clear()


def _ustar(
    name: str,
    kind: bytes,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    mtime: int,
    link: str,
    dev: tuple[int, int] | None,
) -> bytes:
    """The 512-byte ustar header tarfile writes for these (range-checked) values."""
    devices = _NO_DEVICE if dev is None else b"%07o\0%07o\0" % dev
    head = b"".join(
        (
            name.encode("ascii").ljust(100, b"\0"),
            b"%07o\0%07o\0%07o\0%011o\0%011o\0" % (mode & 0o7777, uid, gid, size, mtime),
            b"        ",
            kind,
            link.encode("ascii").ljust(100, b"\0"),
            tarfile.POSIX_MAGIC,
            bytes(64),  # empty user and group names
            devices,
        )
    ).ljust(_BLOCK, b"\0")
    return b"%s%06o\0%s" % (head[:148], sum(head), head[155:])
