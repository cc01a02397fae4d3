"""Named network namespaces in dockling's own directory, like `ip netns` does in /run/netns.

A namespace is kept alive by bind-mounting /proc/thread-self/ns/net onto a file.  The work
is done by the calling thread switching namespaces with unshare(2)/setns(2), which affect
only that thread; callers run these functions in a worker thread, never on the event loop.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from dockling import errors
from dockling.mount import MNT_DETACH, MS_BIND

CLONE_NEWNET = 0x40000000
NETLINK_ROUTE = 0

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str, path: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise errors.SystemError(f"{what} {path}: {os.strerror(err)}")


@contextlib.contextmanager
def _entered(path: str) -> Iterator[None]:
    """This thread inside the namespace at `path`, and back afterwards."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _check(_libc.setns(target, CLONE_NEWNET), "setns", path)
        finally:
            os.close(target)
        try:
            yield
        finally:
            # Failing to return would leave a pool thread in a container's namespace.
            if _libc.setns(home, CLONE_NEWNET) != 0:
                os.abort()
    finally:
        os.close(home)


def create(path: Path) -> None:
    """A new, empty network namespace pinned at `path` (which must not exist)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDONLY | os.O_CLOEXEC, 0o444)
    os.close(fd)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            _check(_libc.unshare(CLONE_NEWNET), "unshare", str(path))
            try:
                _check(
                    _libc.mount(b"/proc/thread-self/ns/net", bytes(path), None, MS_BIND, None),
                    "bind-mount netns",
                    str(path),
                )
            finally:
                if _libc.setns(home, CLONE_NEWNET) != 0:
                    os.abort()
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    finally:
        os.close(home)


def remove(path: Path) -> None:
    """Unpin and delete the namespace file; the namespace dies with its last process."""
    if not path.exists():
        return
    if os.path.ismount(path):
        _check(_libc.umount2(bytes(path), MNT_DETACH), "umount", str(path))
    path.unlink(missing_ok=True)


def netlink_socket(path: str) -> socket.socket:
    """A NETLINK_ROUTE socket that talks to the namespace at `path`."""
    with _entered(path):
        return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)


def inode(path: str) -> int:
    return os.stat(path).st_ino
