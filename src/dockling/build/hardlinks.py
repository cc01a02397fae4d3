"""COPY by hard link: a copied file that would come out identical to its source shares it.

On this kind of disk, allocating an inode and its blocks is most of what copying a small
file costs (about 0.1 ms each on ext4 here; a link is about 0.01 ms), and a COPY of a
stage's files or of the context allocates one per file.  A regular file whose copy would
have the source's owner, mode, mtime (whole seconds: a layer tar keeps no more) and
content can be the source's inode itself: the layer tar written from it is the same.

Why that is safe: sources are committed snapshots and the build's context, which nothing
changes in place (overlay copies a lower file up before any write; settling the new upper
dir (`Settling`) only resets the atime of an already settled file); a file
whose mtime it would clamp to SOURCE_DATE_EPOCH is copied instead.  The same inode
reached through two COPY sources is copied the second time, as Docker makes two files;
two names of one inode inside one copied tree stay one inode, as Docker keeps hard links
within what it copies.  A file of the destination's own layers is copied too.  What
remains visible: a copied file's link count, and two COPYs of one file into one image
(two stages deduplicated, say) show one inode, as BuildKit's hard-linked merges do; layer
tars and digests are unaffected.

Why deferred: the copy goes through the new snapshot's overlay mount (which resolves the
destination as the image sees it) and link(2) cannot cross mounts, so the links are
made in the snapshot's upper dir once the overlay is unmounted (`finish`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from dockling.archive import whiteouts

_SECOND = 1_000_000_000

RealPath = Callable[[str], str | None]


class HardLinks:
    """The links one COPY makes instead of copies; see the module docstring."""

    def __init__(
        self,
        mount_root: str,
        real_path: RealPath,
        epoch: int | None,
        lowers: list[Path] | None = None,
    ) -> None:
        self.root = mount_root.rstrip("/")
        self.real_path = real_path  # a source path -> its path on the snapshots' filesystem
        self.epoch = epoch
        # The destination's own layers: a file of theirs is copied, or the image would show
        # one inode under two names where Docker has two files.
        self.lowers = tuple(os.fspath(p).rstrip("/") + "/" for p in lowers or ())
        self.pending: dict[str, str] = {}  # destination (under the mount) -> source's real path
        self.dir_times: list[tuple[str, int, int]] = []  # set again after the links
        self.source_number = 0  # which COPY source is being copied
        self._linked_by: dict[tuple[int, int], int] = {}  # inode -> the source that linked it
        self._parents_ready: set[str] = set()

    def next_source(self) -> None:
        self.source_number += 1

    def offer(
        self, src: str, st: os.stat_result, dst: str, owner: tuple[int, int], mode: int
    ) -> bool:
        """Take the copy of the regular file `src` (whose stat is `st`) to `dst` with `owner`
        and `mode` as a link to make later; False when it must be copied."""
        if not stat.S_ISREG(st.st_mode) or (st.st_uid, st.st_gid) != owner:
            return False
        if stat.S_IMODE(st.st_mode) != mode or st.st_mtime_ns % _SECOND:
            return False
        if self.epoch is not None and st.st_mtime_ns // _SECOND > self.epoch:
            return False
        real = self.real_path(src)
        if real is None or real.startswith(self.lowers):
            return False
        try:
            found = os.lstat(real)
        except OSError:
            return False
        # The mapping must land on the very inode that was stat'ed (through the mount).
        if found.st_ino != st.st_ino or found.st_mtime_ns != st.st_mtime_ns:
            return False
        if not stat.S_ISREG(found.st_mode) or found.st_mode != st.st_mode:
            return False
        inode = (found.st_dev, found.st_ino)
        if self._linked_by.setdefault(inode, self.source_number) != self.source_number:
            return False
        self._copy_up(os.path.dirname(dst))
        self.pending[dst] = real
        return True

    def _copy_up(self, directory: str) -> None:
        """Make overlay put `directory` (seen through the mount) in the upper dir, where the
        link will go: setting its times to what they are copies it up."""
        if directory in self._parents_ready:
            return
        st = os.stat(directory)
        os.utime(directory, ns=(st.st_atime_ns, st.st_mtime_ns))
        self._parents_ready.add(directory)

    def forget(self, path: str) -> None:
        """`path` (under the mount) is being replaced: no link to make there or below."""
        self.pending.pop(path, None)
        below = path.rstrip("/") + "/"
        for dst in [d for d in self.pending if d.startswith(below)]:
            del self.pending[dst]

    def set_dir_times(self, path: str, atime_ns: int, mtime_ns: int) -> None:
        """Set a copied directory's times now and again after the links change them."""
        os.utime(path, ns=(atime_ns, mtime_ns))
        self.dir_times.append((path, atime_ns, mtime_ns))

    def finish(self, upper: Path) -> None:
        """Make the links in `upper`, the snapshot's own dir (its overlay unmounted)."""
        top = os.fspath(upper)
        cut = len(self.root)
        for dst, real in self.pending.items():
            target = top + dst[cut:]
            try:
                existing = os.lstat(target)
            except FileNotFoundError:
                pass
            else:
                if not whiteouts.is_overlay_whiteout(existing):
                    continue  # written again after this link was planned: that one wins
                os.unlink(target)
            try:
                os.link(real, target)
            except OSError:
                copy_file(real, target)  # another filesystem, too many links ...
        for path, atime_ns, mtime_ns in self.dir_times:
            try:
                os.utime(top + path[cut:], ns=(atime_ns, mtime_ns), follow_symlinks=False)
            except FileNotFoundError:
                pass  # removed by a later source


def copy_file(src: str, dst: str) -> None:
    """Copy the regular file `src` to the new `dst` with its owner, mode and times."""
    st = os.stat(src)
    source = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            left = st.st_size
            while left > 0:
                sent = os.sendfile(target, source, None, left)
                if sent == 0:
                    break
                left -= sent
            os.fchown(target, st.st_uid, st.st_gid)
            os.fchmod(target, stat.S_IMODE(st.st_mode))
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(target)
    finally:
        os.close(source)


def in_snapshot(view_root: str, lowers: list[Path]) -> RealPath:
    """Where a path seen in a read-only view mounted at `view_root` really is: the nearest
    of the view's `lowers` that has it (overlay shows that one; a whiteout hides it)."""
    cut = len(view_root.rstrip("/"))

    def real_path(path: str) -> str | None:
        rel = path[cut:]
        for lower in lowers:
            candidate = os.fspath(lower) + rel
            try:
                st = os.lstat(candidate)
            except (FileNotFoundError, NotADirectoryError):
                continue
            return None if whiteouts.is_overlay_whiteout(st) else candidate
        return None

    return real_path
