"""Container filesystem commands: commit, export, diff, cp."""

from __future__ import annotations

import base64
import json
import os
import posixpath
import sys
import tarfile
import tempfile

from dockling.cli.commands.image_archive import _write_body
from dockling.cli.context import CLIError, Context
from dockling.cli.flags import FlagSet
from dockling.cli.humanize import human_size
from dockling.client.transport import APIError, _read_head, quote_ref

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs every CLI start a few ms: annotations only
    from typing import Any, BinaryIO

_KIND_LETTERS = {0: "C", 1: "A", 2: "D"}
_GO_DIR = 1 << 31
_GO_SYMLINK = 1 << 27


def cmd_commit(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(
        display,
        "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
        "Create a new image from a container's changes",
        min_args=1,
        max_args=2,
    )
    fs.value("author", "a", 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
    fs.list("change", "c", "Apply Dockerfile instruction to the created image")
    fs.value("message", "m", "Commit message")
    fs.bool("pause", "p", "Pause container during commit", default=True)
    values, rest = fs.parse(args)
    repo, tag = "", ""
    if len(rest) > 1:
        target = rest[1]
        colon = target.rfind(":")
        if colon > target.rfind("/"):
            repo, tag = target[:colon], target[colon + 1 :]
        else:
            repo = target
    query: dict[str, Any] = {
        "container": rest[0],
        "repo": repo or None,
        "tag": tag or None,
        "comment": values["message"],
        "author": values["author"],
        "changes": values["change"] or None,
        "pause": bool(values["pause"]),
    }
    result = ctx.client.transport.call("POST", "/commit", query=query, body={})
    sys.stdout.write(f"{(result or {}).get('Id', '')}\n")
    return 0


def cmd_export(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(
        display,
        "[OPTIONS] CONTAINER",
        "Export a container's filesystem as a tar archive",
        min_args=1,
        exact_args=True,
    )
    fs.value("output", "o", "Write to a file, instead of STDOUT")
    values, (container,) = fs.parse(args)
    if not values["output"] and sys.stdout.isatty():
        raise CLIError("cowardly refusing to save to a terminal. Use the -o flag or redirect", 1)
    resp = ctx.client.transport.request("GET", f"/containers/{quote_ref(container)}/export")
    _write_body(resp, values["output"])
    return 0


def cmd_diff(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(
        display,
        "CONTAINER",
        "Inspect changes to files or directories on a container's filesystem",
        min_args=1,
        exact_args=True,
    )
    _, (container,) = fs.parse(args)
    found = ctx.client.transport.call("GET", f"/containers/{quote_ref(container)}/changes") or []
    for change in found:
        sys.stdout.write(f"{_KIND_LETTERS.get(int(change['Kind']), '?')} {change['Path']}\n")
    return 0


# -- cp ---------------------------------------------------------------------------------


def _split_copy_arg(arg: str) -> tuple[str, str]:
    """(container, path) of "CONTAINER:PATH"; ("", arg) for a local path."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return "", arg
    container, _, path = arg.partition(":")
    return container, path


def _stat(ctx: Context, container: str, path: str) -> dict[str, Any] | None:
    """The container path's stat (HEAD archive), or None when it does not exist."""
    transport = ctx.client.transport
    sock = transport.send(
        "HEAD", f"/containers/{quote_ref(container)}/archive", query={"path": path}
    )
    try:
        status, headers, _ = _read_head(sock)
    finally:
        sock.close()
    if status == 404:
        if "x-docker-container-path-stat" not in headers:
            # Either the container or the path is missing: ask once more to tell which.
            try:
                transport.call("GET", f"/containers/{quote_ref(container)}/json")
            except APIError as exc:
                raise CLIError(f"Error response from daemon: {exc.message}", 1) from None
        return None
    if status >= 400:
        raise CLIError(f"Error response from daemon: HTTP {status} for {container}:{path}", 1)
    raw = headers.get("x-docker-container-path-stat", "")
    stat: dict[str, Any] = json.loads(base64.b64decode(raw)) if raw else {}
    return stat


def _is_dir(stat: dict[str, Any]) -> bool:
    return bool(int(stat.get("mode", 0)) & _GO_DIR)


def _dir_contents(path: str) -> bool:
    return path.endswith("/.") or path == "."


def cmd_cp(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(
        display,
        "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tdockling cp [OPTIONS] SRC_PATH|- "
        "CONTAINER:DEST_PATH",
        "Copy files/folders between a container and the local filesystem",
        min_args=2,
        exact_args=True,
    )
    fs.bool("archive", "a", "Archive mode (copy all uid/gid information)")
    fs.bool("follow-link", "L", "Always follow symbol link in SRC_PATH")
    fs.bool("quiet", "q", "Suppress progress output during copy")
    values, (source, dest) = fs.parse(args)
    src_container, src_path = _split_copy_arg(source)
    dst_container, dst_path = _split_copy_arg(dest)
    if src_container and dst_container:
        raise CLIError("copying between containers is not supported", 1)
    if not src_container and not dst_container:
        raise CLIError("must specify at least one container source", 1)
    if src_container:
        size = _copy_from(ctx, src_container, src_path, dst_path, follow=values["follow_link"])
        where = dst_path
    else:
        size = _copy_to(
            ctx, src_path, dst_container, dst_path, owner=values["archive"],
            follow=values["follow_link"],
        )  # fmt: skip
        where = dest
    if not values["quiet"] and dst_path != "-" and src_path != "-":
        sys.stderr.write(f"Successfully copied {human_size(size, 3)} to {where}\n")
    return 0


def _copy_from(ctx: Context, container: str, path: str, dest: str, *, follow: bool) -> int:
    stat = _stat(ctx, container, path)
    if stat is None:
        raise CLIError(
            f"Error response from daemon: Could not find the file {path} in container {container}",
            1,
        )
    rebase = ""
    if follow and stat.get("linkTarget"):
        rebase = posixpath.basename(path.rstrip("/"))
        path = str(stat["linkTarget"])
        stat = _stat(ctx, container, path) or stat
    resp = ctx.client.transport.request(
        "GET", f"/containers/{quote_ref(container)}/archive", query={"path": path}
    )
    if dest == "-":
        _write_body(resp, None)
        return 0
    top = posixpath.basename(path.rstrip("/")) if not _dir_contents(path) else "."
    top = top or "."
    src_is_dir = _is_dir(stat)
    if os.path.isdir(dest):
        # Into an existing directory: "dir/." copies the contents, anything else the entry.
        target_dir, rename = dest, (rebase or None)
    else:
        if dest.endswith("/"):
            resp.close()
            raise CLIError(f'destination directory "{dest}" does not exist', 1)
        if os.path.exists(dest) and src_is_dir:
            resp.close()
            raise CLIError("cannot copy a directory to a file", 1)
        target_dir = os.path.dirname(os.path.abspath(dest))
        rename = os.path.basename(dest)
        if not os.path.isdir(target_dir):
            resp.close()
            raise CLIError(f'destination directory "{target_dir}" does not exist', 1)
    try:
        return _extract(_Body(resp), target_dir, top, rename)
    finally:
        resp.close()


class _Body:
    """A file-like view of a response body for tarfile's stream mode."""

    def __init__(self, resp: Any) -> None:
        self._resp = resp

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._resp.read1(size if size > 0 else 1 << 20)
        return data


def _safe_parent(root: str, parts: list[str]) -> None:
    """Refuse a member whose parent directories under `root` include a symlink."""
    current = root
    for part in parts[:-1]:
        current = os.path.join(current, part)
        if os.path.islink(current):
            raise CLIError(f"refusing to extract through the symlink {current}", 1)


def _extract(stream: Any, target_dir: str, top: str, rename: str | None) -> int:
    """Unpack the tar `stream` into `target_dir`, its top entry `top` renamed `rename`.

    Member names are checked: no absolute names, no "..", no writing through a symlink
    the archive planted; hard links must point inside the archive.
    """
    total = 0
    root = os.path.abspath(target_dir)

    def renamed(name: str) -> list[str]:
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if name.startswith("/") or ".." in parts:
            raise CLIError(f"refusing to extract unsafe path {name!r}", 1)
        if rename and top == ".":
            parts = [rename, *parts]  # "dir/." into a new name: the contents go under it
        elif rename:
            if not parts or parts[0] != top:
                raise CLIError(f"unexpected archive entry {name!r}", 1)
            parts[0] = rename
        return parts

    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            parts = renamed(member.name)
            if not parts:
                continue
            _safe_parent(root, parts)
            member.name = "/".join(parts)
            if member.islnk():
                member.linkname = "/".join(renamed(member.linkname))
            if member.isreg():
                total += member.size
            tar.extract(member, root, set_attrs=True)
    return total


def _copy_to(
    ctx: Context, src: str, container: str, dest: str, *, owner: bool, follow: bool
) -> int:
    query: dict[str, Any] = {"path": dest, "copyUIDGID": owner or None}
    archive_path = f"/containers/{quote_ref(container)}/archive"
    if src == "-":
        ctx.client.transport.call("PUT", archive_path, query=query, data=sys.stdin.buffer)
        return 0
    local = src
    if follow:
        local = os.path.realpath(src)
    if not os.path.lexists(local):
        raise CLIError(f"stat {src}: no such file or directory", 1)
    src_is_dir = os.path.isdir(local) and not os.path.islink(local)
    stat = _stat(ctx, container, dest)
    if stat is not None and _is_dir(stat):
        target, name = dest, ("." if _dir_contents(src) else os.path.basename(src.rstrip("/")))
    elif stat is not None:
        if src_is_dir:
            raise CLIError("cannot copy a directory to a file", 1)
        target, name = posixpath.dirname(dest.rstrip("/")) or "/", posixpath.basename(dest)
    else:
        if dest.endswith("/") and not src_is_dir:
            raise CLIError(f'destination directory "{container}:{dest}" does not exist', 1)
        target = posixpath.dirname(dest.rstrip("/")) or "/"
        name = posixpath.basename(dest.rstrip("/"))
    with tempfile.TemporaryFile() as spool:
        total = _write_tar(local, spool, name)
        spool.seek(0)
        query["path"] = target
        ctx.client.transport.call("PUT", archive_path, query=query, data=spool)
    return total


def _write_tar(local: str, out: BinaryIO, name: str) -> int:
    total = 0

    def count(info: tarfile.TarInfo) -> tarfile.TarInfo:
        nonlocal total
        if info.isreg():
            total += info.size
        return info

    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(local, arcname=name, recursive=True, filter=count)
    return total
