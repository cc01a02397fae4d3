"""COPY by hard link (build/hardlinks.py) on real overlay snapshots: what is linked, what
is copied, and that neither the source layer nor the layer tar can tell (root)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockling.archive.extract import extract_layer
from dockling.build.copy import CopyOptions, Source, copy_sources
from dockling.build.hardlinks import HardLinks, in_snapshot
from dockling.build.layers import NewLayer, mounted_snapshot, store_layer
from dockling.images.store import ImageService
from dockling.mount import unmount
from dockling.runtime.users import resolve_in_root
from tests.integration.test_build_layers import base_chain, service, tree

pytestmark = pytest.mark.root

__all__ = ["service"]  # the fixture, shared with test_build_layers

KEEP_OWNERS = CopyOptions(owner=None, mode=None)  # COPY --from keeps the source's owners


def without_link_counts(found: dict[str, tuple[object, ...]]) -> dict[str, tuple[object, ...]]:
    """`tree` minus the link counts, which sharing an inode changes by design."""
    return {k: v[:4] + v[5:] if len(v) > 1 else v for k, v in found.items()}


@pytest.fixture
def held(service: ImageService) -> Iterator[list[str]]:
    with service.lease() as lease:
        yield lease


def stage_layer(service: ImageService, parent: str, held: list[str]) -> str:
    """Another stage's layer, made and settled as a RUN step's would be."""
    with mounted_snapshot(service, parent, writable=True) as (key, root):
        out = Path(root) / "out"
        (out / "sub").mkdir(parents=True)
        for i in range(4):
            (out / f"f{i}").write_text(f"file {i}\n")
        os.chmod(out / "f0", 0o640)
        os.chown(out / "f1", 1000, 1001)
        os.link(out / "f2", out / "f2-hard")
        os.symlink("f3", out / "link")
        (out / "sub" / "deep").write_text("deep\n")
        layer = store_layer(service, key, parent, held, None, mounted_at=root)
    assert layer is not None
    return layer.chain


def copy_from(
    service: ImageService,
    base: str,
    source_chain: str,
    sources: list[str],
    dest: str,
    held: list[str],
    *,
    options: CopyOptions = KEEP_OWNERS,
    epoch: int | None = None,
) -> NewLayer:
    """A COPY --from=<source_chain> onto `base`, as the builder does it."""
    snapshots = service.snapshotter()
    with mounted_snapshot(service, base, writable=True) as (key, root):
        with mounted_snapshot(service, source_chain, writable=False) as (view, src_root):
            links = HardLinks(
                root,
                in_snapshot(src_root, snapshots.parent_paths(view)),
                epoch,
                snapshots.parent_paths(key),
            )
            staged = [Source(resolve_in_root(src_root, s), s) for s in sources]
            copy_sources(root, staged, dest, options, "COPY", links)
        unmount(root, detach=True)
        links.finish(snapshots.fs_path(key))
        layer = store_layer(service, key, base, held, epoch)
    assert layer is not None
    return layer


def assert_snapshot_is_its_tar(service: ImageService, layer: NewLayer, tmp_path: Path) -> None:
    snapshots = service.snapshotter()
    extracted = Path(tempfile.mkdtemp(dir=tmp_path))
    with service.content().open(layer.blob.digest) as f:
        extract_layer(f, extracted, lowers=snapshots.parent_paths(layer.chain))
    got = without_link_counts(tree(snapshots.fs_path(layer.chain)))
    assert got == without_link_counts(tree(extracted))


def ino(path: Path) -> int:
    return os.lstat(path).st_ino


def test_files_are_linked_and_nothing_can_tell(
    service: ImageService, held: list[str], tmp_path: Path
) -> None:
    base = base_chain(service)
    source = stage_layer(service, base, held)
    src = service.snapshotter().fs_path(source)
    before = tree(src)
    layer = copy_from(service, base, source, ["out"], "/data/", held)
    dst = service.snapshotter().fs_path(layer.chain)
    # Owners, modes and times as the source's: the same inodes.
    for name in ("f0", "f1", "f2", "f3", "sub/deep"):
        assert ino(dst / "data" / name) == ino(src / "out" / name), name
    # A hard-linked pair inside the copied tree stays one inode, as Docker keeps it.
    assert ino(dst / "data/f2-hard") == ino(dst / "data/f2")
    assert os.readlink(dst / "data/link") == "f3"
    assert_snapshot_is_its_tar(service, layer, tmp_path)
    # The source layer is as it was, but for the link counts.
    assert without_link_counts(tree(src)) == without_link_counts(before)


def test_what_would_differ_is_copied(
    service: ImageService, held: list[str], tmp_path: Path
) -> None:
    base = base_chain(service)
    source = stage_layer(service, base, held)
    src = service.snapshotter().fs_path(source)
    before = tree(src)

    # --chown/--chmod: the copy's owner or mode is not the source's.
    owned = copy_from(
        service, base, source, ["out"], "/o/", held, options=CopyOptions(owner=(0, 0), mode=None)
    )
    dst = service.snapshotter().fs_path(owned.chain)
    assert ino(dst / "o/f0") == ino(src / "out/f0")  # already 0:0
    assert ino(dst / "o/f1") != ino(src / "out/f1")
    assert os.lstat(dst / "o/f1").st_uid == 0

    # An epoch older than the files: their copies get clamped mtimes, the source keeps its.
    clamped = copy_from(service, base, source, ["out/f0"], "/e/", held, epoch=1_000_000_000)
    dst = service.snapshotter().fs_path(clamped.chain)
    assert ino(dst / "e/f0") != ino(src / "out/f0")
    assert os.lstat(dst / "e/f0").st_mtime == 1_000_000_000
    assert_snapshot_is_its_tar(service, clamped, tmp_path)

    # One inode through two sources: two files, as Docker makes them.
    two = copy_from(service, base, source, ["out/f2", "out/f2-hard"], "/two/", held)
    dst = service.snapshotter().fs_path(two.chain)
    assert ino(dst / "two/f2") == ino(src / "out/f2")
    assert ino(dst / "two/f2-hard") != ino(dst / "two/f2")

    # A file of the destination's own layers (busybox, below both): a copy, not a second name.
    own = copy_from(service, base, source, ["bin/busybox"], "/x", held)
    dst = service.snapshotter().fs_path(own.chain)
    assert ino(dst / "x") != ino(service.snapshotter().fs_path(base) / "bin/busybox")
    assert_snapshot_is_its_tar(service, own, tmp_path)

    assert without_link_counts(tree(src)) == without_link_counts(before)


def test_a_link_replaces_a_file_of_the_image(
    service: ImageService, held: list[str], tmp_path: Path
) -> None:
    base = base_chain(service)
    source = stage_layer(service, base, held)
    layer = copy_from(service, base, source, ["out/f0"], "/etc/passwd", held)
    snapshots = service.snapshotter()
    assert ino(snapshots.fs_path(layer.chain) / "etc/passwd") == ino(
        snapshots.fs_path(source) / "out/f0"
    )
    assert_snapshot_is_its_tar(service, layer, tmp_path)
    with mounted_snapshot(service, layer.chain, writable=False) as (_key, root):
        assert (Path(root) / "etc/passwd").read_text() == "file 0\n"
        assert (Path(root) / "etc/group").exists()  # the rest of /etc is still there
