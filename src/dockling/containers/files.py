"""Files of a container seen from the host: `docker cp`, `docker export`, `docker diff`.

Paths the user gives are container paths: every symlink on the way is resolved inside the
container's root (an absolute link target starts again at that root, ".." stops at it),
so no path can name a host file outside the rootfs.  Writes then go through
`archive.extract`, which opens each component without following symlinks, so a link the
container plants meanwhile is refused rather than followed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import posixpath
import shutil
import stat
import tarfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from dockling import errors
from dockling.archive.extract import extract_layer
from dockling.archive.safetree import SafeTree, UnsafePath
from dockling.containers.spec import MountSpec
from dockling.diff.compare import write_tree
from dockling.ids import generate_id
from dockling.mount import Mount, mount_all, unmount
from dockling.snapshots.overlay import OverlaySnapshotter

MAX_SYMLINKS = 255
STAT_HEADER = "X-Docker-Container-Path-Stat"

# Go's os.FileMode type bits, which the docker CLI decodes from the stat header.
_GO_DIR = 1 << 31
_GO_SYMLINK = 1 << 27
_GO_DEVICE = 1 << 26
_GO_PIPE = 1 << 25
_GO_SOCKET = 1 << 24
_GO_SETUID = 1 << 23
_GO_SETGID = 1 << 22
_GO_CHARDEV = 1 << 21
_GO_STICKY = 1 << 20


@dataclass(frozen=True, slots=True)
class PathMount:
    """A mount of the container as `docker cp` sees it: what is at `target` is at `source`
    on the host (a volume's or bind's directory, or the daemon's /etc/hosts file)."""

    target: str  # absolute container path
    source: str
    read_only: bool = False


def mount_table(
    mounts: Sequence[MountSpec], volume_path: Callable[[str], str], container_dir: Path
) -> list[PathMount]:
    """The container's volumes, binds and /etc files, deepest target first (tmpfs mounts
    live only in the container's own namespace: cp sees the rootfs under them, as Docker)."""
    table = [
        PathMount(m.target, m.source if m.type == "bind" else volume_path(m.source), m.read_only)
        for m in mounts
        if m.type in ("bind", "volume") and m.source
    ]
    taken = {m.target for m in table}
    table.extend(
        PathMount(f"/etc/{name}", str(container_dir / name))
        for name in ("hosts", "hostname", "resolv.conf")
        if f"/etc/{name}" not in taken
    )
    return sorted(table, key=lambda m: len(m.target), reverse=True)


def locate(root: str, mounts: Sequence[PathMount], container_path: str) -> tuple[str, str, bool]:
    """(base directory or file, path relative to it, read-only) for an absolute,
    symlink-free container path: inside the deepest mount holding it, else the rootfs."""
    for mount in mounts:
        if container_path == mount.target:
            return mount.source, "", mount.read_only
        if container_path.startswith(mount.target + "/"):
            return mount.source, container_path[len(mount.target) + 1 :], mount.read_only
    return root, container_path.lstrip("/"), False


def _host(root: str, mounts: Sequence[PathMount], container_path: str) -> str:
    base, rel, _ = locate(root, mounts, container_path)
    return os.path.join(base, rel) if rel else base


def resolve_container_path(
    root: str, path: str, *, follow_last: bool = True, mounts: Sequence[PathMount] = ()
) -> str:
    """`path` with every symlink resolved inside the container (an absolute link target
    starts again at its root, ".." stops at it), through its mounts: an absolute path.

    With `follow_last=False` a symlink in the last component is kept (lstat semantics).
    Raises InvalidParameter after too many links (a loop).
    """
    queue = [p for p in path.split("/") if p]
    resolved: list[str] = []
    links = 0
    while queue:
        part = queue.pop(0)
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = _host(root, mounts, "/" + "/".join([*resolved, part]))
        if (queue or follow_last) and os.path.islink(candidate):
            links += 1
            if links > MAX_SYMLINKS:
                raise errors.InvalidParameter(f"too many levels of symbolic links: {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            queue = [p for p in target.split("/") if p] + queue
            continue
        resolved.append(part)
    return "/" + "/".join(resolved)


def resolve_in_root(
    root: str, path: str, *, follow_last: bool = True, mounts: Sequence[PathMount] = ()
) -> str:
    """The host path of the container path `path` (see `resolve_container_path`)."""
    resolved = resolve_container_path(root, path, follow_last=follow_last, mounts=mounts)
    return _host(root, mounts, resolved)


@dataclass(frozen=True, slots=True)
class Resolved:
    """A container path as `docker cp` sees it (see `resolve_path`)."""

    host: str  # host path: the parent resolved in the root, the last component as given
    name: str  # the archive's top entry name: the path's base name ("." for "dir/.")
    container_path: str  # absolute container path, trailing "/" or "/." kept
    resolved_path: str = ""  # the same with its directory's symlinks resolved


def resolve_path(root: str, path: str, mounts: Sequence[PathMount] = ()) -> Resolved:
    """Docker's ResolvePath: resolve the directory part, keep the base name as given.

    "dir/." and "dir/" resolve the directory itself (links followed); "link" stays the
    link.  The archive name is the base name of the absolute path.  Paths in the
    container's volumes and binds are found in them, not in the rootfs under them.
    """
    # normpath keeps a leading "//" (POSIX allows it a meaning): start from one slash.
    absolute = "/" + posixpath.normpath("/" + path).lstrip("/")
    if path.endswith("/."):
        absolute = absolute.rstrip("/") + "/."
    elif path.endswith("/") and absolute != "/":
        absolute += "/"
    directory, base = posixpath.split(absolute)
    resolved_dir = resolve_container_path(root, directory, mounts=mounts)
    resolved = resolved_dir if base in ("", ".") else posixpath.join(resolved_dir, base)
    name = posixpath.basename(absolute.rstrip("/")) if not absolute.endswith("/.") else "."
    return Resolved(
        host=_host(root, mounts, resolved),
        name=name or ".",
        container_path=absolute,
        resolved_path=resolved,
    )


def go_file_mode(st: os.stat_result) -> int:
    """`st.st_mode` as Go's os.FileMode (what the docker CLI expects in the stat header)."""
    mode = st.st_mode & 0o777
    kind = stat.S_IFMT(st.st_mode)
    mode |= {
        stat.S_IFDIR: _GO_DIR,
        stat.S_IFLNK: _GO_SYMLINK,
        stat.S_IFBLK: _GO_DEVICE,
        stat.S_IFCHR: _GO_DEVICE | _GO_CHARDEV,
        stat.S_IFIFO: _GO_PIPE,
        stat.S_IFSOCK: _GO_SOCKET,
    }.get(kind, 0)
    if st.st_mode & stat.S_ISUID:
        mode |= _GO_SETUID
    if st.st_mode & stat.S_ISGID:
        mode |= _GO_SETGID
    if st.st_mode & stat.S_ISVTX:
        mode |= _GO_STICKY
    return mode


def path_stat(
    root: str, resolved: Resolved, container_name: str, mounts: Sequence[PathMount] = ()
) -> dict[str, object]:
    """Docker's ContainerPathStat of `resolved`; NotFound like dockerd when it is absent."""
    try:
        st = os.lstat(resolved.host)
    except (FileNotFoundError, NotADirectoryError):
        raise errors.NotFound(
            f"Could not find the file {resolved.container_path} in container {container_name}"
        ) from None
    link_target = ""
    if stat.S_ISLNK(st.st_mode):
        link_target = resolve_container_path(root, resolved.container_path, mounts=mounts)
    mtime = datetime.fromtimestamp(st.st_mtime, UTC).isoformat().replace("+00:00", "Z")
    return {
        "name": resolved.name if resolved.name != "." else posixpath.basename(resolved.host),
        "size": st.st_size,
        "mode": go_file_mode(st),
        "mtime": mtime,
        "linkTarget": link_target,
    }


def encode_stat(value: dict[str, object]) -> str:
    """The X-Docker-Container-Path-Stat header value: base64 of the JSON."""
    return base64.b64encode(json.dumps(value).encode()).decode()


@contextlib.contextmanager
def container_root(
    snapshotter: OverlaySnapshotter,
    rootfs: Path,
    container_id: str,
    scratch: Path,
    *,
    writable: bool,
) -> Iterator[str]:
    """The container's merged root directory for the block.

    A running container's rootfs mount is used as it is; for a stopped one the snapshot
    is mounted (read-only unless `writable`) on a scratch directory and unmounted after.
    """
    if os.path.ismount(rootfs):
        yield str(rootfs)
        return
    mounts = snapshotter.mounts(container_id)
    if not writable:
        mounts = [_read_only(m) for m in mounts]
    scratch.mkdir(parents=True, exist_ok=True)
    target = scratch / f"view-{generate_id()[:16]}"
    target.mkdir()
    try:
        mount_all(mounts, target)
        try:
            yield str(target)
        finally:
            unmount(target, detach=True)
    finally:
        with contextlib.suppress(OSError):
            target.rmdir()


def _read_only(mount: Mount) -> Mount:
    options = tuple(o for o in mount.options if o not in ("rw", "ro"))
    return Mount(mount.type, mount.source, mount.target, ("ro", *options))


def write_path(
    root: str,
    resolved: Resolved,
    out: BinaryIO,
    container_name: str,
    mounts: Sequence[PathMount] = (),
) -> None:
    """Write the file or directory `resolved` names to `out` as `docker cp` does."""
    path_stat(root, resolved, container_name, mounts)  # NotFound first, with Docker's message
    write_tree(Path(resolved.host), out, name=resolved.name)


def extract_into(
    root: str,
    path: str,
    archive: Path,
    *,
    container_name: str,
    copy_owner: bool,
    spool_dir: Path,
    mounts: Sequence[PathMount] = (),
    read_only_rootfs: bool = False,
) -> None:
    """Unpack the tar at `archive` into the container directory `path` (PUT archive).

    The directory must exist.  Without `copy_owner` everything becomes root's (0:0), as
    with `docker cp` without -a.  Members may not escape the directory (see module doc).
    """
    base, relative, read_only = locate(
        root, mounts, resolve_container_path(root, path, mounts=mounts)
    )
    if read_only:
        raise errors.Forbidden("mounted volume is marked read-only")
    if base == root and read_only_rootfs:
        raise errors.Forbidden("container rootfs is marked read-only")
    parts = tuple(relative.split("/")) if relative else ()
    root = base
    tree = SafeTree(root, make_dir=_no_create)
    try:
        try:
            fd = tree.dir_fd(parts, create=False, member=path)
        except FileNotFoundError:
            raise errors.NotFound(
                f"Could not find the file {path} in container {container_name}"
            ) from None
        except UnsafePath:
            raise errors.InvalidParameter(f"extraction point is not a directory: {path}") from None
        del fd  # checked: a directory, reached without following any link
        # The extraction root is named through the descriptor of its parent: the magic
        # link is followed to exactly that directory, and extract_layer opens the last
        # component with O_NOFOLLOW, so nothing the container renames meanwhile can
        # redirect it outside the root.
        target = Path(root)
        if parts:
            parent_fd = tree.dir_fd(parts[:-1], create=False, member=path)
            target = Path(f"/proc/self/fd/{parent_fd}") / parts[-1]
        source = archive
        if not copy_owner:
            source = spool_dir / f"cp-{generate_id()[:16]}.tar"
            _as_root(archive, source)
        try:
            with open(source, "rb") as f:
                extract_layer(f, target)
        finally:
            if source != archive:
                source.unlink(missing_ok=True)
    finally:
        tree.close()


def _no_create(parent_fd: int, name: str, parts: tuple[str, ...]) -> None:
    raise FileNotFoundError(name)


def _as_root(source: Path, dest: Path) -> None:
    """Copy the tar `source` to `dest` with every member owned by 0:0."""
    with (
        tarfile.open(source, "r|*") as tin,
        open(dest, "wb") as raw,
        tarfile.open(fileobj=raw, mode="w|", format=tarfile.PAX_FORMAT) as tout,
    ):
        for member in tin:
            member.uid = member.gid = 0
            member.uname = member.gname = "root"
            data = tin.extractfile(member) if member.isreg() else None
            tout.addfile(member, data)
    shutil.copystat(source, dest)
