"""The overlayfs snapshotter: root/snapshots/<n>/{fs,work} plus root/metadata.db.

Directory names are small integers (like containerd's) so that the lowerdir option of a
many-layer image stays within the page-sized limit of mount data.  Every state change is
one SQLite transaction; directories are created under a temporary name and renamed into
place inside that transaction, and removed by renaming away first, so a crash leaves only
directories without a row, which `cleanup` deletes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dockling import errors
from dockling.ids import generate_id
from dockling.mount import Mount, syncfs
from dockling.snapshots.base import Info, Kind, Usage

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    parent TEXT,
    kind TEXT NOT NULL,
    created TEXT NOT NULL,
    size INTEGER,
    inodes INTEGER
);
"""
# Mount data is copied into one page by the kernel.
MAX_MOUNT_DATA = os.sysconf("SC_PAGE_SIZE") - 1
_INDEX_PARAM = Path("/sys/module/overlay/parameters/index")


@dataclass(slots=True)
class _Row:
    id: int
    key: str
    parent: str | None
    kind: Kind
    created: str
    size: int | None
    inodes: int | None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class OverlaySnapshotter:
    """Snapshots on overlayfs under `root` (DATA_ROOT/snapshots/overlay). Thread-safe."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._dirs = root / "snapshots"
        self._dirs.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            root / "metadata.db", isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._rows: dict[str, _Row] = {}
        for r in self._db.execute(
            "SELECT id, key, parent, kind, created, size, inodes FROM snapshots"
        ):
            self._rows[r[1]] = _Row(r[0], r[1], r[2], Kind(r[3]), r[4], r[5], r[6])
        self._index_off = _INDEX_PARAM.exists()

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- paths -------------------------------------------------------------------------

    def _dir(self, row: _Row) -> Path:
        return self._dirs / str(row.id)

    def _row(self, key: str) -> _Row:
        row = self._rows.get(key)
        if row is None:
            raise errors.NotFound(f"snapshot {key}: not found")
        return row

    def fs_path(self, key: str) -> Path:
        """The directory holding the snapshot's own files (an overlay upper or lower dir)."""
        with self._lock:
            return self._dir(self._row(key)) / "fs"

    def work_path(self, key: str) -> Path:
        with self._lock:
            return self._dir(self._row(key)) / "work"

    def parent_paths(self, key: str) -> list[Path]:
        """The fs directories of all ancestors of `key`, nearest first."""
        with self._lock:
            return self._parent_paths(self._row(key))

    def _parent_paths(self, row: _Row) -> list[Path]:
        paths: list[Path] = []
        parent = row.parent
        while parent is not None:
            prow = self._row(parent)
            paths.append(self._dir(prow) / "fs")
            parent = prow.parent
        return paths

    # -- creation ----------------------------------------------------------------------

    def prepare(self, key: str, parent: str | None) -> list[Mount]:
        """Create a writable snapshot on top of the committed `parent`; return its mounts."""
        return self._create(key, parent, Kind.ACTIVE)

    def view(self, key: str, parent: str | None) -> list[Mount]:
        """Create a read-only view of the committed `parent`; return its mounts."""
        return self._create(key, parent, Kind.VIEW)

    def _create(self, key: str, parent: str | None, kind: Kind) -> list[Mount]:
        if not key:
            raise errors.InvalidParameter("snapshot key must not be empty")
        temp = self._dirs / f"new-{generate_id()[:16]}"
        (temp / "fs").mkdir(parents=True, mode=0o755)
        if kind is Kind.ACTIVE:
            (temp / "work").mkdir(mode=0o700)
        try:
            with self._lock:
                if key in self._rows:
                    raise errors.AlreadyExists(f"snapshot {key}: already exists")
                if parent is not None and self._row(parent).kind is not Kind.COMMITTED:
                    raise errors.InvalidParameter(f"snapshot {parent}: parent is not committed")
                created = _now()
                with self._transaction() as db:
                    cur = db.execute(
                        "INSERT INTO snapshots (key, parent, kind, created) VALUES (?, ?, ?, ?)",
                        (key, parent, kind.value, created),
                    )
                    assert cur.lastrowid is not None
                    row = _Row(cur.lastrowid, key, parent, kind, created, None, None)
                    os.rename(temp, self._dir(row))
                self._rows[key] = row
                return self._mounts(row)
        finally:
            shutil.rmtree(temp, ignore_errors=True)

    # -- mounts ------------------------------------------------------------------------

    def mounts(self, key: str) -> list[Mount]:
        """The mounts that assemble an active or view snapshot."""
        with self._lock:
            return self._mounts(self._row(key))

    def _mounts(self, row: _Row) -> list[Mount]:
        own = self._dir(row)
        lowers = self._parent_paths(row)
        if row.kind is Kind.COMMITTED:
            raise errors.InvalidParameter(f"snapshot {row.key}: committed snapshots have no mounts")
        if row.kind is Kind.VIEW:
            if len(lowers) <= 1:
                source = lowers[0] if lowers else own / "fs"
                return [Mount("bind", str(source), options=("ro", "rbind"))]
            return [self._overlay(lowers, None, None, readonly=True)]
        if not lowers:
            return [Mount("bind", str(own / "fs"), options=("rw", "rbind"))]
        return [self._overlay(lowers, own / "fs", own / "work", readonly=False)]

    def _overlay(
        self, lowers: list[Path], upper: Path | None, work: Path | None, *, readonly: bool
    ) -> Mount:
        options: list[str] = []
        if readonly:
            options.append("ro")
        if self._index_off:
            # Layers are shared by many overlays; the inode index would tie them to one.
            options.append("index=off")
        options.append("lowerdir=" + ":".join(str(p) for p in lowers))
        if upper is not None and work is not None:
            options += [f"upperdir={upper}", f"workdir={work}"]
        return Mount("overlay", "overlay", options=tuple(options))

    # -- state changes -----------------------------------------------------------------

    def commit(self, name: str, key: str) -> None:
        """Freeze the active snapshot `key` as the committed snapshot `name`."""
        with self._lock:
            row = self._row(key)
            if row.kind is not Kind.ACTIVE:
                raise errors.InvalidParameter(f"snapshot {key}: only active snapshots commit")
            if name in self._rows:
                raise errors.AlreadyExists(f"snapshot {name}: already exists")
            usage = _disk_usage(self._dir(row) / "fs")
            # The row will say "committed": the files must be on disk before it does.
            syncfs(self._dir(row) / "fs")
            with self._transaction() as db:
                db.execute(
                    "UPDATE snapshots SET key = ?, kind = ?, size = ?, inodes = ? WHERE id = ?",
                    (name, Kind.COMMITTED.value, usage.size, usage.inodes, row.id),
                )
            del self._rows[key]
            row.key, row.kind, row.size, row.inodes = name, Kind.COMMITTED, usage.size, usage.inodes
            self._rows[name] = row

    def remove(self, key: str) -> None:
        """Delete a snapshot and its files; Conflict while other snapshots build on it."""
        with self._lock:
            row = self._row(key)
            children = [r.key for r in self._rows.values() if r.parent == key]
            if children:
                raise errors.Conflict(
                    f"snapshot {key}: cannot remove, {len(children)} snapshot(s) use it as parent"
                )
            trash = self._dirs / f"rm-{row.id}"
            with self._transaction() as db:
                db.execute("DELETE FROM snapshots WHERE id = ?", (row.id,))
                with contextlib.suppress(FileNotFoundError):
                    os.rename(self._dir(row), trash)
            del self._rows[key]
        shutil.rmtree(trash, ignore_errors=True)

    # -- queries -----------------------------------------------------------------------

    def stat(self, key: str) -> Info:
        with self._lock:
            row = self._row(key)
            return Info(row.key, row.parent, row.kind, row.created)

    def exists(self, key: str) -> bool:
        with self._lock:
            return key in self._rows

    def list(self) -> list[Info]:
        with self._lock:
            return [Info(r.key, r.parent, r.kind, r.created) for r in self._rows.values()]

    def usage(self, key: str) -> Usage:
        """Disk usage of the snapshot's own directory (recorded at commit for committed ones)."""
        with self._lock:
            row = self._row(key)
            if row.size is not None and row.inodes is not None:
                return Usage(row.size, row.inodes)
            path = self._dir(row) / "fs"
        return _disk_usage(path)

    def cleanup(self) -> None:
        """Delete directories no snapshot row owns (leftovers of interrupted operations)."""
        with self._lock:
            owned = {str(r.id) for r in self._rows.values()}
            for entry in os.scandir(self._dirs):
                if entry.name not in owned:
                    shutil.rmtree(entry.path, ignore_errors=True)


def _disk_usage(path: Path) -> Usage:
    """Apparent bytes of non-directories and inodes under `path`, hard links counted once."""
    seen: set[int] = set()
    size = 0
    inodes = 0
    stack = [str(path)]
    while stack:
        current = stack.pop()
        with os.scandir(current) as it:
            for entry in it:
                st = entry.stat(follow_symlinks=False)
                if st.st_ino in seen:
                    continue
                if st.st_nlink > 1:
                    seen.add(st.st_ino)
                inodes += 1
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    size += st.st_size
    return Usage(size, inodes)
