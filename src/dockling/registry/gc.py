"""Garbage collection: mark every blob a kept manifest reaches, sweep the rest.

Run it while the registry is stopped or `--read-only` (as with Distribution): a blob
uploaded but not yet referenced by a manifest is garbage to the collector.

Mark: in each repository, the manifests kept are every revision (or, with
`delete_untagged`, those reachable from a tag, through index children and referrers of kept
manifests).  Each kept manifest marks itself, its config and layers, and its index children.
Sweep: untagged revisions (with `delete_untagged`), repository blob links to unmarked blobs,
unmarked blobs in the content store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from dockling.registry.storage import RegistryStorage


@dataclass
class GcReport:
    marked: set[str] = field(default_factory=set)
    deleted_manifests: list[tuple[str, str]] = field(default_factory=list)  # (repo, digest)
    deleted_blobs: list[str] = field(default_factory=list)
    freed_bytes: int = 0


def _references(storage: RegistryStorage, digest: str) -> tuple[list[str], list[str]]:
    """(blobs, child manifests) a stored manifest points at."""
    try:
        doc = json.loads(storage.content.read(digest))
    except (OSError, ValueError):
        return [], []
    if not isinstance(doc, dict):
        return [], []
    blobs: list[str] = []
    config = doc.get("config")
    if isinstance(config, dict) and isinstance(config.get("digest"), str):
        blobs.append(config["digest"])
    blobs.extend(
        layer["digest"]
        for layer in doc.get("layers") or []
        if isinstance(layer, dict) and isinstance(layer.get("digest"), str)
    )
    children = [
        m["digest"]
        for m in doc.get("manifests") or []
        if isinstance(m, dict) and isinstance(m.get("digest"), str)
    ]
    return blobs, children


def _kept_manifests(storage: RegistryStorage, repo: str, delete_untagged: bool) -> set[str]:
    revisions = set(storage.revisions(repo))
    if not delete_untagged:
        return revisions
    kept: set[str] = set()
    todo = [d for d in storage.tags(repo).values() if d in revisions]
    while todo:
        digest = todo.pop()
        if digest in kept:
            continue
        kept.add(digest)
        _, children = _references(storage, digest)
        todo.extend(c for c in children if c in revisions)
        # An artifact (signature, SBOM) lives as long as the manifest it refers to.
        todo.extend(d["digest"] for d in storage.referrers(repo, digest))
    return kept


def collect(storage: RegistryStorage, *, dry_run: bool, delete_untagged: bool) -> GcReport:
    """Mark and sweep; with `dry_run` nothing is removed and the report says what would be."""
    report = GcReport()
    for repo in storage.list_repositories():
        kept = _kept_manifests(storage, repo, delete_untagged)
        for digest in sorted(set(storage.revisions(repo)) - kept):
            report.deleted_manifests.append((repo, digest))
            if not dry_run:
                storage.delete_revision(repo, digest)
                storage.remove_referrer(repo, digest)
        for digest in kept:
            report.marked.add(digest)
            blobs, children = _references(storage, digest)
            report.marked.update(blobs)
            report.marked.update(children)
    for repo in storage.list_repositories():
        for digest in storage.linked_blobs(repo):
            if digest not in report.marked and not dry_run:
                storage.unlink_blob(repo, digest)
    for digest in sorted(storage.content.list()):
        if digest in report.marked:
            continue
        report.deleted_blobs.append(digest)
        report.freed_bytes += storage.blob_size(digest) or 0
        if not dry_run:
            storage.content.delete(digest)
    return report
