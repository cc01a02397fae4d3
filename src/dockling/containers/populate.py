"""Filling an empty volume with the image's files at its mount path, as Docker does.

`docker run -v data:/var/lib/app image` starts with the image's /var/lib/app in the new
volume (owners, modes, times, symlinks and hard links kept; the volume's root takes the
directory's owner and mode); a volume that already holds anything, a bind mount, and a
volume mounted with `nocopy` are left as they are.  The image is read through a read-only
view of its snapshot, mounted for the copy and removed after it.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Sequence

from dockling.containers.spec import MountSpec
from dockling.ids import generate_id
from dockling.images.store import ImageService
from dockling.mount import mount_all, unmount
from dockling.runtime.users import resolve_in_root


def populate_volumes(
    images: ImageService,
    top_layer: str | None,
    mounts: Sequence[MountSpec],
    volume_path: Callable[[str], str],
) -> None:
    """Copy the image's files under each volume's target into the volume, if it is empty."""
    wanted = [m for m in mounts if m.type == "volume" and not m.no_copy and m.source]
    if not wanted or top_layer is None:
        return
    snapshots = images.snapshotter()
    key = f"populate-{generate_id()}"
    tmp = images.data_root / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    root = tempfile.mkdtemp(prefix="populate-", dir=tmp)
    try:
        mount_all(snapshots.view(key, top_layer), root)
        try:
            for mount in wanted:
                source = resolve_in_root(root, mount.target)
                destination = volume_path(mount.source)
                if os.path.isdir(source) and not os.path.islink(source) and _empty(destination):
                    copy_tree(source, destination)
        finally:
            unmount(root, detach=True)
    finally:
        os.rmdir(root)
        if snapshots.exists(key):
            snapshots.remove(key)


def _empty(path: str) -> bool:
    with os.scandir(path) as entries:
        return next(entries, None) is None


def copy_tree(source: str, destination: str) -> None:
    """Copy the contents of `source` into the existing `destination` with their metadata;
    `destination` itself takes `source`'s owner, mode and times."""
    links: dict[tuple[int, int], str] = {}
    dirs: list[tuple[str, os.stat_result]] = []
    for directory, names, files in os.walk(source):
        rel = os.path.relpath(directory, source)
        target_dir = destination if rel == "." else os.path.join(destination, rel)
        dirs.append((target_dir, os.lstat(directory)))
        for name in names:
            src = os.path.join(directory, name)
            st = os.lstat(src)
            dst = os.path.join(target_dir, name)
            if stat.S_ISLNK(st.st_mode):  # os.walk lists symlinks to dirs as dirs
                _copy_entry(src, dst, st, links)
            else:
                os.mkdir(dst)
        for name in files:
            src = os.path.join(directory, name)
            _copy_entry(src, os.path.join(target_dir, name), os.lstat(src), links)
    # Directories last, deepest first: their own times after their contents were written.
    for path, st in reversed(dirs):
        os.lchown(path, st.st_uid, st.st_gid)
        os.chmod(path, stat.S_IMODE(st.st_mode))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_entry(src: str, dst: str, st: os.stat_result, links: dict[tuple[int, int], str]) -> None:
    mode = st.st_mode
    if stat.S_ISREG(mode) and st.st_nlink > 1 and (st.st_dev, st.st_ino) in links:
        os.link(links[(st.st_dev, st.st_ino)], dst)  # a hard link stays one
        return
    if stat.S_ISLNK(mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISREG(mode):
        with open(src, "rb") as reader, open(dst, "xb") as writer:
            while chunk := reader.read(1 << 20):
                writer.write(chunk)
        if st.st_nlink > 1:
            links[(st.st_dev, st.st_ino)] = dst
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
        os.mknod(dst, mode, st.st_rdev)
    else:
        return  # sockets are not copied
    os.lchown(dst, st.st_uid, st.st_gid)
    if not stat.S_ISLNK(mode):
        os.chmod(dst, stat.S_IMODE(mode))
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
