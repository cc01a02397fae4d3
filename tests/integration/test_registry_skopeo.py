"""skopeo (a real client, containers/image) copies images into and out of dockling's
registry, single and multi-arch, anonymous, with htpasswd auth and over TLS; digests survive
the round trip unchanged."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from tests.helpers.registry_server import (
    Registry,
    make_oci_layout,
    start_dockling_registry,
    stop_registry,
)


def skopeo(*args: str) -> str:
    if shutil.which("skopeo") is None:
        pytest.fail("skopeo is not installed (apt-get install skopeo)")
    result = subprocess.run(
        ["skopeo", *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def top_digest(layout: Path) -> str:
    return str(json.loads((layout / "index.json").read_text())["manifests"][0]["digest"])


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


def round_trip(reg: Registry, workdir: Path, *, multi_arch: bool, creds: list[str]) -> None:
    src, out = workdir / "src", workdir / "out"
    digest = make_oci_layout(src, multi_arch=multi_arch)
    tls = ["--dest-tls-verify=false"]
    flags = ["--all"] if multi_arch else []
    dest = f"docker://{reg.addr}/library/busybox:1.36"
    dest_creds = [f"--dest-creds={c}" for c in creds]
    src_creds = [f"--src-creds={c}" for c in creds]
    skopeo("copy", *flags, *tls, *dest_creds, f"oci:{src}:latest", dest)
    raw = skopeo("inspect", "--raw", "--tls-verify=false", *[f"--creds={c}" for c in creds], dest)
    assert json.loads(raw)["schemaVersion"] == 2
    skopeo("copy", *flags, "--src-tls-verify=false", *src_creds, dest, f"oci:{out}:latest")
    assert top_digest(out) == digest
    src_blobs = {p.name for p in (src / "blobs" / "sha256").iterdir()}
    out_blobs = {p.name for p in (out / "blobs" / "sha256").iterdir()}
    assert out_blobs == src_blobs


@pytest.fixture
def registry() -> Iterator[Registry]:
    reg = start_dockling_registry()
    try:
        yield reg
    finally:
        stop_registry(reg)


def test_single_image_round_trip(registry: Registry, workdir: Path) -> None:
    round_trip(registry, workdir, multi_arch=False, creds=[])
    tags = registry.request("GET", "/v2/library/busybox/tags/list").json()
    assert tags == {"name": "library/busybox", "tags": ["1.36"]}


def test_multi_arch_round_trip(registry: Registry, workdir: Path) -> None:
    round_trip(registry, workdir, multi_arch=True, creds=[])


def test_copy_between_repositories_mounts_blobs(registry: Registry, workdir: Path) -> None:
    make_oci_layout(workdir / "src")
    skopeo(
        "copy",
        "--dest-tls-verify=false",
        f"oci:{workdir / 'src'}:latest",
        f"docker://{registry.addr}/a/one:v1",
    )
    skopeo(
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        f"docker://{registry.addr}/a/one:v1",
        f"docker://{registry.addr}/b/two:v1",
    )
    assert "mount=" in registry.log_path.read_text()
    one = registry.request("GET", "/v2/a/one/manifests/v1").headers["docker-content-digest"]
    two = registry.request("GET", "/v2/b/two/manifests/v1").headers["docker-content-digest"]
    assert one == two


def test_htpasswd_auth(workdir: Path) -> None:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=5)).decode()
    htpasswd = workdir / "htpasswd"
    # `htpasswd -B` writes the $2y$ prefix.
    htpasswd.write_text(f"alice:$2y${hashed[4:]}\n")
    reg = start_dockling_registry(htpasswd=htpasswd, credentials=("alice", "s3cret"))
    try:
        r = reg.request("GET", "/v2/", auth=False)
        assert r.status == 401
        assert r.error_codes == ["UNAUTHORIZED"]
        assert r.headers["www-authenticate"].startswith("Basic realm=")
        reg.credentials = ("alice", "wrong")
        assert reg.request("GET", "/v2/").status == 401
        reg.credentials = ("alice", "s3cret")
        assert reg.request("GET", "/v2/").status == 200
        round_trip(reg, workdir, multi_arch=False, creds=["alice:s3cret"])
    finally:
        stop_registry(reg)


def test_tls(workdir: Path) -> None:
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    reg = start_dockling_registry(tls=(cert, key))
    try:
        assert reg.request("GET", "/v2/").status == 200
        round_trip(reg, workdir, multi_arch=True, creds=[])
    finally:
        stop_registry(reg)
