"""Faults through a real docklingd: a malicious layer served by a registry, the daemon
killed (SIGKILL) mid-pull and mid-commit.  After each, the store is checked file by file
(tests/helpers/store_check.py): no half image, every blob verifies, every snapshot is
referenced.
"""

from __future__ import annotations

import http.client
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.helpers.daemon import (
    Daemon,
    import_busybox,
    start_daemon,
    stop_daemon,
)
from tests.helpers.evil_layers import corpus
from tests.helpers.proxies import ThrottleProxy
from tests.helpers.registry import (
    Registry,
    build_oci_layout,
    busybox_layer,
    random_layer,
    skopeo_push,
    start_registry,
)
from tests.helpers.store_check import check_store

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    reg = start_registry()
    yield reg
    reg.stop()


@pytest.fixture
def own_daemon(bare_daemon: Daemon) -> Daemon:
    """These tests start from an empty image store."""
    return bare_daemon


def restart(d: Daemon, *, kill: bool) -> None:
    stop_daemon(d, kill=kill)
    d.process = start_daemon(root=d.root).process


def pull(d: Daemon, name: str) -> tuple[int, Any]:
    """POST /images/create; the streamed JSON progress comes back as bytes or a list."""
    image, _, tag = name.rpartition(":")
    return d.request("POST", f"/images/create?fromImage={quote(image)}&tag={tag}", timeout=120)


def stream_text(body: Any) -> str:
    return body.decode() if isinstance(body, bytes) else str(body)


def assert_consistent(d: Daemon) -> list[str]:
    report = check_store(d.data_root)
    assert report.problems == [], report.problems
    return report.images


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def in_background(fn: Callable[[], object]) -> threading.Thread:
    def run() -> None:
        try:
            fn()
        except (OSError, http.client.HTTPException):
            pass  # the daemon was killed under the request

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(
    "case", ["symlink-then-write", "hardlink-etc-passwd", "whiteout-through-symlink", "dotdot"]
)
def test_pull_of_a_malicious_layer_fails_naming_it(
    own_daemon: Daemon, registry: Registry, tmp_path: Path, case: str
) -> None:
    evil = corpus(tmp_path / "outside")[case]
    built = build_oci_layout(tmp_path / "oci", [busybox_layer(), evil.layer])
    skopeo_push(built, f"{registry.netloc}/evil/{case}:latest")
    before = sorted(os.listdir(own_daemon.root))
    status, body = pull(own_daemon, f"{registry.netloc}/evil/{case}:latest")
    text = stream_text(body)
    # The stream has started (200), so the failure is its last JSON message.
    assert status == 200
    assert f"layer {built.layer_digests[1]}" in text, text
    assert "unsafe layer member" in text
    assert "Status: Downloaded" not in text
    st, images = own_daemon.request("GET", "/images/json?all=1")
    assert st == 200 and images == []
    assert sorted(os.listdir(own_daemon.root)) == before
    assert not (tmp_path / "outside").exists()
    for _dirpath, dirnames, filenames in os.walk(own_daemon.root):
        assert "outside" not in dirnames + filenames
    assert not os.path.lexists("/outside")
    restart(own_daemon, kill=False)
    assert assert_consistent(own_daemon) == []


def test_daemon_killed_mid_pull_resumes_with_range(
    own_daemon: Daemon, registry: Registry, tmp_path: Path
) -> None:
    size = 4 << 20
    built = build_oci_layout(tmp_path / "oci", [random_layer(size, seed=11)], compress=False)
    skopeo_push(built, f"{registry.netloc}/faults/big:latest")
    layer = built.layer_digests[0]
    proxy = ThrottleProxy(registry.netloc, rate=2 << 20)
    try:
        name = f"{proxy.netloc}/faults/big:latest"
        thread = in_background(lambda: pull(own_daemon, name))
        wait_until(lambda: proxy.sent.get(layer, 0) >= size // 4, 30, "a quarter of the layer")
        # What the proxy sent may still sit in socket buffers: kill only once the daemon
        # has written some of it, or there is nothing to resume from.
        partial = own_daemon.data_root / "content" / "ingest" / f"pull-{layer[7:]}" / "data"
        wait_until(
            lambda: partial.exists() and partial.stat().st_size > 0, 30, "a partial download"
        )
        stop_daemon(own_daemon, kill=True)
        thread.join(timeout=30)
        got = proxy.sent[layer]
        assert got < size
        restart(own_daemon, kill=False)
        # Before the new pull: the partial download is kept and nothing is listed.
        ingests = check_store(own_daemon.data_root).ingests
        assert ingests == [f"pull-{layer[7:]}"], ingests
        assert own_daemon.request("GET", "/images/json?all=1") == (200, [])
        proxy.rate = 0
        proxy.requests.clear()
        status, body = pull(own_daemon, name)
        assert status == 200 and "Status: Downloaded newer image" in stream_text(body), body
        ranges = [r for m, p, r in proxy.requests if m == "GET" and p.endswith(layer)]
        # Every fetch of the layer resumes (a loaded machine may see a retry, which resumes
        # too); the first starts inside what the killed daemon had received.
        assert ranges and all(r.startswith("bytes=") for r in ranges), proxy.requests
        start = int(ranges[0][6:].rstrip("-"))
        assert 0 < start <= got
    finally:
        proxy.close()
    st, image = own_daemon.request("GET", f"/images/{quote(name, safe='')}/json")
    assert st == 200 and image["Id"] == built.config_digest
    assert image["RootFS"]["Layers"] == [f"sha256:{_sha256(random_layer(size, seed=11))}"]
    stop_daemon(own_daemon)
    report = check_store(own_daemon.data_root)
    assert report.problems == [] and report.images == [built.config_digest]
    assert report.ingests == []
    restart(own_daemon, kill=False)


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _fill_upper(upper: Path, files: int, size: int) -> None:
    block = os.urandom(size)
    (upper / "bulk").mkdir()
    for i in range(files):
        (upper / "bulk" / f"f{i:04d}").write_bytes(block[i:] + block[:i])


def _ingests(d: Daemon) -> list[str]:
    ingest = d.data_root / "content" / "ingest"
    return [e for e in os.listdir(ingest) if not e.startswith("pull-")] if ingest.exists() else []


def _snapshot_dirs(d: Daemon) -> set[str]:
    return set(os.listdir(d.data_root / "snapshots" / "overlay" / "snapshots"))


@pytest.mark.runc
@pytest.mark.parametrize("moment", ["writing-the-layer", "unpacking-the-layer"])
def test_daemon_killed_during_commit_leaves_no_half_image(own_daemon: Daemon, moment: str) -> None:
    import_busybox(own_daemon)
    status, created = own_daemon.request(
        "POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"]}
    )
    assert status == 201, created
    cid = created["Id"]
    status, info = own_daemon.request("GET", f"/containers/{cid}/json")
    assert status == 200, info
    upper = Path(info["GraphDriver"]["Data"]["UpperDir"])
    _fill_upper(upper, 160, 1 << 20)
    images_before = assert_consistent(own_daemon)
    snaps_before = _snapshot_dirs(own_daemon)
    done = threading.Event()

    def commit() -> None:
        own_daemon.request("POST", f"/commit?container={cid}&repo=half&tag=x", timeout=120)
        done.set()

    thread = in_background(commit)
    if moment == "writing-the-layer":
        wait_until(lambda: bool(_ingests(own_daemon)), 30, "the commit's blob ingest")
    else:
        wait_until(
            lambda: bool(_snapshot_dirs(own_daemon) - snaps_before), 30, "the commit's unpack"
        )
    stop_daemon(own_daemon, kill=True)
    thread.join(timeout=30)
    assert not done.is_set(), "the commit finished before the kill"
    restart(own_daemon, kill=False)
    assert own_daemon.request("GET", "/images/half:x/json")[0] == 404
    assert sorted(assert_consistent(own_daemon)) == sorted(images_before)
    assert _ingests(own_daemon) == []
    # The container survived and commits fine now.
    status, body = own_daemon.request(
        "POST", f"/commit?container={cid}&repo=whole&tag=y", timeout=120
    )
    assert status == 201, body
    assert len(assert_consistent(own_daemon)) == len(images_before) + 1
