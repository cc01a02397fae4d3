"""Finding and removing the mounts a test left under its temporary directory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dockling.mount import mount_points, unmount


def mounts_under(path: Path) -> list[str]:
    """Mount points strictly below `path` (resolved), in /proc/self/mountinfo order."""
    prefix = str(path.resolve()) + "/"
    return [p for p in mount_points() if p.startswith(prefix)]


def unmount_under(path: Path) -> list[str]:
    """Lazily unmount everything mounted below `path`, deepest first; return what was
    mounted there, so that a fixture can fail the test for a leak."""
    leaked = mounts_under(path)
    for point in sorted(leaked, reverse=True):
        unmount(point, detach=True)
    return leaked


@contextmanager
def no_mounts_left(path: Path) -> Iterator[None]:
    """On exit, unmount whatever the body left below `path`, then fail if any remains."""
    try:
        yield
    finally:
        unmount_under(path)
    assert mounts_under(path) == []
