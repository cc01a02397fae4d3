"""Check a data root's image store for consistency, reading its files directly (run it
while the daemon is stopped, or at least idle).

What "consistent" means after any crash: every blob's sha256 matches its name; every
image's config blob is stored; every layer of every image has a committed snapshot whose
parent chain matches the image's; every snapshot is referenced (by an image's chain ids,
as the parent of another snapshot, or as a container's read-write layer); every
committed layer's blob, when recorded, is stored; no snapshot directory lacks a row.
Partial downloads (content/ingest/pull-*) are allowed: they are what a pull resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class StoreReport:
    images: list[str] = field(default_factory=list)
    blobs: int = 0
    snapshots: int = 0
    ingests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _rows(db_path: Path, query: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return list(db.execute(query).fetchall())
    finally:
        db.close()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def check_store(data_root: Path) -> StoreReport:
    """Inspect `data_root` (a docklingd --data-root); problems are listed, not raised."""
    report = StoreReport()
    problems = report.problems
    blob_dir = data_root / "content" / "blobs" / "sha256"
    blobs = set()
    for entry in os.scandir(blob_dir) if blob_dir.is_dir() else ():
        report.blobs += 1
        blobs.add("sha256:" + entry.name)
        actual = _sha256_file(Path(entry.path))
        if actual != entry.name:
            problems.append(f"blob {entry.name} has sha256 {actual}")
    ingest = data_root / "content" / "ingest"
    for entry in os.scandir(ingest) if ingest.is_dir() else ():
        report.ingests.append(entry.name)
        if not entry.name.startswith("pull-"):
            problems.append(f"leftover ingest {entry.name}")

    meta = data_root / "metadata.db"
    images = _rows(meta, "SELECT id, chain_ids, top_layer FROM images") if meta.exists() else []
    layer_rows = (
        _rows(meta, "SELECT chain_id, diff_id, parent FROM image_layers") if meta.exists() else []
    )
    blob_rows = _rows(meta, "SELECT blob, diff_id FROM image_layer_blobs") if meta.exists() else []
    refs = _rows(meta, "SELECT ref, image_id FROM image_refs") if meta.exists() else []

    snap_root = data_root / "snapshots" / "overlay"
    snap_db = snap_root / "metadata.db"
    snaps = (
        {
            str(key): (int(str(sid)), parent, str(kind))
            for sid, key, parent, kind in _rows(
                snap_db, "SELECT id, key, parent, kind FROM snapshots"
            )
        }
        if snap_db.exists()
        else {}
    )
    report.snapshots = len(snaps)

    referenced: set[str] = set()
    image_ids = {str(r[0]) for r in images}
    for image_id, chains_json, top in images:
        report.images.append(str(image_id))
        if str(image_id) not in blobs:
            problems.append(f"image {image_id}: config blob missing")
        chains = [str(c) for c in json.loads(str(chains_json))]
        referenced.update(chains)
        if chains and top != chains[-1]:
            problems.append(f"image {image_id}: top layer {top} is not its last chain id")
        parent: str | None = None
        for chain in chains:
            snap = snaps.get(chain)
            if snap is None:
                problems.append(f"image {image_id}: layer {chain} has no snapshot")
            elif snap[2] != "committed":
                problems.append(f"image {image_id}: layer {chain} snapshot is {snap[2]}")
            elif snap[1] != parent:
                problems.append(f"image {image_id}: layer {chain} has parent {snap[1]}")
            if not (snap_root / "snapshots" / str(snap[0]) / "fs").is_dir() if snap else False:
                problems.append(f"image {image_id}: layer {chain} has no fs directory")
            parent = chain
    for ref, image_id in refs:
        if str(image_id) not in image_ids:
            problems.append(f"reference {ref} points at missing image {image_id}")
    known_layers = {str(r[0]) for r in layer_rows}
    for chain in referenced - known_layers:
        problems.append(f"layer {chain} used by an image has no image_layers row")
    live_diffs = {str(r[1]) for r in layer_rows if str(r[0]) in referenced}
    for blob, diff_id in blob_rows:
        if str(diff_id) in live_diffs and str(blob) not in blobs:
            problems.append(f"layer blob {blob} recorded but not stored")

    containers_dir = data_root / "containers"
    containers = {e.name for e in os.scandir(containers_dir)} if containers_dir.is_dir() else set()
    parents = {str(p) for _, p, _ in snaps.values() if p is not None}
    for key, (_sid, _parent, kind) in snaps.items():
        if key in referenced or key in parents:
            continue
        if kind == "active" and key in containers:
            continue  # a container's read-write layer
        problems.append(f"orphan {kind} snapshot {key}")
    owned = {str(sid) for sid, _, _ in snaps.values()}
    snap_dirs = snap_root / "snapshots"
    for entry in os.scandir(snap_dirs) if snap_dirs.is_dir() else ():
        if entry.name not in owned:
            problems.append(f"snapshot directory {entry.name} has no row")
    return report
