"""Pull from a real docker-registry (images pushed by skopeo), through a fault proxy for
resume, corruption and Bearer tokens.  In process: DistributionService on a temp store.
"""

from __future__ import annotations

import http.client
import json
import os
import stat
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest

from dockling import errors
from dockling.distribution.auth import Credentials
from dockling.distribution.progress import Progress
from dockling.distribution.service import DistributionService
from dockling.distribution.settings import RegistrySettings
from dockling.images.store import ImageService
from tests.helpers.registry import (
    BuiltImage,
    FaultProxy,
    Registry,
    app_layer,
    build_oci_layout,
    busybox_layer,
    random_layer,
    skopeo_push,
    start_registry,
)

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    reg = start_registry()
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def two_layer(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> BuiltImage:
    image = build_oci_layout(
        tmp_path_factory.mktemp("oci"), [busybox_layer(), app_layer()], cmd=["cat", "/app/greeting"]
    )
    skopeo_push(image, f"{registry.netloc}/test/app:v1")
    return image


@pytest.fixture
def proxy(registry: Registry) -> Iterator[FaultProxy]:
    p = FaultProxy(registry.netloc)
    yield p
    p.close()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[DistributionService]:
    images = ImageService(tmp_path / "data")
    with closing(images):
        yield DistributionService(images, RegistrySettings())


def blob_gets(proxy: FaultProxy) -> list[tuple[str, str, str]]:
    return [r for r in proxy.log.requests if r[0] == "GET" and "/blobs/" in r[1]]


def test_pull_two_layers(
    service: DistributionService, registry: Registry, two_layer: BuiltImage
) -> None:
    events: list[Progress] = []
    result = service.pull(f"{registry.netloc}/test/app:v1", sink=events.append)
    image = result.image
    assert image.id == two_layer.config_digest
    assert result.digest == two_layer.manifest_digest
    assert image.repo_tags == (f"{registry.netloc}/test/app:v1",)
    assert image.repo_digests == (f"{registry.netloc}/test/app@{two_layer.manifest_digest}",)
    statuses = [(e.id, e.status) for e in events if e.current is None]
    for digest in two_layer.layer_digests:
        short = digest[7:19]
        assert (short, "Pulling fs layer") in statuses
        assert (short, "Verifying Checksum") in statuses
        assert (short, "Download complete") in statuses
        assert (short, "Pull complete") in statuses
    assert events[-2].status == f"Digest: {two_layer.manifest_digest}"
    assert events[-1].status == f"Status: Downloaded newer image for {registry.netloc}/test/app:v1"
    snaps = service.images.snapshotter()
    top = snaps.fs_path(image.top_layer or "")
    assert (top / "app" / "greeting").read_text() == "hello\n"
    assert os.stat(top / "app" / "greeting").st_ino == os.stat(top / "app" / "greeting-link").st_ino
    whiteout = os.lstat(top / "home")
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
    assert os.getxattr(top / "var" / "log", "trusted.overlay.opaque") == b"y"


def test_pull_again_is_up_to_date_and_fetches_nothing(
    service: DistributionService, registry: Registry, two_layer: BuiltImage, proxy: FaultProxy
) -> None:
    service.pull(f"{proxy.netloc}/test/app:v1")
    proxy.log.requests.clear()
    events: list[Progress] = []
    service.pull(f"{proxy.netloc}/test/app:v1", sink=events.append)
    assert blob_gets(proxy) == [("GET", f"/v2/test/app/blobs/{two_layer.config_digest}", "")] or (
        blob_gets(proxy) == []
    )
    assert {e.status for e in events if e.id == two_layer.layer_digests[0][7:19]} == {
        "Already exists"
    }
    assert events[-1].status.startswith("Status: Image is up to date for")


def test_shared_layer_is_not_fetched_again(
    service: DistributionService,
    registry: Registry,
    two_layer: BuiltImage,
    proxy: FaultProxy,
    tmp_path: Path,
) -> None:
    other = build_oci_layout(tmp_path / "other", [busybox_layer(), app_layer("other")])
    skopeo_push(other, f"{registry.netloc}/test/other:latest")
    service.pull(f"{proxy.netloc}/test/app:v1")
    proxy.log.requests.clear()
    image = service.pull(f"{proxy.netloc}/test/other").image
    fetched = {path.rsplit("/", 1)[-1] for _, path, _ in blob_gets(proxy)}
    assert two_layer.layer_digests[0] not in fetched
    assert other.layer_digests[1] in fetched
    top = service.images.snapshotter().fs_path(image.top_layer or "")
    assert (top / "app" / "greeting").read_text() == "other\n"


def test_interrupted_pull_resumes_with_range(
    service: DistributionService, registry: Registry, proxy: FaultProxy, tmp_path: Path
) -> None:
    big = build_oci_layout(tmp_path / "big", [random_layer(3 << 20)], compress=False)
    skopeo_push(big, f"{registry.netloc}/test/big:latest")
    layer = big.layer_digests[0]
    proxy.drop_blob[layer] = 1 << 20
    service.settings = replace(service.settings, max_download_attempts=1)
    with pytest.raises(errors.Unavailable, match=layer[7:19]):
        service.pull(f"{proxy.netloc}/test/big")
    with pytest.raises(errors.ImageNotFound):
        service.images.get(f"{proxy.netloc}/test/big")
    assert service.downloads.offset(layer) >= 1 << 20
    proxy.log.requests.clear()
    image = service.pull(f"{proxy.netloc}/test/big").image
    ranges = [r for _, path, r in blob_gets(proxy) if path.endswith(layer)]
    assert len(ranges) == 1 and ranges[0].startswith("bytes=") and ranges[0].endswith("-")
    assert int(ranges[0][6:-1]) >= 1 << 20
    assert image.id == big.config_digest
    assert service.images.content().exists(layer)


def test_retry_within_one_pull_uses_range(
    service: DistributionService, registry: Registry, proxy: FaultProxy, tmp_path: Path
) -> None:
    big = build_oci_layout(tmp_path / "big2", [random_layer(2 << 20, seed=7)], compress=False)
    skopeo_push(big, f"{registry.netloc}/test/big2:latest")
    layer = big.layer_digests[0]
    proxy.drop_blob[layer] = 300_000
    events: list[Progress] = []
    service.pull(f"{proxy.netloc}/test/big2", sink=events.append)
    ranges = [r for _, path, r in blob_gets(proxy) if path.endswith(layer)]
    assert ranges[0] == "" and ranges[1].startswith("bytes=") and len(ranges) == 2
    assert any(e.status.startswith("Retrying") for e in events)


def test_digest_mismatch_registers_nothing_and_refetches(
    service: DistributionService, registry: Registry, two_layer: BuiltImage, proxy: FaultProxy
) -> None:
    layer = two_layer.layer_digests[1]
    proxy.corrupt_blob.add(layer)
    with pytest.raises(errors.DataCorrupted, match=layer):
        service.pull(f"{proxy.netloc}/test/app:v1")
    assert service.images.list() == []
    assert not service.images.content().exists(layer)
    proxy.corrupt_blob.clear()
    proxy.log.requests.clear()
    service.pull(f"{proxy.netloc}/test/app:v1")
    assert any(path.endswith(layer) for _, path, _ in blob_gets(proxy))


def test_unknown_tag_and_repository(service: DistributionService, registry: Registry) -> None:
    with pytest.raises(errors.NotFound, match="manifest unknown"):
        service.pull(f"{registry.netloc}/test/app:nope")
    # docker-registry answers MANIFEST_UNKNOWN for an unknown repository too (as Docker shows).
    with pytest.raises(errors.NotFound, match=r"manifest for .*/no/such:latest not found"):
        service.pull(f"{registry.netloc}/no/such:latest")


def test_registry_down_is_a_clear_error(service: DistributionService) -> None:
    from tests.helpers.registry import free_port

    with pytest.raises(errors.Unavailable, match="connection refused"):
        service.pull(f"127.0.0.1:{free_port()}/x/y:latest")


def test_index_platform_selection(
    service: DistributionService, registry: Registry, tmp_path: Path
) -> None:
    amd = build_oci_layout(tmp_path / "amd", [busybox_layer(), app_layer("amd64")])
    arm = build_oci_layout(tmp_path / "arm", [busybox_layer(), app_layer("arm64")])
    skopeo_push(amd, f"{registry.netloc}/test/multi:amd")
    skopeo_push(arm, f"{registry.netloc}/test/multi:arm")
    entries = []
    for built, arch in ((amd, "amd64"), (arm, "arm64")):
        raw = (built.layout / "blobs" / "sha256" / built.manifest_digest[7:]).read_bytes()
        entries.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": built.manifest_digest,
                "size": len(raw),
                "platform": {"os": "linux", "architecture": arch},
            }
        )
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries,
        }
    ).encode()
    conn = http.client.HTTPConnection(registry.netloc)
    conn.request(
        "PUT",
        "/v2/test/multi/manifests/latest",
        body=index,
        headers={"Content-Type": "application/vnd.oci.image.index.v1+json"},
    )
    assert conn.getresponse().status == 201
    conn.close()
    result = service.pull(f"{registry.netloc}/test/multi", platform="linux/arm64")
    top = service.images.snapshotter().fs_path(result.image.top_layer or "")
    assert (top / "app" / "greeting").read_text() == "arm64\n"
    assert result.digest.startswith("sha256:") and result.digest != arm.manifest_digest
    with pytest.raises(errors.NotFound, match="no matching manifest for linux/s390x"):
        service.pull(f"{registry.netloc}/test/multi", platform="linux/s390x")


def test_basic_auth(service: DistributionService, tmp_path: Path) -> None:
    reg = start_registry(users={"alice": "s3cret"})
    try:
        image = build_oci_layout(tmp_path / "auth", [busybox_layer()])
        skopeo_push(image, f"{reg.netloc}/private/img:latest", creds="alice:s3cret")
        with pytest.raises(errors.Unauthorized, match="no basic auth credentials"):
            service.pull(f"{reg.netloc}/private/img")
        with pytest.raises(errors.Unauthorized):
            service.pull(f"{reg.netloc}/private/img", credentials=Credentials("alice", "wrong"))
        result = service.pull(
            f"{reg.netloc}/private/img", credentials=Credentials("alice", "s3cret")
        )
        assert result.image.id == image.config_digest
        assert service.login(reg.netloc, Credentials("alice", "s3cret")) == "Login Succeeded"
        with pytest.raises(errors.Unauthorized):
            service.login(reg.netloc, Credentials("alice", "nope"))
    finally:
        reg.stop()


def test_bearer_token_flow(
    service: DistributionService, registry: Registry, two_layer: BuiltImage, proxy: FaultProxy
) -> None:
    proxy.bearer = ("bob", "pw")
    with pytest.raises(errors.Unauthorized):
        service.pull(f"{proxy.netloc}/test/app:v1", credentials=Credentials("bob", "bad"))
    result = service.pull(f"{proxy.netloc}/test/app:v1", credentials=Credentials("bob", "pw"))
    assert result.image.id == two_layer.config_digest
    token_calls = [p for _, p, _ in proxy.log.requests if p.startswith("/token")]
    assert any("scope=repository%3Atest%2Fapp%3Apull" in p for p in token_calls)
    assert "service=test-registry" in token_calls[-1]
    assert service.login(proxy.netloc, Credentials("bob", "pw")) == "Login Succeeded"
    proxy.bearer_anonymous = True
    service.images.remove(result.image.id, force=True, in_use_by=lambda _i: None)
    assert service.pull(f"{proxy.netloc}/test/app:v1").image.id == two_layer.config_digest
