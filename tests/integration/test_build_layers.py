"""A build step's snapshot kept as its layer (store_layer, ImageService.commit_layer):
the committed snapshot must equal an extraction of the layer tar (real overlay, root)."""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from dockling import errors
from dockling.archive import whiteouts
from dockling.archive.extract import extract_layer
from dockling.build.layers import mounted_snapshot, store_layer
from dockling.ids import ChainID, DiffID, chain_id
from dockling.images.store import UNCOMPRESSED_LAYER, ImageService
from dockling.mount import unmount
from tests.helpers.daemon import CACHE
from tests.helpers.mounts import no_mounts_left

pytestmark = pytest.mark.root

BUSYBOX = CACHE / "busybox-rootfs.tar"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ImageService]:
    svc = ImageService(tmp_path / "data")
    with closing(svc), no_mounts_left(tmp_path):
        yield svc


def base_chain(svc: ImageService) -> str:
    with open(BUSYBOX, "rb") as f:
        image = svc.import_tarball(f, reference="base:1")
    assert image.top_layer is not None
    return image.top_layer


def tree(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything extraction promises to reproduce, per relative path."""
    found: dict[str, tuple[object, ...]] = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, root)
            xattrs: dict[str, bytes] = {}
            if not stat.S_ISLNK(st.st_mode):
                xattrs = {
                    x: os.getxattr(path, x, follow_symlinks=False)
                    for x in os.listxattr(path, follow_symlinks=False)
                }
            if whiteouts.is_overlay_whiteout(st):
                found[rel] = ("whiteout",)
                continue
            content: object = None
            if stat.S_ISREG(st.st_mode):
                content = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(path)
            found[rel] = (
                st.st_mode,
                st.st_uid,
                st.st_gid,
                st.st_mtime_ns,
                st.st_nlink if not stat.S_ISDIR(st.st_mode) else 0,
                st.st_rdev,
                content,
                sorted(xattrs.items()),
            )
    return found


def scribble(root: str) -> None:
    """Changes of every kind a step makes, through the overlay mount at `root`."""
    r = Path(root)
    (r / "app/sub").mkdir(parents=True)
    (r / "app/sub/a.txt").write_text("a\n")
    os.chown(r / "app/sub/a.txt", 1000, 1001)
    os.chmod(r / "app/sub/a.txt", 0o4755)
    os.link(r / "app/sub/a.txt", r / "app/hard")
    os.symlink("sub/a.txt", r / "app/link")
    os.setxattr(r / "app/sub", "user.note", b"kept")
    os.mkfifo(r / "app/fifo")
    os.remove(r / "bin/ls")  # a whiteout
    (r / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")  # a copy-up
    # An opaque directory: removed and made again over a lower one.
    for entry in os.listdir(r / "usr/sbin"):
        os.remove(r / "usr/sbin" / entry)
    os.rmdir(r / "usr/sbin")
    (r / "usr/sbin").mkdir()
    (r / "usr/sbin/only").write_text("only\n")
    # What the runtime leaves: empty bind-mount targets, and a socket.
    for name in ("hosts", "hostname", "resolv.conf"):
        (r / "etc" / name).unlink(missing_ok=True)
        (r / "etc" / name).touch()
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(r / "app/sock"))
    sock.close()


@pytest.mark.parametrize("epoch", [None, 1_000_000_000])
def test_step_snapshot_equals_extracted_tar(
    service: ImageService, tmp_path: Path, epoch: int | None
) -> None:
    parent = base_chain(service)
    with service.lease() as held, mounted_snapshot(service, parent, writable=True) as (key, root):
        scribble(root)
        layer = store_layer(service, key, parent, held, epoch, mounted_at=root)
        assert layer is not None
        assert not service.snapshotter().exists(key)  # kept as the layer, not copied
    snapshots = service.snapshotter()
    assert layer.chain == chain_id([ChainID(parent), layer.diff_id])
    assert layer.media_type == UNCOMPRESSED_LAYER
    blob = service.content().read(layer.blob.digest)
    assert layer.diff_id == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert snapshots.stat(layer.chain).parent == parent

    # Extract the stored tar on the same parent, as a pull of the image would.
    extracted = Path(tempfile.mkdtemp(dir=tmp_path))
    with service.content().open(layer.blob.digest) as f:
        result = extract_layer(f, extracted, lowers=snapshots.parent_paths(layer.chain))
    assert result.diff_id == layer.diff_id
    committed = snapshots.fs_path(layer.chain)
    got, want = tree(committed), tree(extracted)
    assert got == want
    assert "etc/hosts" not in got and "app/sock" not in got
    assert got["bin/ls"] == ("whiteout",)
    assert got["app/sub/a.txt"][0] == stat.S_IFREG | 0o4755
    assert ("user.note", b"kept") in got["app/sub"][7]  # type: ignore[operator]
    assert os.getxattr(committed / "usr/sbin", whiteouts.OPAQUE_XATTR) == b"y"
    if epoch is not None:
        assert all(v[3] <= epoch * 10**9 for v in got.values() if len(v) > 1)  # type: ignore[operator]
    assert snapshots.usage(layer.chain).size > 0
    # Nothing of the overlay's own bookkeeping is left, at the root either.
    assert os.listxattr(committed) == os.listxattr(extracted) == []


def test_unchanged_step_makes_no_layer(service: ImageService) -> None:
    parent = base_chain(service)
    with service.lease() as held, mounted_snapshot(service, parent, writable=True) as (key, root):
        (Path(root) / "etc/hosts").unlink(missing_ok=True)
        (Path(root) / "etc/hosts").touch()
        assert store_layer(service, key, parent, held, None, mounted_at=root) is None
    assert [i.key for i in service.snapshotter().list()] == [parent]


def test_same_layer_twice_keeps_the_first_snapshot(service: ImageService) -> None:
    parent = base_chain(service)
    layers = []
    with service.lease() as held:
        for _ in range(2):
            with mounted_snapshot(service, parent, writable=True) as (key, root):
                (Path(root) / "f").write_text("same\n")
                os.utime(Path(root) / "f", (5, 5))
                os.utime(root, (7, 7))
                layer = store_layer(service, key, parent, held, None, mounted_at=root)
                assert layer is not None
                layers.append(layer)
        assert layers[0].chain == layers[1].chain
        # Only the base and the one layer: the second step's snapshot went with its block.
        assert sorted(i.key for i in service.snapshotter().list()) == sorted(
            [parent, layers[0].chain]
        )


def test_commit_layer_refuses_a_snapshot_on_another_parent(service: ImageService) -> None:
    parent = base_chain(service)
    with service.lease() as held, mounted_snapshot(service, parent, writable=True) as (key, root):
        unmount(root)
        other = DiffID("sha256:" + "0" * 64)
        with pytest.raises(errors.InvalidParameter):
            service.commit_layer(key, None, other, held)
        chain, size = service.commit_layer(key, ChainID(parent), other, held)
        assert chain == chain_id([ChainID(parent), other]) and size == 0
