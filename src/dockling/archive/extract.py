"""Safe extraction of one layer tar into a directory (an overlay upper dir).

`extract_layer` promises: no member writes, links or creates anything outside `root`
(absolute names, "..", and paths through symlinks, whether planted earlier in the same
layer or present in a lower layer, are refused with InvalidParameter naming the member);
ownership, modes (with setuid/setgid/sticky), mtimes, xattrs, hard links, symlinks,
device nodes and fifos are reproduced; whiteouts become overlayfs whiteouts; the DiffID
is computed over the uncompressed stream in the same pass.
"""

from __future__ import annotations

import errno
import gzip
import os
import stat
import tarfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from dockling import errors
from dockling.archive import whiteouts
from dockling.archive.compression import InflatedStream
from dockling.archive.safetree import SafeTree, UnsafePath, split_member_path
from dockling.ids import DiffID

_CHUNK = 1 << 20
_XATTR_PAX_PREFIX = "SCHILY.xattr."


@dataclass(frozen=True, slots=True)
class ExtractResult:
    diff_id: DiffID
    size: int  # bytes of regular-file content unpacked
    compression: str  # "none", "gzip" or "zstd"


def extract_layer(stream: BinaryIO, root: Path, *, lowers: Sequence[Path] = ()) -> ExtractResult:
    """Unpack the layer tar `stream` into the existing directory `root`.

    `lowers` are the already unpacked layers below (topmost first); they are read, never
    written, to copy up hard-link targets and the attributes of implied directories.
    On error `root` may hold part of the layer; the caller discards it.  Inflation and
    hashing run in a worker thread beside the file creation done here.
    """
    inflated = InflatedStream(stream)
    extractor = _Extractor(root, lowers, inflated)
    try:
        # "r:" reads a plain tar through seek/tell; InflatedStream only ever skips
        # forward, and it avoids tarfile's stream mode, which re-slices its buffer in
        # small records.
        with tarfile.open(fileobj=cast(BinaryIO, inflated), mode="r:") as tar:
            for member in tar:
                extractor.apply(member, tar)
        extractor.finish()
        diff_id = inflated.finish()
    except errors.DocklingError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise errors.InvalidParameter(f"invalid layer tar: {e}") from e
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            # A symlink target or name the filesystem cannot hold: the layer's fault.
            raise errors.InvalidParameter(f"invalid layer tar: {str(e)[:300]}") from e
        raise errors.SystemError(f"extracting layer into {root}: {e}") from e
    finally:
        extractor.close()
        inflated.close()
    return ExtractResult(DiffID(diff_id), extractor.size, inflated.compression)


class _Extractor:
    def __init__(self, root: Path, lowers: Sequence[Path], stream: InflatedStream) -> None:
        self.size = 0
        self._stream = stream
        self._lowers = [SafeTree(p, make_dir=_no_create) for p in lowers]
        self._tree = SafeTree(root, make_dir=self._make_implied_dir)
        # Directory mtimes are set last: creating entries inside changes them.
        self._dir_times: list[tuple[tuple[str, ...], int]] = []

    def close(self) -> None:
        self._tree.close()
        for lower in self._lowers:
            lower.close()

    def _lower_stat(self, parts: tuple[str, ...], member: str) -> os.stat_result | None:
        for lower in self._lowers:
            st = lower.lstat(parts, member=member)
            if st is not None:
                return st
        return None

    def _make_implied_dir(self, parent_fd: int, name: str, parts: tuple[str, ...]) -> None:
        # A directory the tar does not list: in the merged view it should look like the
        # lower layer's one, so borrow its mode and owner when there is one.
        st = self._lower_stat(parts, "/".join(parts))
        if st is not None and stat.S_ISDIR(st.st_mode):
            os.mkdir(name, 0o700, dir_fd=parent_fd)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=parent_fd, follow_symlinks=False)
            os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=parent_fd)
        else:
            os.mkdir(name, 0o755, dir_fd=parent_fd)

    def apply(self, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        self._tree.trim()
        name = member.name
        parts = split_member_path(name, member=name)
        if not parts:
            return  # the root entry: Docker keeps the target's own attributes
        base = parts[-1]
        if whiteouts.is_whiteout_name(base):
            self._apply_whiteout(parts, name)
            return
        tree = self._tree
        parent = tree.dir_fd(parts[:-1], create=True, member=name)
        # Create first and look only on EEXIST: a fresh layer rarely replaces anything,
        # and an lstat per member is a syscall saved on every one of thousands.
        if member.isdir():
            try:
                os.mkdir(base, 0o700, dir_fd=parent)
            except FileExistsError:
                existing = _lstat_at(parent, base)
                if existing is not None and not stat.S_ISDIR(existing.st_mode):
                    tree.remove_entry(parts, member=name)
                    parent = tree.dir_fd(parts[:-1], create=True, member=name)
                    os.mkdir(base, 0o700, dir_fd=parent)
            self._set_attrs(parent, base, member, is_symlink=False)
            self._dir_times.append((parts, int(member.mtime * 1e9)))
            return
        try:
            self._create(parent, parts, member, tar)
        except FileExistsError:
            existing = _lstat_at(parent, base)
            if existing is None:
                raise
            if member.islnk() and self._same_as_link_target(member, existing):
                return
            tree.remove_entry(parts, member=name)
            parent = tree.dir_fd(parts[:-1], create=True, member=name)
            self._create(parent, parts, member, tar)

    def _create(
        self, parent: int, parts: tuple[str, ...], member: tarfile.TarInfo, tar: tarfile.TarFile
    ) -> None:
        """Create the non-directory `member` (FileExistsError when its name is taken)."""
        base = parts[-1]
        if member.isreg():
            self._write_file(parent, base, member, tar)
        elif member.issym():
            os.symlink(member.linkname, base, dir_fd=parent)
            self._set_attrs(parent, base, member, is_symlink=True)
        elif member.islnk():
            self._hard_link(parts, member)
        elif member.ischr() or member.isblk():
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            device = os.makedev(member.devmajor, member.devminor)
            os.mknod(base, kind | (member.mode & 0o7777), device, dir_fd=parent)
            self._set_attrs(parent, base, member, is_symlink=False)
        elif member.isfifo():
            os.mkfifo(base, member.mode & 0o7777, dir_fd=parent)
            self._set_attrs(parent, base, member, is_symlink=False)
        # Other types (GNU volume headers and the like) carry no file; skip them.

    def _apply_whiteout(self, parts: tuple[str, ...], member: str) -> None:
        parent = self._tree.dir_fd(parts[:-1], create=True, member=member)
        base = parts[-1]
        if base == whiteouts.OPAQUE_MARKER:
            whiteouts.make_opaque(parent)
            return
        target = whiteouts.whited_out(base)
        if target is None:
            return  # aufs bookkeeping entries
        self._tree.remove_entry((*parts[:-1], target), member=member)
        parent = self._tree.dir_fd(parts[:-1], create=True, member=member)
        whiteouts.make_whiteout(target, dir_fd=parent)

    def _write_file(
        self, parent: int, base: str, member: tarfile.TarInfo, tar: tarfile.TarFile
    ) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(base, flags, 0o600, dir_fd=parent)
        try:
            if member.sparse is not None:
                # GNU sparse files: tarfile knows their maps.
                source = tar.extractfile(member)
                if source is not None:
                    while chunk := source.read(_CHUNK):
                        view = memoryview(chunk)
                        while view:
                            view = view[os.write(fd, view) :]
            elif member.size:
                # Straight from the inflated chunks to the file: no copies in between.
                self._stream.seek(member.offset_data)
                if self._stream.copy_to(fd, member.size) != member.size:
                    raise tarfile.ReadError("unexpected end of data")
            self.size += member.size
            # chown first: it clears setuid/setgid bits that chmod then restores.
            os.fchown(fd, member.uid, member.gid)
            os.fchmod(fd, member.mode & 0o7777)
            _set_xattrs(fd, member)
            mtime = int(member.mtime * 1e9)
            os.utime(fd, ns=(mtime, mtime))
        finally:
            os.close(fd)

    def _set_attrs(
        self, parent: int, base: str, member: tarfile.TarInfo, *, is_symlink: bool
    ) -> None:
        os.chown(base, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
        if not is_symlink:
            os.chmod(base, member.mode & 0o7777, dir_fd=parent, follow_symlinks=False)
        # The /proc path of an open parent plus one component cannot be redirected.
        _set_xattrs(f"/proc/self/fd/{parent}/{base}", member)
        if not member.isdir():
            mtime = int(member.mtime * 1e9)
            os.utime(base, ns=(mtime, mtime), dir_fd=parent, follow_symlinks=False)

    def _same_as_link_target(self, member: tarfile.TarInfo, existing: os.stat_result) -> bool:
        target = split_member_path(member.linkname, member=member.name)
        st = self._tree.lstat(target, member=member.name)
        return st is not None and (st.st_dev, st.st_ino) == (existing.st_dev, existing.st_ino)

    def _hard_link(self, parts: tuple[str, ...], member: tarfile.TarInfo) -> None:
        name = member.name
        target = split_member_path(member.linkname, member=name)
        if not target:
            raise UnsafePath(f"unsafe layer member {name!r}: hard link to the root")
        if self._tree.lstat(target, member=name) is None:
            self._copy_up(target, name)
        source_dir = self._tree.dir_fd(target[:-1], create=False, member=name)
        parent = self._tree.dir_fd(parts[:-1], create=True, member=name)
        os.link(
            target[-1], parts[-1], src_dir_fd=source_dir, dst_dir_fd=parent, follow_symlinks=False
        )

    def _copy_up(self, target: tuple[str, ...], member: str) -> None:
        """Bring a hard-link target that only a lower layer has into this layer."""
        for lower in self._lowers:
            if lower.lstat(target, member=member) is None:
                continue
            src_dir = lower.dir_fd(target[:-1], create=False, member=member)
            src = os.open(target[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_dir)
            try:
                st = os.fstat(src)
                if not stat.S_ISREG(st.st_mode):
                    break
                parent = self._tree.dir_fd(target[:-1], create=True, member=member)
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                dst = os.open(target[-1], flags, 0o600, dir_fd=parent)
                try:
                    while chunk := os.read(src, _CHUNK):
                        view = memoryview(chunk)
                        while view:
                            view = view[os.write(dst, view) :]
                    os.fchown(dst, st.st_uid, st.st_gid)
                    os.fchmod(dst, stat.S_IMODE(st.st_mode))
                    for key in os.listxattr(src):
                        os.setxattr(dst, key, os.getxattr(src, key))
                    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
                finally:
                    os.close(dst)
                return
            finally:
                os.close(src)
        raise errors.InvalidParameter(
            f"invalid layer member {member!r}: hard link target {'/'.join(target)} not found"
        )

    def finish(self) -> None:
        for parts, mtime in reversed(self._dir_times):
            try:
                parent = self._tree.dir_fd(parts[:-1], create=False, member="/".join(parts))
                os.utime(parts[-1], ns=(mtime, mtime), dir_fd=parent, follow_symlinks=False)
            except (FileNotFoundError, UnsafePath):
                continue  # replaced later in the layer


def _no_create(parent_fd: int, name: str, parts: tuple[str, ...]) -> None:
    raise FileNotFoundError(errno.ENOENT, "lower layers are read-only", "/".join(parts))


def _lstat_at(parent: int, name: str) -> os.stat_result | None:
    try:
        return os.lstat(name, dir_fd=parent)
    except FileNotFoundError:
        return None


def _set_xattrs(target: int | str, member: tarfile.TarInfo) -> None:
    for key, value in member.pax_headers.items():
        if not key.startswith(_XATTR_PAX_PREFIX):
            continue
        attr = key[len(_XATTR_PAX_PREFIX) :]
        if attr.startswith(whiteouts.OVERLAY_XATTR_PREFIX):
            continue
        try:
            os.setxattr(
                target,
                attr,
                value.encode("utf-8", "surrogateescape"),
                follow_symlinks=not isinstance(target, str),
            )
        except OSError as e:
            # Like Docker: a filesystem without that namespace is not the layer's fault.
            if e.errno not in (errno.ENOTSUP, errno.EPERM):
                raise
