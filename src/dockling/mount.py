"""The `Mount` value shared by snapshots, volumes and the runtime, and mounting it.

The syscall layer calls mount(2), umount2(2) and syncfs(2) through ctypes: a syscall costs
~0.25 ms, spawning mount(8) ~8 ms.  libc is loaded on first use, so modules that only
need the `Mount` value (spec derivation, the API) pay nothing for it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from dockling import errors


@dataclass(frozen=True, slots=True)
class Mount:
    """One filesystem mount as the OCI runtime spec describes it.

    `target` is empty for a root filesystem mount (the snapshotter's answer); `options`
    are mount(8)-style option strings such as "lowerdir=...", "ro", "rbind".
    """

    type: str
    source: str
    target: str = ""
    options: tuple[str, ...] = field(default_factory=tuple)

    def to_oci(self) -> dict[str, object]:
        return {
            "destination": self.target,
            "type": self.type,
            "source": self.source,
            "options": list(self.options),
        }


MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000
MNT_DETACH = 0x2

# The kernel copies at most one page of filesystem data (less the terminating NUL).
_MAX_DATA = 4095

# option -> (flags to set, flags to clear), as mount(8) reads them
_FLAG_OPTIONS: dict[str, tuple[int, int]] = {
    "defaults": (0, 0),
    "ro": (MS_RDONLY, 0),
    "rw": (0, MS_RDONLY),
    "nosuid": (MS_NOSUID, 0),
    "suid": (0, MS_NOSUID),
    "nodev": (MS_NODEV, 0),
    "dev": (0, MS_NODEV),
    "noexec": (MS_NOEXEC, 0),
    "exec": (0, MS_NOEXEC),
    "sync": (MS_SYNCHRONOUS, 0),
    "async": (0, MS_SYNCHRONOUS),
    "dirsync": (MS_DIRSYNC, 0),
    "mand": (MS_MANDLOCK, 0),
    "nomand": (0, MS_MANDLOCK),
    "noatime": (MS_NOATIME, 0),
    "atime": (0, MS_NOATIME),
    "nodiratime": (MS_NODIRATIME, 0),
    "diratime": (0, MS_NODIRATIME),
    "relatime": (MS_RELATIME, 0),
    "norelatime": (0, MS_RELATIME),
    "strictatime": (MS_STRICTATIME, 0),
    "nostrictatime": (0, MS_STRICTATIME),
    "bind": (MS_BIND, 0),
    "rbind": (MS_BIND | MS_REC, 0),
}
# Propagation changes need a mount(2) call of their own, after the mount exists.
_PROPAGATION: dict[str, int] = {
    "private": MS_PRIVATE,
    "rprivate": MS_PRIVATE | MS_REC,
    "slave": MS_SLAVE,
    "rslave": MS_SLAVE | MS_REC,
    "shared": MS_SHARED,
    "rshared": MS_SHARED | MS_REC,
}


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.mount.argtypes = [
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_ulong,
        ctypes.c_char_p,
    ]
    libc.mount.restype = ctypes.c_int
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    libc.umount2.restype = ctypes.c_int
    libc.syncfs.argtypes = [ctypes.c_int]
    libc.syncfs.restype = ctypes.c_int
    return libc


def _enc(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def _os_error(path: str) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, os.strerror(err), path)


def parse_options(options: Sequence[str]) -> tuple[int, int, str]:
    """Split mount(8)-style options into (flags, propagation flags, data string).

    Options that are neither flags nor propagation are filesystem data, kept in order.
    """
    flags = 0
    propagation = 0
    data: list[str] = []
    for option in options:
        if option in _FLAG_OPTIONS:
            set_bits, clear_bits = _FLAG_OPTIONS[option]
            flags = (flags | set_bits) & ~clear_bits
        elif option in _PROPAGATION:
            propagation |= _PROPAGATION[option]
        else:
            data.append(option)
    return flags, propagation, ",".join(data)


def mount_syscall(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None
) -> None:
    """Call mount(2); raise errors.SystemError carrying the OSError on failure."""
    if _libc().mount(_enc(source), _enc(target), _enc(fstype), flags, _enc(data)) != 0:
        cause = _os_error(target)
        raise errors.SystemError(
            f"mount {fstype or 'bind'} {source} on {target}: {cause.strerror}"
        ) from cause


def mount_one(mount: Mount, target: str) -> None:
    """Mount `mount` on `target` (its own target is ignored), flags, data and propagation.

    A bind whose read-only (or other) flags cannot be applied is unmounted again before
    the error is raised.  Raises NotImplementedFeature if the data is over a page.
    """
    flags, propagation, data = parse_options(mount.options)
    if len(data) > _MAX_DATA:
        hint = " (too many layers)" if mount.type == "overlay" else ""
        raise errors.NotImplementedFeature(
            f"mount options for {target} are {len(data)} bytes, over the kernel's page limit" + hint
        )
    if flags & MS_BIND:
        # A bind mount ignores every flag but MS_REC at first; read-only and friends need
        # a remount of the new mount.
        mount_syscall(mount.source, target, None, flags & (MS_BIND | MS_REC), None)
        extra = flags & ~(MS_BIND | MS_REC)
        if extra:
            try:
                mount_syscall(None, target, None, MS_REMOUNT | MS_BIND | extra, None)
            except errors.SystemError:
                unmount(target)
                raise
    else:
        mount_syscall(mount.source, target, mount.type, flags, data or None)
    if propagation:
        mount_syscall(None, target, None, propagation, None)


def mount_all(mounts: Sequence[Mount], target: str | os.PathLike[str]) -> None:
    """Mount each of `mounts` on `target` in order; on failure undo the ones done."""
    path = os.fspath(target)
    done = 0
    try:
        for m in mounts:
            mount_one(m, path)
            done += 1
    except BaseException:
        for _ in range(done):
            unmount(path)
        raise


def unmount(target: str | os.PathLike[str], *, detach: bool = False) -> None:
    """Unmount every mount stacked on `target`; a target that is not mounted is fine.

    With `detach` each unmount is lazy (MNT_DETACH), so a lingering reader cannot block it.
    """
    path = os.fsencode(os.fspath(target))
    flags = MNT_DETACH if detach else 0
    while True:
        if _libc().umount2(path, flags) == 0:
            continue
        cause = _os_error(os.fsdecode(path))
        if cause.errno in (errno.EINVAL, errno.ENOENT):
            return
        raise errors.SystemError(f"unmount {cause.filename}: {cause.strerror}") from cause


def syncfs(path: str | os.PathLike[str]) -> None:
    """Flush the filesystem holding `path` to disk (one syscall, unlike fsync per file)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if _libc().syncfs(fd) != 0:
            cause = _os_error(os.fspath(path))
            raise errors.SystemError(f"syncfs {path}: {cause.strerror}") from cause
    finally:
        os.close(fd)


def mount_points() -> list[str]:
    """The mount point of every mount this process sees, in /proc/self/mountinfo order."""
    points: list[str] = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            fields = line.split(" ", 5)
            if len(fields) > 4:
                points.append(_unescape(fields[4]))
    return points


def is_mountpoint(path: str | os.PathLike[str]) -> bool:
    """True if something is mounted exactly at `path` (symbolic links resolved)."""
    return os.path.realpath(path) in mount_points()


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal \ooo.
    if "\\" not in field:
        return field
    out: list[str] = []
    i = 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)
