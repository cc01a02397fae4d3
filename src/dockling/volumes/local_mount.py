"""Driver options of the local volume driver (`type`, `device`, `o`) and mounting them.

`docker volume create -o type=tmpfs -o device=tmpfs -o o=size=100m` asks for a real mount
at the volume's `_data` directory while a container uses it.  The options are validated
like Docker's local driver does; the mount is one mount(2) call (a bind with "ro" needs a
second, read-only remount, because the kernel ignores MS_RDONLY on the first bind).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from dockling import errors
from dockling.mount import MS_BIND, Mount, mount_one, parse_options as parse_mount_options, unmount

VALID_OPTIONS = ("type", "device", "o")
# Docker: giving one of these requires the listed others.
_REQUIRES = {"device": ("type",), "type": ("device",), "o": ("device", "type")}


@dataclass(frozen=True, slots=True)
class MountRequest:
    """A parsed `type`/`device`/`o` triple: what mount(2) gets."""

    fstype: str
    device: str
    flags: int
    data: str
    propagation: int = 0


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
    """Split `o` into mount flags, propagation and filesystem data, as mount(8) does."""
    flags, propagation, data = parse_mount_options(_o_items(options))
    return MountRequest(
        fstype=options.get("type", ""),
        device=options.get("device", ""),
        flags=flags,
        data=data,
        propagation=propagation,
    )


def _o_items(options: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(item for item in options.get("o", "").split(",") if item)


def mount_volume(options: Mapping[str, str], target: str) -> None:
    """Mount what `options` describe on `target`; SystemError if the kernel refuses."""
    mount = Mount(
        type=options.get("type", ""), source=options.get("device", ""), options=_o_items(options)
    )
    try:
        mount_one(mount, target)
    except errors.SystemError as exc:
        raise errors.SystemError(f"error while mounting volume '{target}': {exc}") from exc


def unmount_volume(target: str) -> None:
    """Unmount `target` (lazily, so a lingering reader cannot block removal); a target
    that is not mounted is fine."""
    try:
        unmount(target, detach=True)
    except errors.SystemError as exc:
        raise errors.SystemError(f"error while unmounting volume '{target}': {exc}") from exc
