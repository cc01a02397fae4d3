"""Driver options of the local volume driver (`type`, `device`, `o`) and mounting them.

`docker volume create -o type=tmpfs -o device=tmpfs -o o=size=100m` asks for a real mount
at the volume's `_data` directory while a container uses it.  The options are validated
like Docker's local driver does; the mount is one mount(2) call (a bind with "ro" needs a
second, read-only remount, because the kernel ignores MS_RDONLY on the first bind).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Mapping
from dataclasses import dataclass

from dockling import errors

VALID_OPTIONS = ("type", "device", "o")
# Docker: giving one of these requires the listed others.
_REQUIRES = {"device": ("type",), "type": ("device",), "o": ("device", "type")}

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
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000
MNT_DETACH = 0x2

# option -> (flags to set, flags to clear), as mount(8) reads them
_FLAG_OPTIONS: dict[str, tuple[int, int]] = {
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

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


@dataclass(frozen=True, slots=True)
class MountRequest:
    """A parsed `type`/`device`/`o` triple: what mount(2) gets."""

    fstype: str
    device: str
    flags: int
    data: str


def validate_options(options: Mapping[str, str]) -> None:
    """Raise InvalidParameter, in Docker's words, for unknown or incomplete driver options."""
    for key in options:
        if key not in VALID_OPTIONS:
            raise errors.InvalidParameter(f'invalid option: "{key}"')
    for key, needed in _REQUIRES.items():
        if key in options:
            for other in needed:
                if other not in options:
                    raise errors.InvalidParameter(f'missing required option: "{other}"')
    if options:
        request = parse_options(options)
        if request.flags & MS_BIND and not os.path.isabs(request.device):
            raise errors.InvalidParameter(
                f"bind volume device must be an absolute path: {request.device!r}"
            )


def parse_options(options: Mapping[str, str]) -> MountRequest:
    """Split `o` into mount flags and filesystem data, as mount(8) does."""
    flags = 0
    data: list[str] = []
    for item in options.get("o", "").split(","):
        if not item:
            continue
        if item in _FLAG_OPTIONS:
            set_bits, clear_bits = _FLAG_OPTIONS[item]
            flags = (flags | set_bits) & ~clear_bits
        else:
            data.append(item)
    return MountRequest(
        fstype=options.get("type", ""),
        device=options.get("device", ""),
        flags=flags,
        data=",".join(data),
    )


def _mount(source: str, target: str, fstype: str, flags: int, data: str) -> None:
    rc = _libc.mount(
        source.encode(), target.encode(), fstype.encode() or None, flags, data.encode() or None
    )
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")


def mount_volume(options: Mapping[str, str], target: str) -> None:
    """Mount what `options` describe on `target`; SystemError if the kernel refuses."""
    request = parse_options(options)
    try:
        if request.flags & MS_BIND:
            _mount(request.device, target, "", request.flags & (MS_BIND | MS_REC), "")
            # A bind ignores the other flags; apply them with a remount of the bind.
            extra = request.flags & ~(MS_BIND | MS_REC)
            if extra:
                _mount("", target, "", MS_REMOUNT | MS_BIND | extra, "")
        else:
            _mount(request.device, target, request.fstype, request.flags, request.data)
    except OSError as exc:
        raise errors.SystemError(f"error while mounting volume '{target}': {exc}") from exc


def unmount_volume(target: str) -> None:
    """Unmount `target` (lazily, so a lingering reader cannot block removal)."""
    if _libc.umount2(target.encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise errors.SystemError(f"error while unmounting volume '{target}': {os.strerror(err)}")


def is_mountpoint(path: str) -> bool:
    """True if something is mounted exactly at `path` (read from /proc/self/mountinfo)."""
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            fields = line.split(" ", 5)
            if len(fields) > 4 and _unescape(fields[4]) == real:
                return True
    return False


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
