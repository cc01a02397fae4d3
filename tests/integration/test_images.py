"""The image service: docker import, tag, rmi, inspect, listing (real overlay, needs root)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
import zstandard

from dockling import errors
from dockling.images.store import ImageService, summary
from dockling.mount import mount_all, unmount
from tests.helpers.daemon import CACHE
from tests.helpers.mounts import no_mounts_left

pytestmark = pytest.mark.root

BUSYBOX = CACHE / "busybox-rootfs.tar"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ImageService]:
    svc = ImageService(tmp_path / "data")
    with closing(svc), no_mounts_left(tmp_path):
        yield svc


def no_user(image_id: str) -> str | None:
    return None


def import_busybox(svc: ImageService, ref: str | None, **kw: object) -> str:
    with open(BUSYBOX, "rb") as f:
        return svc.import_tarball(f, reference=ref, **kw).id  # type: ignore[arg-type]


def blobs(svc: ImageService) -> set[str]:
    return set(svc.content().list())


def test_import_busybox(service: ImageService, tmp_path: Path) -> None:
    image = service.get(import_busybox(service, "busybox", changes=['CMD ["sh"]', "ENV A=1"]))
    raw = service.content().read(image.id)
    assert image.id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert json.loads(raw) == image.config
    diff_id = "sha256:" + hashlib.sha256(BUSYBOX.read_bytes()).hexdigest()
    assert image.config["rootfs"] == {"type": "layers", "diff_ids": [diff_id]}
    assert image.config["history"][0]["comment"] == "Imported from -"
    assert image.runtime_config == {"Cmd": ["sh"], "Env": ["A=1"]}
    assert image.top_layer == diff_id
    assert image.repo_tags == ("busybox:latest",)
    assert image.size > 1_000_000
    # The tarball is kept as the layer blob, next to the config blob.
    layer_blob = "sha256:" + hashlib.sha256(BUSYBOX.read_bytes()).hexdigest()
    assert blobs(service) == {image.id, layer_blob}
    assert service.get("busybox:latest") == image
    assert service.get("docker.io/library/busybox") == image
    assert service.get(image.id[7:12]) == image
    assert service.get("sha256:" + image.id[7:15]) == image
    assert service.get(image.id[7:]) == image
    body = service.inspect("busybox")
    assert body["Id"] == image.id and body["RepoTags"] == ["busybox:latest"]
    assert body["Config"]["Cmd"] == ["sh"] and body["Config"]["Entrypoint"] is None
    assert body["RootFS"] == {"Type": "layers", "Layers": [diff_id]}
    assert os.path.isdir(body["GraphDriver"]["Data"]["UpperDir"])
    assert body["GraphDriver"]["Name"] == "overlay2"
    entry = summary(image)
    assert entry["Id"] == image.id and entry["RepoTags"] == ["busybox:latest"]
    assert abs(entry["Created"] - time.time()) < 60
    with pytest.raises(errors.ImageNotFound, match="No such image: nosuch:latest"):
        service.get("nosuch")
    with pytest.raises(errors.InvalidParameter, match="must be lowercase"):
        service.get("BusyBox")


def test_containers_share_the_layer_and_stay_isolated(
    service: ImageService, tmp_path: Path
) -> None:
    first = service.get(import_busybox(service, "a"))
    second = service.get(import_busybox(service, "b", message="again"))
    assert first.id != second.id
    assert first.top_layer == second.top_layer is not None
    snaps = service.snapshotter()
    assert [i.key for i in snaps.list()] == [first.top_layer]
    roots = []
    for name in ("c1", "c2"):
        mounts = snaps.prepare(name, first.top_layer)
        root = tmp_path / name
        root.mkdir()
        mount_all(mounts, root)
        roots.append(root)
    try:
        assert (roots[0] / "bin/busybox").is_file()
        (roots[0] / "etc/only-c1").write_text("x")
        (roots[0] / "bin/busybox").unlink()
        assert not (roots[1] / "etc/only-c1").exists()
        assert (roots[1] / "bin/busybox").is_file()
    finally:
        for root in roots:
            unmount(root)
    snaps.remove("c1")
    snaps.remove("c2")
    assert (snaps.fs_path(first.top_layer) / "bin/busybox").is_file()


def test_gzip_import_has_the_same_diff_id(service: ImageService) -> None:
    data = gzip.compress(BUSYBOX.read_bytes(), compresslevel=1)
    image = service.import_tarball(io.BytesIO(data), reference="gz:1")
    plain = service.get(import_busybox(service, "plain:1"))
    assert image.config["rootfs"] == plain.config["rootfs"]
    assert "sha256:" + hashlib.sha256(data).hexdigest() in blobs(service)


def test_zstd_import_has_the_same_diff_id(service: ImageService) -> None:
    data = zstandard.ZstdCompressor(level=3).compress(BUSYBOX.read_bytes())
    image = service.import_tarball(io.BytesIO(data), reference="zst:1")
    plain = service.get(import_busybox(service, "plain:1"))
    assert image.config["rootfs"] == plain.config["rootfs"]
    assert "sha256:" + hashlib.sha256(data).hexdigest() in blobs(service)
    assert (service.snapshotter().fs_path(image.top_layer or "") / "bin/busybox").is_file()


def test_tag_and_remove_semantics(service: ImageService) -> None:
    image_id = import_busybox(service, "busybox")
    short = image_id[7:19]
    service.tag("busybox", "localhost:5000/bb:v1")
    service.tag(image_id[7:14], "other")
    assert service.get(image_id).repo_tags == (
        "busybox:latest",
        "localhost:5000/bb:v1",
        "other:latest",
    )
    with pytest.raises(errors.InvalidParameter):
        service.tag("busybox", "bb@sha256:" + "a" * 64)
    with pytest.raises(errors.ImageNotFound):
        service.tag("missing", "x")

    with pytest.raises(errors.Conflict) as conflict:
        service.remove(image_id, in_use_by=no_user)
    assert str(conflict.value) == (
        f"conflict: unable to delete {short} (must be forced) - "
        "image is referenced in multiple repositories"
    )
    # Removing one of several tags only untags.
    assert service.remove("other", in_use_by=no_user) == [{"Untagged": "other:latest"}]
    assert service.remove("localhost:5000/bb:v1", in_use_by=no_user) == [
        {"Untagged": "localhost:5000/bb:v1"}
    ]

    ctr = "f" * 64
    with pytest.raises(errors.ImageInUse) as in_use:
        service.remove("busybox", in_use_by=lambda i: ctr)
    assert str(in_use.value) == (
        f'conflict: unable to remove repository reference "busybox" (must force) - '
        f"container {ctr[:12]} is using its referenced image {short}"
    )
    with pytest.raises(errors.ImageInUse) as in_use:
        service.remove(image_id, in_use_by=lambda i: ctr, force=True)
    assert str(in_use.value) == (
        f"conflict: unable to delete {short} (cannot be forced) - "
        f"image is being used by running container {ctr[:12]}"
    )
    with pytest.raises(errors.ImageInUse, match="being used by stopped container"):
        service.remove(image_id, in_use_by=lambda i: ctr, is_running=lambda c: False)

    layer = service.get(image_id).top_layer
    records = service.remove("busybox", in_use_by=no_user)
    assert records == [{"Untagged": "busybox:latest"}, {"Deleted": image_id}, {"Deleted": layer}]
    assert service.list() == []
    assert blobs(service) == set()
    assert service.snapshotter().list() == []
    with pytest.raises(errors.ImageNotFound):
        service.remove("busybox", in_use_by=no_user)


def test_force_remove_keeps_layers_a_container_uses(service: ImageService) -> None:
    image = service.get(import_busybox(service, "busybox"))
    assert image.top_layer is not None
    snaps = service.snapshotter()
    snaps.prepare("ctr", image.top_layer)
    records = service.remove(
        image.id, force=True, in_use_by=lambda i: "c" * 64, is_running=lambda c: False
    )
    assert records == [{"Untagged": "busybox:latest"}, {"Deleted": image.id}]
    assert snaps.exists(image.top_layer)
    snaps.remove("ctr")
    assert service.collect_garbage() == [image.top_layer]
    assert snaps.list() == [] and blobs(service) == set()


def test_tag_moves_and_dangling_images(service: ImageService) -> None:
    old = import_busybox(service, "app:1")
    new = import_busybox(service, "app:1")
    assert service.get("app:1").id == new
    assert service.get(old).repo_tags == ()
    assert {i.id for i in service.list()} == {old, new}
    assert service.remove(old, in_use_by=no_user) == [{"Deleted": old}]


def test_interrupted_import_leaves_nothing(service: ImageService, tmp_path: Path) -> None:
    data = BUSYBOX.read_bytes()
    for broken in (data[: len(data) // 2], b"garbage" * 1000):
        with pytest.raises(errors.InvalidParameter):
            service.import_tarball(io.BytesIO(broken), reference="broken")
    assert service.list() == []
    assert blobs(service) == set()
    assert service.snapshotter().list() == []
    assert os.listdir(tmp_path / "data/content/ingest") == []
    # Leftovers of a crash (an unfinished ingest, an unreferenced blob and snapshot) are
    # collected when the service starts.
    (tmp_path / "data/content/ingest/x").mkdir()
    service.content().write_blob(b"orphan")
    service.snapshotter().prepare("extract-crashed", None)
    service.close()
    again = ImageService(tmp_path / "data")
    try:
        assert blobs(again) == set()
        assert again.snapshotter().list() == []
        assert os.listdir(tmp_path / "data/content/ingest") == []
    finally:
        again.close()


def test_bad_changes_are_refused_before_reading(service: ImageService) -> None:
    with pytest.raises(errors.InvalidParameter, match="run is not a valid change command"):
        service.import_tarball(io.BytesIO(b""), reference="x", changes=["RUN true"])
    image = service.import_tarball(
        io.BytesIO(BUSYBOX.read_bytes()),
        reference=None,
        changes=[
            "ENTRYPOINT /bin/sh",
            "EXPOSE 80 53/udp",
            'LABEL a=b "c d"=e',
            "USER nobody",
            'VOLUME ["/data"]',
            "WORKDIR /srv",
            "WORKDIR app",
            "STOPSIGNAL SIGINT",
        ],
        message="hello",
    )
    assert image.runtime_config == {
        "Entrypoint": ["/bin/sh", "-c", "/bin/sh"],
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
        "Labels": {"a": "b", "c d": "e"},
        "User": "nobody",
        "Volumes": {"/data": {}},
        "WorkingDir": "/srv/app",
        "StopSignal": "SIGINT",
    }
    assert image.config["comment"] == "hello" and image.repo_tags == ()


def test_listing_many_images_is_fast(service: ImageService) -> None:
    data = BUSYBOX.read_bytes()
    for n in range(50):
        service.import_tarball(io.BytesIO(data), reference=f"img{n}")
    start = time.perf_counter()
    images = service.list()
    entries = [summary(i) for i in images]
    elapsed = time.perf_counter() - start
    assert len(entries) == 50
    assert elapsed < 0.05, elapsed
    assert len(service.snapshotter().list()) == 1


def test_concurrent_imports_and_removals(service: ImageService) -> None:
    from concurrent.futures import ThreadPoolExecutor

    data = BUSYBOX.read_bytes()

    def work(n: int) -> None:
        image = service.import_tarball(io.BytesIO(data), reference=f"t{n}")
        if n % 2:
            service.remove(image.id, in_use_by=no_user)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(8)))
    assert sorted(t for i in service.list() for t in i.repo_tags) == [
        "t0:latest",
        "t2:latest",
        "t4:latest",
        "t6:latest",
    ]
    assert len(service.snapshotter().list()) == 1
