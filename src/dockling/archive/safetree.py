"""Directory trees walked component by component without following symlinks.

Every lookup starts at an open descriptor of the tree's root and opens one component at
a time with O_NOFOLLOW, so no path, however crafted, can reach outside the root: a
symlink or a non-directory in a parent position is refused instead of followed.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Callable, Sequence

from dockling import errors

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CACHE_LIMIT = 256
# Linux's limits: no path a container could use is longer, so a longer member is hostile.
NAME_MAX = 255
PATH_MAX = 4096
# Deeper trees than this break recursive tools (rm -r in Python, scanners); no real image
# comes near it, so a deeper member is refused rather than left as a trap for cleanup.
MAX_DEPTH = 400


class UnsafePath(errors.InvalidParameter):
    """A layer member would escape the root or go through a symlink."""


def split_member_path(name: str, *, member: str) -> tuple[str, ...]:
    """Split a tar member name into components; refuse absolute names and "..".

    "./a//b/" becomes ("a", "b"); the root itself is the empty tuple.  Names longer
    than PATH_MAX or with a component longer than NAME_MAX (in bytes) are refused too.
    """
    shown = member if len(member) <= 200 else member[:200] + "..."
    if name.startswith("/"):
        raise UnsafePath(f"unsafe layer member {shown!r}: absolute path")
    if len(name.encode("utf-8", "surrogateescape")) >= PATH_MAX:
        raise UnsafePath(f"unsafe layer member {shown!r}: name longer than {PATH_MAX} bytes")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise UnsafePath(f"unsafe layer member {shown!r}: path escapes the root")
    if len(parts) > MAX_DEPTH:
        raise UnsafePath(f"unsafe layer member {shown!r}: deeper than {MAX_DEPTH} directories")
    if any(len(p.encode("utf-8", "surrogateescape")) > NAME_MAX for p in parts):
        raise UnsafePath(
            f"unsafe layer member {shown!r}: a component is longer than {NAME_MAX} bytes"
        )
    return parts


class SafeTree:
    """An open directory tree; hands out descriptors of directories inside it.

    `make_dir(parts)` is called to create a missing directory (only when `create=True`),
    letting the caller choose its mode and owner.  Descriptors are cached; any removal of
    a directory must go through `remove_entry` so the cache stays truthful.
    """

    def __init__(
        self, root: str | os.PathLike[str], *, make_dir: Callable[[int, str, tuple[str, ...]], None]
    ) -> None:
        self.root_fd = os.open(root, _DIR_FLAGS)
        self._make_dir = make_dir
        self._cache: dict[tuple[str, ...], int] = {}

    def close(self) -> None:
        self._drop_cache()
        os.close(self.root_fd)

    def _drop_cache(self) -> None:
        for fd in self._cache.values():
            os.close(fd)
        self._cache.clear()

    def dir_fd(self, parts: Sequence[str], *, create: bool, member: str) -> int:
        """Descriptor of the directory `parts` (borrowed: do not close).

        Raises FileNotFoundError when a component is missing and `create` is false, and
        UnsafePath when a component is a symlink or not a directory.
        """
        key = tuple(parts)
        if not key:
            return self.root_fd
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        # Iterative, from the deepest cached ancestor down: a deep path must not recurse.
        depth = len(key) - 1
        while depth > 0 and key[:depth] not in self._cache:
            depth -= 1
        fd = self._cache[key[:depth]] if depth else self.root_fd
        for i in range(depth, len(key)):
            fd = self._open_child(fd, key[: i + 1], create=create, member=member)
        return fd

    def _open_child(self, parent: int, key: tuple[str, ...], *, create: bool, member: str) -> int:
        name = key[-1]
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
            self._make_dir(parent, name, key)
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise UnsafePath(
                    f"unsafe layer member {member[:200]!r}: {'/'.join(key)[:200]} is a "
                    "symlink or not a directory"
                ) from None
            raise
        self._cache[key] = fd
        return fd

    def lstat(self, parts: Sequence[str], *, member: str) -> os.stat_result | None:
        """lstat of `parts` inside the tree, or None when it (or a parent) is missing."""
        if not parts:
            return os.fstat(self.root_fd)
        try:
            parent = self.dir_fd(parts[:-1], create=False, member=member)
            return os.lstat(parts[-1], dir_fd=parent)
        except (FileNotFoundError, UnsafePath):
            return None

    def trim(self) -> None:
        """Bound the descriptor cache; call only when no borrowed descriptor is in use."""
        if len(self._cache) >= _CACHE_LIMIT:
            self._drop_cache()

    def remove_entry(self, parts: Sequence[str], *, member: str) -> None:
        """Remove the entry `parts` (any type, directories recursively) if it exists.

        Descriptors of directories under a removed directory are forgotten; other
        borrowed descriptors stay valid.
        """
        key = tuple(parts)
        parent = self.dir_fd(key[:-1], create=False, member=member)
        try:
            st = os.lstat(key[-1], dir_fd=parent)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            n = len(key)
            for k in [k for k in self._cache if k[:n] == key]:
                os.close(self._cache.pop(k))
            shutil.rmtree(key[-1], dir_fd=parent)
        else:
            os.unlink(key[-1], dir_fd=parent)
