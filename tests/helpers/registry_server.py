"""Registry servers for tests: `dockling registry serve` or Debian's docker-registry (CNCF
Distribution), each on a free 127.0.0.1 port, started and stopped by PID; plus a raw HTTP
client and an OCI image layout made from the busybox rootfs, for skopeo."""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("DOCKLING_TEST_CACHE", REPO / ".cache"))
BUSYBOX_TAR = CACHE / "busybox-rootfs.tar"
DISTRIBUTION_BIN = "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_codes(self) -> list[str]:
        return [e["code"] for e in self.json()["errors"]]


@dataclass
class Registry:
    kind: str  # "dockling" or "distribution"
    port: int
    root: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    tls: bool = False
    credentials: tuple[str, str] | None = None
    cleanup: list[Path] = field(default_factory=list)
    ca: Path | None = None  # with TLS: verify the server against this CA (else no checks)

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def connection(self) -> http.client.HTTPConnection:
        if self.tls:
            if self.ca is not None:
                ctx = ssl.create_default_context(cafile=str(self.ca))
            else:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=60, context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        *,
        auth: bool = True,
    ) -> Reply:
        """One request on a fresh connection; the body is read whole."""
        hdrs = dict(headers or {})
        if auth and self.credentials is not None:
            token = base64.b64encode(":".join(self.credentials).encode()).decode()
            hdrs["Authorization"] = f"Basic {token}"
        conn = self.connection()
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        finally:
            conn.close()

    def push_blob(self, name: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        r = self.request("POST", f"/v2/{name}/blobs/uploads/?digest={digest}", data)
        if r.status == 202:  # servers may ignore monolithic POST; finish with PUT
            r = self.request("PUT", _with_query(r.headers["location"], f"digest={digest}"), data)
        assert r.status == 201, (r.status, r.body)
        return digest

    def push_manifest(self, name: str, ref: str, manifest: dict[str, Any]) -> Reply:
        media_type = manifest.get("mediaType", "application/vnd.oci.image.manifest.v1+json")
        body = json.dumps(manifest).encode()
        return self.request(
            "PUT", f"/v2/{name}/manifests/{ref}", body, {"Content-Type": media_type}
        )


def _with_query(location: str, query: str) -> str:
    if location.startswith("http"):
        location = "/" + location.split("/", 3)[3]
    return location + ("&" if "?" in location else "?") + query


def _wait_ready(reg: Registry) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if reg.process.poll() is not None:
            raise RuntimeError(f"{reg.kind} registry exited: {reg.log_path.read_text()[-2000:]}")
        try:
            reg.request("GET", "/v2/", auth=False)
            return
        except OSError:
            time.sleep(0.05)
    stop_registry(reg)
    raise RuntimeError(f"{reg.kind} registry did not answer on {reg.addr}")


def start_dockling_registry(
    root: Path | None = None,
    *,
    htpasswd: Path | None = None,
    credentials: tuple[str, str] | None = None,
    tls: tuple[Path, Path] | None = None,
    ca: Path | None = None,
    read_only: bool = False,
    port: int | None = None,
    extra_args: list[str] | None = None,
) -> Registry:
    """`dockling registry serve` on a free port (storage in a new temp dir unless `root`).

    With `tls` (cert, key) it serves HTTPS; the helper's own requests verify the server
    against `ca` when given, and skip verification otherwise.
    """
    owned = root is None
    root = root or Path(tempfile.mkdtemp(prefix="dkreg-"))
    port = port or free_port()
    cmd = [
        str(Path(sys.executable).parent / "dockling"),
        "registry",
        "serve",
        "--addr",
        f"127.0.0.1:{port}",
        "--root",
        str(root / "data"),
    ]
    if htpasswd is not None:
        cmd += ["--htpasswd", str(htpasswd)]
    if tls is not None:
        cmd += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
    if read_only:
        cmd.append("--read-only")
    cmd += extra_args or []
    log_path = root / f"registry-{port}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    reg = Registry("dockling", port, root, process, log_path, tls is not None, credentials, ca=ca)
    if owned:
        reg.cleanup.append(root)
    _wait_ready(reg)
    return reg


def start_distribution_registry(
    root: Path | None = None, *, token: dict[str, str] | None = None
) -> Registry:
    """Debian's docker-registry (CNCF Distribution 2.8) with deletes enabled; with `token`
    (its `auth.token` settings: realm, service, issuer, rootcertbundle) it takes Bearer
    tokens from that service only."""
    owned = root is None
    root = root or Path(tempfile.mkdtemp(prefix="dreg-"))
    port = free_port()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: error}\n"
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n"
        + (f"auth: {{token: {json.dumps(token)}}}\n" if token else "")
    )
    log_path = root / "registry.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [DISTRIBUTION_BIN, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
    reg = Registry("distribution", port, root, process, log_path)
    if owned:
        reg.cleanup.append(root)
    _wait_ready(reg)
    return reg


def stop_registry(reg: Registry) -> None:
    """SIGTERM the server by PID, SIGKILL after 10 s, remove what the helper created."""
    import shutil

    if reg.process.poll() is None:
        os.kill(reg.process.pid, signal.SIGTERM)
        try:
            reg.process.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(reg.process.pid, signal.SIGKILL)
            reg.process.wait()
    for path in reg.cleanup:
        shutil.rmtree(path, ignore_errors=True)


# images --------------------------------------------------------------------------------
def _write_blob(layout: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    path = layout / "blobs" / "sha256" / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _image(layout: Path, layer: dict[str, Any], diff_id: str, arch: str) -> dict[str, Any]:
    config = {
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "tests/helpers/registry_server.py"}],
    }
    cfg = _write_blob(layout, json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}],
    }
    desc = _write_blob(layout, json.dumps(manifest).encode())
    return {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        **desc,
        "platform": {"architecture": arch, "os": "linux"},
    }


def make_oci_layout(layout: Path, *, multi_arch: bool = False, tag: str = "latest") -> str:
    """An OCI image layout of busybox (one gzip layer); returns the top manifest digest.

    With `multi_arch` the tag names an index of an amd64 and an arm64 image (same layer,
    different configs), which is enough for `skopeo copy --all`.
    """
    raw = BUSYBOX_TAR.read_bytes()
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    layer = _write_blob(layout, gzip.compress(raw, compresslevel=1, mtime=0))
    images = [_image(layout, layer, diff_id, "amd64")]
    if multi_arch:
        images.append(_image(layout, layer, diff_id, "arm64"))
        index_doc = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": images,
        }
        top = {
            "mediaType": "application/vnd.oci.image.index.v1+json",
            **_write_blob(layout, json.dumps(index_doc).encode()),
        }
    else:
        top = {k: v for k, v in images[0].items() if k != "platform"}
    top["annotations"] = {"org.opencontainers.image.ref.name": tag}
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    return str(top["digest"])
