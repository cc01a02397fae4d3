"""Entries of a running container's /etc/hosts, changed in place.

The file is bind-mounted into the container, so it is rewritten through the same inode
(never replaced by a rename, which the container would not see).
"""

from __future__ import annotations

from pathlib import Path


def add_entry(path: Path, address: str, names: str) -> None:
    """Append `address<TAB>names` unless a line for `address` is there already (Docker adds
    the container's address on a network it is connected to)."""
    lines = path.read_text().splitlines()
    if any(line.split()[:1] == [address] for line in lines):
        return
    with path.open("a") as f:
        f.write(f"{address}\t{names}\n")


def remove_entries(path: Path, address: str) -> None:
    """Drop every line naming `address` (the network was disconnected)."""
    text = path.read_text()
    kept = [line for line in text.splitlines() if line.split()[:1] != [address]]
    new = "".join(f"{line}\n" for line in kept)
    if new != text:
        with path.open("r+") as f:
            f.write(new)
            f.truncate()
