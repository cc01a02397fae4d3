"""COPY and ADD with Docker's rules, from a source root into a mounted image root.

* Sources are paths or `filepath.Match` globs relative to the source root (the context
  or another stage's filesystem); symlinks in them resolve inside that root.
* A directory source copies its contents, not itself.  Several sources, or a glob, need
  a destination ending in `/` (or an existing directory).  A destination ending in `/`,
  or an existing directory, receives `basename(source)`; otherwise it is the file name.
* Files keep their mode and mtime; owners become 0:0 from the context (kept from another
  stage) unless `--chown`; `--chmod` sets the mode of everything copied.
* ADD extracts a local tar archive (plain or compressed) into the destination directory.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import shutil
import stat
import tarfile
from dataclasses import dataclass

from dockling.build.hardlinks import HardLinks
from dockling.errors import InvalidParameter, NotFound
from dockling.runtime.users import resolve_in_root, resolve_user


@dataclass(frozen=True)
class Source:
    """One matched source: its host path and the name it was matched by."""

    path: str
    name: str


def _has_magic(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def match_sources(root: str, patterns: tuple[str, ...], keyword: str) -> list[Source]:
    """The sources `patterns` name under `root`, in pattern order, globs sorted."""
    found: list[Source] = []
    for pattern in patterns:
        clean = posixpath.normpath("/" + pattern).lstrip("/")
        if not _has_magic(clean):
            path = resolve_in_root(root, clean)
            if not os.path.lexists(path):
                raise NotFound(
                    f"{keyword} failed: file not found in build context or excluded by "
                    f".dockerignore: stat {clean or '.'}: file does not exist"
                )
            found.append(Source(path, clean))
            continue
        matches = _glob(root, clean.split("/"), "")
        if not matches:
            raise NotFound(f"{keyword} failed: no source files were specified")
        found.extend(Source(resolve_in_root(root, m), m) for m in matches)
    return found


def _glob(root: str, parts: list[str], prefix: str) -> list[str]:
    head, rest = parts[0], parts[1:]
    directory = resolve_in_root(root, prefix) if prefix else root
    if not _has_magic(head):
        names = [head] if os.path.lexists(os.path.join(directory, head)) else []
    else:
        try:
            names = sorted(n for n in os.listdir(directory) if fnmatch.fnmatchcase(n, head))
        except OSError:
            return []
    result: list[str] = []
    for name in names:
        path = f"{prefix}/{name}" if prefix else name
        if rest:
            if os.path.isdir(resolve_in_root(root, path)):
                result.extend(_glob(root, rest, path))
        else:
            result.append(path)
    return result


def checksum(sources: list[Source]) -> str:
    """A digest of the names, modes, link targets and contents of everything in `sources`
    (the cache key part that changes when a copied file does)."""
    digest = hashlib.sha256()
    for source in sources:
        digest.update(b"\0S" + source.name.encode())
        for rel, full in _tree(source.path):
            st = os.lstat(full)
            digest.update(f"\0{rel}\0{st.st_mode:o}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                digest.update(os.readlink(full).encode())
            elif stat.S_ISREG(st.st_mode):
                with open(full, "rb") as f:
                    while block := f.read(1 << 20):
                        digest.update(block)
    return "sha256:" + digest.hexdigest()


def _tree(path: str) -> list[tuple[str, str]]:
    """(relative name, host path) of `path` and, for a directory, all below it, sorted."""
    items = [("", path)]
    if os.path.isdir(path) and not os.path.islink(path):
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, path)
            for name in sorted(dirnames + filenames):
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                items.append((rel, os.path.join(dirpath, name)))
    return items


@dataclass(frozen=True)
class CopyOptions:
    owner: tuple[int, int] | None  # None: keep the source's owners
    mode: int | None
    extract_archives: bool = False


def parse_chown(
    spec: str | None, image_root: str, default: tuple[int, int] | None
) -> tuple[int, int] | None:
    """`--chown user[:group]` resolved with the image's /etc/passwd and /etc/group."""
    if not spec:
        return default
    user, _, group = spec.partition(":")
    uid, gid, _groups = resolve_user(spec, image_root)
    if not group and user.isdigit():
        gid = uid  # Docker: a numeric user without a group means the same gid
    return uid, gid


def parse_chmod(spec: str | None) -> int | None:
    if not spec:
        return None
    try:
        mode = int(spec, 8)
    except ValueError:
        raise InvalidParameter(f"invalid chmod parameter: {spec}") from None
    if mode > 0o7777:
        raise InvalidParameter(f"invalid chmod parameter: {spec}")
    return mode


def destination(dest: str, workdir: str) -> str:
    """The absolute destination path; a trailing `/` (or `.`) is kept as the dir marker."""
    is_dir = dest.endswith(("/", "/.")) or dest in (".", "")
    path = dest if dest.startswith("/") else posixpath.join(workdir or "/", dest)
    path = posixpath.normpath(path)
    return path.rstrip("/") + "/" if is_dir else path


def copy_sources(
    image_root: str,
    sources: list[Source],
    dest: str,
    options: CopyOptions,
    keyword: str,
    links: HardLinks | None = None,
) -> None:
    """Copy `sources` to the absolute `dest` inside the mounted `image_root`; with `links`,
    files that can be are linked instead, once `links.finish` is called."""
    dest_is_dir = dest.endswith("/")
    target = resolve_in_root(image_root, dest)
    if len(sources) > 1 and not dest_is_dir and not os.path.isdir(target):
        raise InvalidParameter(
            f"When using {keyword} with more than one source file, the destination must be "
            "a directory and end with a /"
        )
    for source in sources:
        if links is not None:
            links.next_source()
        real = source.path
        st = os.stat(real) if os.path.exists(real) else os.lstat(real)
        if stat.S_ISDIR(st.st_mode):
            make_dirs(image_root, dest.rstrip("/") or "/", options)
            _copy_tree_contents(real, resolve_in_root(image_root, dest), options, links)
            continue
        # ADD extracts local archives only; a downloaded one is copied as it is.
        remote = source.name.startswith(("http://", "https://"))
        if options.extract_archives and not remote and _is_archive(real):
            make_dirs(image_root, dest.rstrip("/") or "/", options)
            _extract(real, resolve_in_root(image_root, dest), options, links)
            continue
        if dest_is_dir or os.path.isdir(target):
            parent = dest.rstrip("/") or "/"
            file_dest = posixpath.join(parent, posixpath.basename(source.name) or "root")
        else:
            parent, file_dest = posixpath.dirname(dest) or "/", dest
        make_dirs(image_root, parent, options)
        out = resolve_in_root(image_root, file_dest)
        _copy_entry(real, out, options, links, follow=True)


def make_dirs(image_root: str, path: str, options: CopyOptions) -> None:
    """`mkdir -p` inside the root, each component resolved inside it; new dirs 0755."""
    current = "/"
    for part in [p for p in path.split("/") if p]:
        current = posixpath.join(current, part)
        host = resolve_in_root(image_root, current)
        if not os.path.isdir(host):
            if os.path.lexists(host):
                raise InvalidParameter(f"cannot copy to {current}: not a directory")
            os.mkdir(host, 0o755)
            os.chmod(host, 0o755)
            if options.owner is not None:
                os.lchown(host, *options.owner)


def _copy_tree_contents(src: str, dst: str, options: CopyOptions, links: HardLinks | None) -> None:
    for name in sorted(os.listdir(src)):
        _copy_entry(os.path.join(src, name), os.path.join(dst, name), options, links, follow=False)


def _remove_existing(path: str, keep_dir: bool, links: HardLinks | None) -> None:
    if links is not None and not keep_dir:
        links.forget(path)
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path):
        if keep_dir:
            return
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _copy_entry(
    src: str, dst: str, options: CopyOptions, links: HardLinks | None, *, follow: bool
) -> None:
    st = os.stat(src) if follow else os.lstat(src)
    mode = stat.S_IMODE(st.st_mode) if options.mode is None else options.mode
    owner = options.owner if options.owner is not None else (st.st_uid, st.st_gid)
    if stat.S_ISDIR(st.st_mode):
        _remove_existing(dst, keep_dir=True, links=links)
        if not os.path.isdir(dst):
            if links is not None:
                links.forget(dst)
            os.mkdir(dst)
        _copy_tree_contents(src, dst, options, links)
        os.lchown(dst, *owner)
        os.chmod(dst, mode)
        if links is not None:
            links.set_dir_times(dst, st.st_atime_ns, st.st_mtime_ns)
        else:
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
        return
    _remove_existing(dst, keep_dir=False, links=links)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
        os.lchown(dst, *owner)
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        return
    if not stat.S_ISREG(st.st_mode):
        return  # devices, fifos and sockets are not copied
    if links is not None and links.offer(src, st, dst, owner, mode):
        return
    shutil.copyfile(src, dst, follow_symlinks=True)
    os.lchown(dst, *owner)
    os.chmod(dst, mode)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


def _is_archive(path: str) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def _extract(archive: str, dst: str, options: CopyOptions, links: HardLinks | None) -> None:
    """Unpack a tar archive into `dst`; names may not leave it, links stay as written."""
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            name = posixpath.normpath("/" + member.name).lstrip("/")
            if not name or name == ".":
                continue
            out = resolve_in_root(dst, name)
            if not out.startswith(dst.rstrip("/") + "/"):
                continue
            os.makedirs(os.path.dirname(out), exist_ok=True)
            owner = options.owner if options.owner is not None else (member.uid, member.gid)
            if member.isdir():
                os.makedirs(out, exist_ok=True)
            else:
                _remove_existing(out, keep_dir=False, links=links)
                if member.issym():
                    os.symlink(member.linkname, out)
                elif member.islnk():
                    os.link(resolve_in_root(dst, member.linkname), out)
                elif member.isreg():
                    data = tar.extractfile(member)
                    assert data is not None
                    with data, open(out, "wb") as f:
                        shutil.copyfileobj(data, f, 1 << 20)
                else:
                    continue
            os.lchown(out, *owner)
            if not member.issym():
                os.chmod(out, member.mode & 0o7777 if options.mode is None else options.mode)
            os.utime(out, (member.mtime, member.mtime), follow_symlinks=False)
