"""Resolve `--user` against a container's own /etc/passwd and /etc/group.

The files are read through `open_in_root`, which follows symlinks as if the rootfs
were `/`: an image whose /etc/passwd links to /../../etc/shadow reads the rootfs's
own file (or nothing), never the host's.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass

from dockling.errors import InvalidParameter

_MAX_SYMLINKS = 40
_MAX_ID = 2**31 - 1


def resolve_in_root(root: str, path: str) -> str:
    """The host path of `path` inside `root`, symlinks resolved inside `root`.

    ".." never climbs above `root`, and absolute link targets restart at `root`.
    Missing components are kept as they are (the result may not exist).
    """
    root = os.path.abspath(root)
    pending = [c for c in path.split("/") if c]
    pending.reverse()
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.pop()
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except OSError:
            resolved.append(part)
            continue
        if not stat.S_ISLNK(st.st_mode):
            resolved.append(part)
            continue
        links += 1
        if links > _MAX_SYMLINKS:
            raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        pending.extend(reversed([c for c in target.split("/") if c]))
    return os.path.join(root, *resolved)


def read_in_root(root: str, path: str) -> str | None:
    """The text of `path` inside `root`, or None when it is missing or not a file."""
    host_path = resolve_in_root(root, path)
    try:
        # O_NOFOLLOW: the last component was resolved above; refuse a link swapped in.
        fd = os.open(host_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return f.read(4 * 1024 * 1024).decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class _Passwd:
    name: str
    uid: int
    gid: int


@dataclass(frozen=True, slots=True)
class _Group:
    name: str
    gid: int
    members: tuple[str, ...]


def _parse_passwd(text: str | None) -> list[_Passwd]:
    entries = []
    for line in (text or "").splitlines():
        fields = line.strip().split(":")
        if len(fields) < 4 or line.startswith("#"):
            continue
        try:
            entries.append(_Passwd(fields[0], int(fields[2]), int(fields[3])))
        except ValueError:
            continue
    return entries


def _parse_group(text: str | None) -> list[_Group]:
    entries = []
    for line in (text or "").splitlines():
        fields = line.strip().split(":")
        if len(fields) < 3 or line.startswith("#"):
            continue
        members = tuple(m for m in fields[3].split(",") if m) if len(fields) > 3 else ()
        try:
            entries.append(_Group(fields[0], int(fields[2]), members))
        except ValueError:
            continue
    return entries


def _numeric(value: str) -> int | None:
    if not value.isdigit():
        return None
    number = int(value)
    if number > _MAX_ID:
        raise InvalidParameter(f"invalid user/group id: {value} is out of range")
    return number


def resolve_user(user: str, rootfs: str) -> tuple[int, int, tuple[int, ...]]:
    """(uid, gid, supplementary gids) for Docker's `--user` forms.

    "" means root.  "name", "uid", "name:group", "uid:gid" and the mixed forms are
    looked up in the rootfs's /etc/passwd and /etc/group; a numeric uid that is not
    listed is allowed (gid 0).  The supplementary groups start with the primary group, as
    Docker has set them since CVE-2023-25173 (a process must not lose its own group through
    setgroups), followed, without an explicit group, by those of /etc/group that list the
    user as a member.
    """
    user_part, _, group_part = user.partition(":")
    passwd = _parse_passwd(read_in_root(rootfs, "/etc/passwd"))
    groups = _parse_group(read_in_root(rootfs, "/etc/group"))

    name = ""
    uid, gid = 0, 0
    if user_part == "":
        user_part = "0"
    number = _numeric(user_part)
    if number is not None:
        uid = number
        match = next((p for p in passwd if p.uid == uid), None)
    else:
        match = next((p for p in passwd if p.name == user_part), None)
        if match is None:
            raise InvalidParameter(
                f"unable to find user {user_part}: no matching entries in passwd file"
            )
    if match is not None:
        name, uid, gid = match.name, match.uid, match.gid

    if group_part:
        gid_number = _numeric(group_part)
        if gid_number is not None:
            gid = gid_number
        else:
            group = next((g for g in groups if g.name == group_part), None)
            if group is None:
                raise InvalidParameter(
                    f"unable to find group {group_part}: no matching entries in group file"
                )
            gid = group.gid
        return uid, gid, (gid,)

    members = (g.gid for g in groups if name and name in g.members)
    return uid, gid, tuple(dict.fromkeys((gid, *members)))


def resolve_groups(names: tuple[str, ...], rootfs: str) -> tuple[int, ...]:
    """`--group-add` values as gids: numbers as they are, names from the image's /etc/group."""
    if not names:
        return ()
    groups = _parse_group(read_in_root(rootfs, "/etc/group"))
    gids = []
    for name in names:
        number = _numeric(name)
        if number is None:
            group = next((g for g in groups if g.name == name), None)
            if group is None:
                raise InvalidParameter(
                    f"Unable to find group {name}: no matching entries in group file"
                )
            number = group.gid
        gids.append(number)
    return tuple(gids)
