"""The store checker itself: clean after an import, and it notices what a crash could break."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest

from dockling.images.store import ImageService
from tests.helpers.daemon import CACHE
from tests.helpers.store_check import check_store

pytestmark = pytest.mark.root


def test_store_check_reports_damage(tmp_path: Path) -> None:
    root = tmp_path / "data"
    with closing(ImageService(root)) as images, open(CACHE / "busybox-rootfs.tar", "rb") as f:
        image = images.import_tarball(f, reference="busybox:latest")
        top = image.top_layer
    report = check_store(root)
    assert report.problems == [] and report.images == [image.id]
    blob_dir = root / "content" / "blobs" / "sha256"
    victim = next(p for p in blob_dir.iterdir() if "sha256:" + p.name != image.id)
    victim.chmod(0o644)
    victim.write_bytes(b"flipped")
    (blob_dir / ("0" * 64)).write_bytes(b"x")
    (root / "snapshots" / "overlay" / "snapshots" / "999").mkdir()
    problems = check_store(root).problems
    assert any(victim.name in p and "has sha256" in p for p in problems), problems
    assert any("0" * 64 in p for p in problems)
    assert any("snapshot directory 999 has no row" in p for p in problems)
    assert top is not None
