"""Raw HTTP tests of the OCI Distribution API, against dockling's registry and, for
comparison, Debian's docker-registry (CNCF Distribution 2.8).  Where Distribution departs
from the spec the test says so and asserts what each server does."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers.registry_server import (
    DISTRIBUTION_BIN,
    Registry,
    start_distribution_registry,
    start_dockling_registry,
    stop_registry,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture(scope="module", params=["dockling", "distribution"])
def registry(request: pytest.FixtureRequest) -> Iterator[Registry]:
    if request.param == "distribution":
        if not os.path.exists(DISTRIBUTION_BIN):
            pytest.fail("docker-registry is not installed (apt-get install docker-registry)")
        reg = start_distribution_registry()
    else:
        reg = start_dockling_registry()
    try:
        yield reg
    finally:
        stop_registry(reg)


def repo() -> str:
    return f"test/r{uuid.uuid4().hex[:12]}"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image(
    reg: Registry, name: str, *, layer: bytes = b"layer", config: bytes = b"{}"
) -> dict[str, Any]:
    """Push a config and a layer; return a manifest referencing them (not pushed)."""
    cfg, lay = reg.push_blob(name, config), reg.push_blob(name, layer)
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": cfg,
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": lay,
                "size": len(layer),
            }
        ],
    }


def path_of(location: str) -> str:
    return "/" + location.split("/", 3)[3] if location.startswith("http") else location


def test_base(registry: Registry) -> None:
    r = registry.request("GET", "/v2/")
    assert r.status == 200
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"


def test_monolithic_upload_get_head_range(registry: Registry) -> None:
    name, data = repo(), os.urandom(100_000)
    digest = sha(data)
    r = registry.request("POST", f"/v2/{name}/blobs/uploads/?digest={digest}", data)
    if registry.kind == "distribution":
        # Distribution 2.8 ignores a monolithic POST's body and opens a session (202), which
        # the spec allows; clients then PUT.
        assert r.status == 202
        loc = path_of(r.headers["location"])
        r = registry.request("PUT", f"{loc}&digest={digest}", data)
    assert r.status == 201
    assert r.headers["docker-content-digest"] == digest
    r = registry.request("GET", f"/v2/{name}/blobs/{digest}")
    assert (r.status, r.body, r.headers["docker-content-digest"]) == (200, data, digest)
    r = registry.request("HEAD", f"/v2/{name}/blobs/{digest}")
    assert (r.status, r.headers["content-length"], r.body) == (200, str(len(data)), b"")
    r = registry.request("GET", f"/v2/{name}/blobs/{digest}", headers={"Range": "bytes=10-19"})
    assert (r.status, r.body) == (206, data[10:20])
    assert r.headers["content-range"] == f"bytes 10-19/{len(data)}"
    r = registry.request("GET", f"/v2/{name}/blobs/{digest}", headers={"Range": "bytes=-5"})
    assert (r.status, r.body) == (206, data[-5:])
    if registry.kind == "distribution":
        # Distribution 2.8 answers an unsatisfiable range with 416 but keeps the blob's
        # Content-Length on the short error body, so an HTTP client fails to read it.
        return
    r = registry.request("GET", f"/v2/{name}/blobs/{digest}", headers={"Range": "bytes=200000-"})
    assert (r.status, r.headers["content-range"]) == (416, f"bytes */{len(data)}")


def test_post_then_put(registry: Registry) -> None:
    name, data = repo(), b"post then put"
    r = registry.request("POST", f"/v2/{name}/blobs/uploads/")
    assert r.status == 202
    assert r.headers["docker-upload-uuid"]
    loc = path_of(r.headers["location"])
    r = registry.request("PUT", f"{loc}{'&' if '?' in loc else '?'}digest={sha(data)}", data)
    assert r.status == 201
    assert registry.request("GET", f"/v2/{name}/blobs/{sha(data)}").body == data


def test_chunked_upload_with_content_range(registry: Registry) -> None:
    name = repo()
    parts = [os.urandom(70_000), os.urandom(50_000), os.urandom(1)]
    r = registry.request("POST", f"/v2/{name}/blobs/uploads/")
    loc = path_of(r.headers["location"])
    offset = 0
    for part in parts:
        r = registry.request(
            "PATCH",
            loc,
            part,
            {
                "Content-Range": f"{offset}-{offset + len(part) - 1}",
                "Content-Type": "application/octet-stream",
            },
        )
        assert r.status == 202, r.body
        offset += len(part)
        assert r.headers["range"] == f"0-{offset - 1}"
        loc = path_of(r.headers["location"])
    # Out of order: a chunk that does not start where the upload ends.
    r = registry.request("PATCH", loc, b"xx", {"Content-Range": f"{offset + 5}-{offset + 6}"})
    if registry.kind == "distribution":
        # Distribution 2.8 ignores Content-Range and appends the chunk: a spec violation
        # (out-of-order chunks MUST get 416).  Start a new upload for the rest of the test.
        assert r.status == 202
        r = registry.request("POST", f"/v2/{name}/blobs/uploads/")
        loc = path_of(r.headers["location"])
        r = registry.request("PATCH", loc, b"".join(parts), {"Content-Range": f"0-{offset - 1}"})
        loc = path_of(r.headers["location"])
    else:
        assert r.status == 416
        assert r.headers["range"] == f"0-{offset - 1}"
    r = registry.request("GET", loc)
    assert r.status == 204
    assert r.headers["range"] == f"0-{offset - 1}"
    data = b"".join(parts)
    r = registry.request("PUT", f"{loc}{'&' if '?' in loc else '?'}digest={sha(data)}")
    assert r.status == 201
    assert registry.request("GET", f"/v2/{name}/blobs/{sha(data)}").body == data


def test_cancel_upload_and_unknown_session(registry: Registry) -> None:
    name = repo()
    r = registry.request("POST", f"/v2/{name}/blobs/uploads/")
    loc = path_of(r.headers["location"])
    loc = path_of(registry.request("PATCH", loc, b"abc").headers["location"])
    r = registry.request("DELETE", loc)
    assert r.status == 204
    r = registry.request("GET", loc)
    assert (r.status, r.error_codes) == (404, ["BLOB_UPLOAD_UNKNOWN"])
    r = registry.request("PATCH", f"/v2/{name}/blobs/uploads/{uuid.uuid4()}", b"x")
    # Distribution 2.8 answers a session id it never issued with BLOB_UPLOAD_INVALID.
    expected = "BLOB_UPLOAD_INVALID" if registry.kind == "distribution" else "BLOB_UPLOAD_UNKNOWN"
    assert (r.status, r.error_codes) == (404, [expected])


def test_digest_mismatch_stores_nothing(registry: Registry) -> None:
    name, data = repo(), b"the bytes"
    wrong = sha(b"other bytes")
    r = registry.request("POST", f"/v2/{name}/blobs/uploads/")
    loc = path_of(r.headers["location"])
    r = registry.request("PUT", f"{loc}{'&' if '?' in loc else '?'}digest={wrong}", data)
    assert (r.status, r.error_codes) == (400, ["DIGEST_INVALID"])
    if registry.kind == "dockling":
        r = registry.request("POST", f"/v2/{name}/blobs/uploads/?digest={wrong}", data)
        assert (r.status, r.error_codes) == (400, ["DIGEST_INVALID"])
    for digest in (wrong, sha(data)):
        assert registry.request("HEAD", f"/v2/{name}/blobs/{digest}").status == 404


def test_cross_repository_mount(registry: Registry) -> None:
    src, dst, data = repo(), repo(), b"mount me"
    digest = registry.push_blob(src, data)
    r = registry.request("POST", f"/v2/{dst}/blobs/uploads/?mount={digest}&from={src}")
    assert r.status == 201
    assert r.headers["docker-content-digest"] == digest
    assert registry.request("GET", f"/v2/{dst}/blobs/{digest}").body == data
    # Unknown blob: the spec's fallback is an ordinary upload session.
    r = registry.request("POST", f"/v2/{dst}/blobs/uploads/?mount={sha(b'nope')}&from={src}")
    assert r.status == 202
    assert "location" in r.headers


def test_manifest_put_get_head_by_tag_and_digest(registry: Registry) -> None:
    name = repo()
    manifest = image(registry, name)
    body = json.dumps(manifest).encode()
    r = registry.push_manifest(name, "v1", manifest)
    assert r.status == 201
    assert r.headers["docker-content-digest"] == sha(body)
    for ref in ("v1", sha(body)):
        r = registry.request("GET", f"/v2/{name}/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
        assert (r.status, r.body) == (200, body)
        assert r.headers["content-type"] == OCI_MANIFEST
        assert r.headers["docker-content-digest"] == sha(body)
        r = registry.request(
            "HEAD", f"/v2/{name}/manifests/{ref}", headers={"Accept": OCI_MANIFEST}
        )
        assert (r.status, r.headers["content-length"]) == (200, str(len(body)))


def test_docker_schema2_and_index(registry: Registry) -> None:
    name = repo()
    manifest = image(registry, name)
    manifest["mediaType"] = DOCKER_MANIFEST
    manifest["config"]["mediaType"] = "application/vnd.docker.container.image.v1+json"
    manifest["layers"][0]["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    r = registry.push_manifest(name, "docker", manifest)
    assert r.status == 201
    child = r.headers["docker-content-digest"]
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": DOCKER_MANIFEST,
                "digest": child,
                "size": len(json.dumps(manifest)),
                "platform": {"os": "linux", "architecture": "amd64"},
            }
        ],
    }
    assert registry.push_manifest(name, "multi", index).status == 201
    r = registry.request("GET", f"/v2/{name}/manifests/multi", headers={"Accept": OCI_INDEX})
    assert (r.status, r.headers["content-type"]) == (200, OCI_INDEX)


def test_manifest_errors(registry: Registry) -> None:
    name = repo()
    manifest = image(registry, name)
    missing = dict(
        manifest,
        layers=[
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": sha(b"absent"),
                "size": 6,
            }
        ],
    )
    r = registry.push_manifest(name, "missing", missing)
    assert (r.status, r.error_codes) == (400, ["MANIFEST_BLOB_UNKNOWN"])
    r = registry.request(
        "PUT", f"/v2/{name}/manifests/bad", b"{not json", {"Content-Type": OCI_MANIFEST}
    )
    assert (r.status, r.error_codes) == (400, ["MANIFEST_INVALID"])
    wrong = sha(b"something else")
    r = registry.request(
        "PUT",
        f"/v2/{name}/manifests/{wrong}",
        json.dumps(manifest).encode(),
        {"Content-Type": OCI_MANIFEST},
    )
    assert r.status == 400
    assert r.error_codes == ["DIGEST_INVALID"]
    r = registry.request("GET", f"/v2/{name}/manifests/missing")
    assert (r.status, r.error_codes) == (404, ["MANIFEST_UNKNOWN"])
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha(b"no such manifest"), "size": 3}],
    }
    r = registry.push_manifest(name, "index", index)
    assert r.status == 400
    assert r.error_codes == ["MANIFEST_BLOB_UNKNOWN"]
    for ref in ("missing", "bad", "index"):
        assert registry.request("GET", f"/v2/{name}/manifests/{ref}").status == 404


def test_manifest_too_large(registry: Registry) -> None:
    name = repo()
    manifest = image(registry, name)
    manifest["annotations"] = {"pad": "x" * (4 * 1024 * 1024)}
    r = registry.push_manifest(name, "big", manifest)
    if registry.kind == "distribution":
        # Distribution 2.8 reads at most 4 MiB and then fails to parse the truncated JSON.
        assert r.status == 400
    else:
        assert (r.status, r.error_codes) == (413, ["SIZE_INVALID"])
    assert registry.request("GET", f"/v2/{name}/manifests/big").status == 404


def test_tags_list_pagination(registry: Registry) -> None:
    name = repo()
    manifest = image(registry, name)
    tags = ["a", "b", "c", "d", "e"]
    for tag in reversed(tags):
        assert registry.push_manifest(name, tag, manifest).status == 201
    r = registry.request("GET", f"/v2/{name}/tags/list")
    if registry.kind == "distribution":
        # Distribution 2.8 lists tags in directory order without `n`; the spec asks for
        # lexical order.
        # Its `n`/`last` pages are cut from that unsorted list, so they are not compared.
        assert sorted(r.json()["tags"]) == tags
        return
    else:
        assert r.json() == {"name": name, "tags": tags}
    r = registry.request("GET", f"/v2/{name}/tags/list?n=2")
    assert r.json()["tags"] == ["a", "b"]
    assert 'rel="next"' in r.headers["link"]
    assert "last=b" in r.headers["link"]
    r = registry.request("GET", f"/v2/{name}/tags/list?n=2&last=b")
    assert r.json()["tags"] == ["c", "d"]
    r = registry.request("GET", f"/v2/{name}/tags/list?n=2&last=d")
    assert r.json()["tags"] == ["e"]
    assert "link" not in r.headers
    r = registry.request("GET", f"/v2/{repo()}/tags/list")
    assert (r.status, r.error_codes) == (404, ["NAME_UNKNOWN"])


def test_catalog_pagination(registry: Registry) -> None:
    names = sorted(repo() for _ in range(3))
    for name in names:
        registry.push_manifest(name, "latest", image(registry, name))
    everything = registry.request("GET", "/v2/_catalog").json()["repositories"]
    assert set(names) <= set(everything)
    assert everything == sorted(everything)
    r = registry.request("GET", "/v2/_catalog?n=1")
    assert len(r.json()["repositories"]) == 1
    assert 'rel="next"' in r.headers["link"]
    seen: list[str] = []
    path = "/v2/_catalog?n=2"
    while True:
        r = registry.request("GET", path)
        seen += r.json()["repositories"]
        if "link" not in r.headers:
            break
        path = r.headers["link"].split(">")[0].lstrip("<")
    assert seen == everything


def test_deletes(registry: Registry) -> None:
    name = repo()
    manifest = image(registry, name, layer=b"delete me")
    digest = registry.push_manifest(name, "gone", manifest).headers["docker-content-digest"]
    r = registry.request("DELETE", f"/v2/{name}/manifests/{digest}")
    assert r.status == 202
    assert registry.request("GET", f"/v2/{name}/manifests/{digest}").status == 404
    assert registry.request("GET", f"/v2/{name}/manifests/gone").status == 404
    r = registry.request("DELETE", f"/v2/{name}/manifests/{digest}")
    assert (r.status, r.error_codes) == (404, ["MANIFEST_UNKNOWN"])
    layer = manifest["layers"][0]["digest"]
    assert registry.request("DELETE", f"/v2/{name}/blobs/{layer}").status == 202
    r = registry.request("GET", f"/v2/{name}/blobs/{layer}")
    assert (r.status, r.error_codes) == (404, ["BLOB_UNKNOWN"])
    r = registry.request("DELETE", f"/v2/{name}/blobs/{layer}")
    assert (r.status, r.error_codes) == (404, ["BLOB_UNKNOWN"])


def test_name_and_digest_errors(registry: Registry) -> None:
    r = registry.request("GET", f"/v2/{repo()}/blobs/{sha(b'unknown')}")
    assert (r.status, r.error_codes) == (404, ["BLOB_UNKNOWN"])
    r = registry.request("GET", "/v2/Bad_Name/tags/list")
    if registry.kind == "distribution":
        # Distribution's router does not match an invalid name: a bare 404, no error code.
        assert r.status == 404
    else:
        assert (r.status, r.error_codes) == (400, ["NAME_INVALID"])
    r = registry.request("GET", f"/v2/{repo()}/blobs/sha256:xyz")
    assert (r.status, r.error_codes) == (400, ["DIGEST_INVALID"])


def test_referrers(registry: Registry) -> None:
    name = repo()
    subject_manifest = image(registry, name)
    subject = registry.push_manifest(name, "v1", subject_manifest).headers["docker-content-digest"]
    empty = registry.push_blob(name, b"{}")
    sig = registry.push_blob(name, b"signature")
    artifact = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.signature",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": sig, "size": 9}],
        "subject": {
            "mediaType": OCI_MANIFEST,
            "digest": subject,
            "size": len(json.dumps(subject_manifest)),
        },
        "annotations": {"org.example": "yes"},
    }
    r = registry.push_manifest(name, sha(json.dumps(artifact).encode()), artifact)
    assert r.status == 201
    r = registry.request("GET", f"/v2/{name}/referrers/{subject}")
    if registry.kind == "distribution":
        # Distribution 2.8 predates OCI 1.1: no referrers API and no OCI-Subject header.
        assert r.status == 404
        return
    assert r.headers["content-type"] == OCI_INDEX
    index = r.json()
    assert index["mediaType"] == OCI_INDEX
    [desc] = index["manifests"]
    assert desc["digest"] == sha(json.dumps(artifact).encode())
    assert desc["artifactType"] == "application/vnd.example.signature"
    assert desc["annotations"] == {"org.example": "yes"}
    r = registry.request("GET", f"/v2/{name}/referrers/{subject}?artifactType=application/other")
    assert r.json()["manifests"] == []
    assert r.headers["oci-filters-applied"] == "artifactType"
    r = registry.request("GET", f"/v2/{name}/referrers/{sha(b'nothing')}")
    assert (r.status, r.json()["manifests"]) == (200, [])
    r = registry.request("GET", f"/v2/{name}/referrers/sha256:bad")
    assert (r.status, r.error_codes) == (400, ["DIGEST_INVALID"])
    # Deleting the artifact removes it from the list.
    registry.request("DELETE", f"/v2/{name}/manifests/{desc['digest']}")
    assert registry.request("GET", f"/v2/{name}/referrers/{subject}").json()["manifests"] == []


def test_oci_subject_header(registry: Registry) -> None:
    name = repo()
    base = image(registry, name)
    subject = registry.push_manifest(name, "v1", base).headers["docker-content-digest"]
    artifact = dict(
        image(registry, name, layer=b"sbom"),
        subject={"mediaType": OCI_MANIFEST, "digest": subject, "size": 1},
    )
    r = registry.push_manifest(name, "sbom", artifact)
    assert r.status == 201
    if registry.kind == "dockling":
        assert r.headers["oci-subject"] == subject
