"""Docker/OCI layer whiteouts and their overlayfs form.

In a layer tar, `.wh.NAME` deletes NAME from the layers below, and `.wh..wh..opq` in a
directory hides everything the lower layers have in it.  Overlayfs expresses the same
with a 0:0 character device named NAME and the xattr trusted.overlay.opaque=y.
"""

from __future__ import annotations

import os
import stat

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
# Other `.wh..wh.` names are aufs bookkeeping (hard-link dirs); they carry no meaning here.
META_PREFIX = ".wh..wh."
OPAQUE_XATTR = "trusted.overlay.opaque"
# The overlay namespace must never be set from a tar: it could forge opaque dirs or redirects.
OVERLAY_XATTR_PREFIX = "trusted.overlay."


def is_whiteout_name(name: str) -> bool:
    """True when a path component is any kind of whiteout entry."""
    return name.startswith(WHITEOUT_PREFIX)


def whited_out(name: str) -> str | None:
    """The name a `.wh.NAME` entry deletes, or None for opaque/meta/non-whiteout names."""
    if not name.startswith(WHITEOUT_PREFIX) or name.startswith(META_PREFIX):
        return None
    target = name[len(WHITEOUT_PREFIX) :]
    if target in {"", ".", ".."}:
        return None
    return target


def make_whiteout(name: str, *, dir_fd: int) -> None:
    """Create the overlay whiteout for `name` inside the directory open at `dir_fd`."""
    os.mknod(name, stat.S_IFCHR, os.makedev(0, 0), dir_fd=dir_fd)


def make_opaque(dir_fd: int) -> None:
    """Mark the directory open at `dir_fd` opaque for overlayfs."""
    os.setxattr(dir_fd, OPAQUE_XATTR, b"y")


def is_overlay_whiteout(st: os.stat_result) -> bool:
    """True when `st` describes an overlay whiteout (char device 0:0)."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
