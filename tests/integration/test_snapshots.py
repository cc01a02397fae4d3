"""The overlay snapshotter with real overlay mounts (needs root)."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from dockling import errors
from dockling.archive.extract import extract_layer
from dockling.mount import mount_all, unmount
from dockling.snapshots.base import Kind
from dockling.snapshots.overlay import OverlaySnapshotter
from tests.helpers.mounts import no_mounts_left

pytestmark = pytest.mark.root


@pytest.fixture
def snapshotter(tmp_path: Path) -> Iterator[OverlaySnapshotter]:
    snaps = OverlaySnapshotter(tmp_path / "overlay")
    with closing(snaps), no_mounts_left(tmp_path):
        yield snaps


def layer(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def commit_layer(snaps: OverlaySnapshotter, name: str, parent: str | None, data: bytes) -> None:
    snaps.prepare("tmp-" + name, parent)
    extract_layer(
        io.BytesIO(data), snaps.fs_path("tmp-" + name), lowers=snaps.parent_paths("tmp-" + name)
    )
    snaps.commit(name, "tmp-" + name)


def test_layers_containers_and_isolation(snapshotter: OverlaySnapshotter, tmp_path: Path) -> None:
    snaps = snapshotter
    commit_layer(snaps, "l1", None, layer({"a": b"1", "b": b"1"}))
    commit_layer(snaps, "l2", "l1", layer({"b": b"2", ".wh.a": b""}))
    assert snaps.stat("l2").kind is Kind.COMMITTED and snaps.stat("l2").parent == "l1"
    assert snaps.usage("l1").size == 2

    m1 = snaps.prepare("c1", "l2")
    m2 = snaps.prepare("c2", "l2")
    assert m1[0].type == "overlay"
    options = dict(o.split("=", 1) for o in m1[0].options if "=" in o)
    assert options["lowerdir"] == f"{snaps.fs_path('l2')}:{snaps.fs_path('l1')}"
    assert options["upperdir"] == str(snaps.fs_path("c1"))
    # Short numeric directory names keep the lowerdir option small.
    assert str(snaps.fs_path("l1")) == str(tmp_path / "overlay/snapshots/1/fs")

    r1, r2 = tmp_path / "r1", tmp_path / "r2"
    r1.mkdir()
    r2.mkdir()
    mount_all(m1, r1)
    mount_all(m2, r2)
    try:
        assert sorted(os.listdir(r1)) == ["b"]
        assert (r1 / "b").read_bytes() == b"2"
        (r1 / "new").write_text("only in c1")
        (r1 / "b").write_text("changed")
        assert not (r2 / "new").exists()
        assert (r2 / "b").read_bytes() == b"2"
    finally:
        unmount(r1)
        unmount(r2)
    assert (snaps.fs_path("c1") / "new").read_text() == "only in c1"
    assert (snaps.fs_path("l2") / "b").read_bytes() == b"2"  # layers stay untouched
    assert snaps.usage("c1").size > 0

    with pytest.raises(errors.Conflict):
        snaps.remove("l2")
    c1_dir = snaps.fs_path("c1").parent
    snaps.remove("c1")
    snaps.remove("c2")
    assert not c1_dir.exists()
    snaps.remove("l2")
    snaps.remove("l1")
    assert snaps.list() == []
    assert os.listdir(tmp_path / "overlay/snapshots") == []


def test_views_and_bind_mounts(snapshotter: OverlaySnapshotter, tmp_path: Path) -> None:
    snaps = snapshotter
    commit_layer(snaps, "l1", None, layer({"a": b"1"}))
    commit_layer(snaps, "l2", "l1", layer({"b": b"2"}))
    (single,) = snaps.view("v1", "l1")
    assert single.type == "bind" and "ro" in single.options
    (multi,) = snaps.view("v2", "l2")
    assert multi.type == "overlay" and "ro" in multi.options
    (scratch,) = snaps.prepare("scratch", None)
    assert scratch.type == "bind" and "rw" in scratch.options
    target = tmp_path / "v"
    target.mkdir()
    for mounts, expected in ((snaps.mounts("v1"), ["a"]), (snaps.mounts("v2"), ["a", "b"])):
        mount_all(mounts, target)
        try:
            assert sorted(os.listdir(target)) == expected
            with pytest.raises(OSError):
                (target / "new").write_text("x")
        finally:
            unmount(target)


def test_errors_and_cleanup(snapshotter: OverlaySnapshotter, tmp_path: Path) -> None:
    snaps = snapshotter
    snaps.prepare("a", None)
    with pytest.raises(errors.AlreadyExists):
        snaps.prepare("a", None)
    with pytest.raises(errors.NotFound):
        snaps.prepare("b", "missing")
    with pytest.raises(errors.InvalidParameter):
        snaps.prepare("b", "a")  # an active snapshot cannot be a parent
    with pytest.raises(errors.SystemError):
        mount_all(snaps.mounts("a"), tmp_path / "no-such-dir")
    # A crash between creating a directory and recording it leaves garbage; cleanup drops it.
    (tmp_path / "overlay/snapshots/new-123/fs").mkdir(parents=True)
    (tmp_path / "overlay/snapshots/99").mkdir()
    snaps.cleanup()
    assert sorted(os.listdir(tmp_path / "overlay/snapshots")) == ["1"]
    # State survives a restart.
    again = OverlaySnapshotter(tmp_path / "overlay")
    assert [i.key for i in again.list()] == ["a"]
    again.close()
