"""dockling's registry storage: resumable uploads after a disconnect and a restart, concurrent
pushes, read-only mode, and garbage collection (`dockling registry gc`)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.registry_server import (
    Registry,
    start_dockling_registry,
    stop_registry,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="dkreg-"))
    try:
        yield path
    finally:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def registry(root: Path) -> Iterator[Registry]:
    reg = start_dockling_registry(root)
    try:
        yield reg
    finally:
        stop_registry(reg)


def manifest_for(reg: Registry, name: str, layer: bytes) -> dict[str, Any]:
    cfg, lay = reg.push_blob(name, b"{}"), reg.push_blob(name, layer)
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": cfg,
            "size": 2,
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": lay,
                "size": len(layer),
            }
        ],
    }


def send_partial_patch(reg: Registry, location: str, data: bytes, declared: int) -> None:
    """PATCH announcing `declared` bytes, send only `data`, then drop the connection."""
    with socket.create_connection(("127.0.0.1", reg.port)) as s:
        head = (
            f"PATCH {location} HTTP/1.1\r\nHost: {reg.addr}\r\n"
            f"Content-Length: {declared}\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        s.sendall(head.encode() + data)


def wait_for_offset(reg: Registry, location: str, offset: int) -> None:
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if reg.request("GET", location).headers.get("range") == f"0-{offset - 1}":
            return
        time.sleep(0.05)
    raise AssertionError(f"upload never reached offset {offset}")


def test_disconnect_leaves_a_resumable_session(registry: Registry, root: Path) -> None:
    data = os.urandom(3 << 20)
    r = registry.request("POST", "/v2/resume/blobs/uploads/")
    loc = r.headers["location"]
    half = len(data) // 2
    send_partial_patch(registry, loc, data[:half], len(data))
    wait_for_offset(registry, loc, half)
    assert registry.request("HEAD", f"/v2/resume/blobs/{sha(data)}").status == 404
    # The server restarts: the session survives on disk.
    stop_registry(registry)
    registry2 = start_dockling_registry(root, port=registry.port)
    try:
        assert registry2.request("GET", loc).headers["range"] == f"0-{half - 1}"
        r = registry2.request(
            "PATCH", loc, data[half:], {"Content-Range": f"{half}-{len(data) - 1}"}
        )
        assert r.status == 202
        r = registry2.request("PUT", f"{loc}?digest={sha(data)}")
        assert r.status == 201
        assert registry2.request("GET", f"/v2/resume/blobs/{sha(data)}").body == data
    finally:
        stop_registry(registry2)


def test_concurrent_pushes_of_one_blob_and_tag(registry: Registry) -> None:
    data = os.urandom(1 << 20)
    with ThreadPoolExecutor(8) as pool:
        digests = list(pool.map(lambda i: registry.push_blob(f"c/r{i % 2}", data), range(8)))
    assert set(digests) == {sha(data)}
    manifest = manifest_for(registry, "c/r0", b"layer")
    with ThreadPoolExecutor(8) as pool:
        statuses = list(
            pool.map(lambda _: registry.push_manifest("c/r0", "t", manifest).status, range(8))
        )
    assert statuses == [201] * 8
    body = json.dumps(manifest).encode()
    assert registry.request("GET", "/v2/c/r0/manifests/t").body == body


def test_read_only(root: Path) -> None:
    reg = start_dockling_registry(root)
    try:
        manifest = manifest_for(reg, "ro/app", b"ro layer")
        assert reg.push_manifest("ro/app", "v1", manifest).status == 201
    finally:
        stop_registry(reg)
    reg = start_dockling_registry(root, read_only=True)
    try:
        assert reg.request("GET", "/v2/ro/app/manifests/v1").status == 200
        r = reg.request("POST", "/v2/ro/app/blobs/uploads/")
        assert (r.status, r.error_codes) == (405, ["UNSUPPORTED"])
        r = reg.request("DELETE", "/v2/ro/app/manifests/v1")
        assert (r.status, r.error_codes) == (405, ["UNSUPPORTED"])
    finally:
        stop_registry(reg)


def gc(root: Path, *flags: str) -> str:
    dockling = str(Path(sys.executable).parent / "dockling")
    result = subprocess.run(
        [dockling, "registry", "gc", "--root", str(root / "data"), *flags],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout


def test_gc_sweeps_unreferenced_blobs_and_untagged_manifests(root: Path) -> None:
    reg = start_dockling_registry(root)
    try:
        kept = manifest_for(reg, "gc/app", b"kept layer")
        assert reg.push_manifest("gc/app", "v1", kept).status == 201
        untagged = manifest_for(reg, "gc/app", b"untagged layer")
        untagged_digest = sha(json.dumps(untagged).encode())
        assert reg.push_manifest("gc/app", untagged_digest, untagged).status == 201
        orphan = reg.push_blob("gc/app", b"orphan blob")
    finally:
        stop_registry(reg)
    blobs = root / "data" / "content" / "blobs" / "sha256"
    before = set(os.listdir(blobs))
    out = gc(root, "--dry-run")
    assert f"would delete blob {orphan}" in out
    assert set(os.listdir(blobs)) == before
    gc(root)
    assert orphan.split(":")[1] not in os.listdir(blobs)
    assert untagged_digest.split(":")[1] in os.listdir(blobs)
    out = gc(root, "--delete-untagged")
    assert f"deleted manifest gc/app@{untagged_digest}" in out
    remaining = set(os.listdir(blobs))
    assert sha(b"untagged layer").split(":")[1] not in remaining
    assert sha(b"kept layer").split(":")[1] in remaining
    reg = start_dockling_registry(root)
    try:
        assert reg.request("GET", "/v2/gc/app/manifests/v1").status == 200
        assert reg.request("GET", f"/v2/gc/app/manifests/{untagged_digest}").status == 404
        layer = kept["layers"][0]["digest"]
        assert reg.request("GET", f"/v2/gc/app/blobs/{layer}").body == b"kept layer"
    finally:
        stop_registry(reg)
