"""The image tables in DATA_ROOT/metadata.db (SQLite, WAL): one transaction per change.

images      id (sha256:<config digest>), config JSON exactly as hashed, created,
            size, top_layer, chain_ids (JSON list), last_tag_time
image_refs  normalised reference (tag or digest) -> image id
image_layers        chain_id -> diff_id, parent, size: unpacked layers in use
image_layer_blobs   blob digest -> diff_id, media type, size: stored layer tarballs
image_parents       image id -> the image it was built or committed from
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    created TEXT NOT NULL,
    size INTEGER NOT NULL,
    top_layer TEXT,
    chain_ids TEXT NOT NULL,
    last_tag_time TEXT
);
CREATE TABLE IF NOT EXISTS image_refs (
    ref TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE INDEX IF NOT EXISTS image_refs_by_image ON image_refs(image_id);
CREATE TABLE IF NOT EXISTS image_layers (
    chain_id TEXT PRIMARY KEY,
    diff_id TEXT NOT NULL,
    parent TEXT,
    size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS image_parents (
    image_id TEXT PRIMARY KEY,
    parent TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS image_children ON image_parents(parent);
CREATE TABLE IF NOT EXISTS image_layer_blobs (
    blob TEXT PRIMARY KEY,
    diff_id TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL
);
"""


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the metadata database; the caller serialises access."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA busy_timeout=10000")
    db.executescript(_SCHEMA)
    return db


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run the block as one transaction: all of it is visible, or none of it."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
