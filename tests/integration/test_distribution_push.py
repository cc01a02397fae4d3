"""Push to a real docker-registry; skopeo inspects and copies back with the same digests."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from dockling.distribution.progress import Progress
from dockling.distribution.service import DistributionService
from dockling.distribution.settings import RegistrySettings
from dockling.images.store import ImageService
from tests.helpers.daemon import CACHE
from tests.helpers.registry import FaultProxy, Registry, skopeo_inspect, start_registry

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    reg = start_registry()
    yield reg
    reg.stop()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[DistributionService]:
    images = ImageService(tmp_path / "data")
    with closing(images):
        with open(CACHE / "busybox-rootfs.tar", "rb") as f:
            images.import_tarball(f, reference="busybox:latest")
        yield DistributionService(images, RegistrySettings())


def test_push_then_skopeo_sees_same_digest(
    service: DistributionService, registry: Registry, tmp_path: Path
) -> None:
    target = f"{registry.netloc}/pushed/busybox:1"
    service.images.tag("busybox", target)
    events: list[Progress] = []
    result = service.push(target, sink=events.append)
    assert skopeo_inspect(target)["Digest"] == result.digest
    assert events[0].status == f"The push refers to repository [{registry.netloc}/pushed/busybox]"
    assert events[-1].status == f"1: digest: {result.digest} size: {result.size}"
    assert any(e.status == "Pushed" for e in events)
    image = service.images.get(target)
    assert f"{registry.netloc}/pushed/busybox@{result.digest}" in image.repo_digests
    out = tmp_path / "copy"
    subprocess.run(
        ["skopeo", "copy", "--src-tls-verify=false", f"docker://{target}", f"dir:{out}"],
        check=True,
        capture_output=True,
    )
    raw = (out / "manifest.json").read_bytes()
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == result.digest
    assert json.loads(raw)["config"]["digest"] == image.id
    # Pushed again: every blob is already there.
    events.clear()
    again = service.push(target, sink=events.append)
    assert again.digest == result.digest
    assert any(e.status == "Layer already exists" for e in events)
    assert not any(e.status == "Pushed" for e in events)


def test_cross_repository_mount_and_chunked_upload(
    service: DistributionService, registry: Registry
) -> None:
    first = f"{registry.netloc}/mount/src:latest"
    service.images.tag("busybox", first)
    service.push(first)
    second = f"{registry.netloc}/mount/dst:latest"
    service.images.tag("busybox", second)
    proxy = FaultProxy(registry.netloc)
    try:
        via = f"{proxy.netloc}/mount/dst2:latest"
        service.images.tag("busybox", via)
        events: list[Progress] = []
        service.push(second, sink=events.append)
        assert any(e.status == "Mounted from mount/src" for e in events)
        # Chunked: small chunks force several PATCH requests.
        service.settings = RegistrySettings(push_chunk_size=256 * 1024)
        result = service.push(via)
        patches = [r for r in proxy.log.requests if r[0] == "PATCH"]
        assert len(patches) > 2
        assert skopeo_inspect(f"{registry.netloc}/mount/dst2:latest")["Digest"] == result.digest
        layer = skopeo_inspect(f"{registry.netloc}/mount/dst2:latest")["Layers"][0]
        data = (CACHE / "busybox-rootfs.tar").read_bytes()
        assert layer == "sha256:" + hashlib.sha256(data).hexdigest()
    finally:
        proxy.close()
