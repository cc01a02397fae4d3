"""Reproducible builds: with SOURCE_DATE_EPOCH, the same context built by two daemons with
different data roots (the base image moved between them with save/load) gives the same
image ID; the layers' entries are sorted and their mtimes clamped to the epoch."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.daemon import (
    Daemon,
    leaks,
    remove_all_containers,
    remove_daemon_network,
    start_daemon,
    stop_daemon,
)

pytestmark = [pytest.mark.root, pytest.mark.runc]

EPOCH = 1_700_000_000


@pytest.fixture
def second_daemon() -> Iterator[Daemon]:
    d = start_daemon()
    try:
        yield d
    finally:
        ids = remove_all_containers(d) if d.process.poll() is None else []
        stop_daemon(d)
        leaked = leaks(d, ids)
        remove_daemon_network(d)
        shutil.rmtree(d.root, ignore_errors=True)
        assert not leaked, leaked


def _context(root: Path, base: str) -> Path:
    (root / "app").mkdir(parents=True)
    (root / "app" / "main.sh").write_text("echo hello\n")
    (root / "notes.txt").write_text("notes\n")
    (root / "Dockerfile").write_text(
        f"FROM {base}\n"
        "ARG SOURCE_DATE_EPOCH\n"
        "ENV APP=/srv/app\n"
        "WORKDIR /srv/app\n"
        "COPY app/ ./\n"
        "COPY notes.txt /srv/\n"
        "RUN mkdir -p gen && for i in 3 1 2; do echo $i > gen/f$i; done && hostname > host\n"
        "LABEL purpose=reproducible\n"
        'CMD ["sh", "/srv/app/main.sh"]\n'
    )
    return root


def _image_tar(d: Daemon, ref: str) -> tarfile.TarFile:
    status, body = d.request("GET", f"/images/{ref}/get", timeout=120)
    assert status == 200, body
    return tarfile.open(fileobj=io.BytesIO(body))


def _layers(d: Daemon, ref: str) -> list[list[tarfile.TarInfo]]:
    """The members of every layer of the saved image `ref`, in the image's order."""
    outer = _image_tar(d, ref)
    manifest = json.loads(outer.extractfile("manifest.json").read())  # type: ignore[union-attr]
    result = []
    for name in manifest[0]["Layers"]:
        data = outer.extractfile(name).read()  # type: ignore[union-attr]
        with tarfile.open(fileobj=io.BytesIO(data)) as layer:
            result.append(layer.getmembers())
    return result


def _describe(d: Daemon, ref: str) -> tuple[Any, list[list[tuple[Any, ...]]]]:
    """The saved config and every layer's members, to say what differs."""
    outer = _image_tar(d, ref)
    manifest = json.loads(outer.extractfile("manifest.json").read())  # type: ignore[union-attr]
    config = json.loads(outer.extractfile(manifest[0]["Config"]).read())  # type: ignore[union-attr]
    layers = [
        [
            (m.name, m.mtime, m.mode, m.uid, m.gid, m.size, m.linkname, m.type, m.pax_headers)
            for m in members
        ]
        for members in _layers(d, ref)
    ]
    return config, layers


def test_same_digest_in_two_data_roots(
    daemon: Daemon, second_daemon: Daemon, tmp_path: Path
) -> None:
    base = f"rbase{uuid.uuid4().hex[:8]}:1"
    assert daemon.cli("tag", daemon.image, base).returncode == 0
    archive = tmp_path / "base.tar"
    saved = daemon.cli("save", "-o", str(archive), base)
    assert saved.returncode == 0, saved.stderr
    loaded = second_daemon.cli("load", "-i", str(archive))
    assert loaded.returncode == 0, loaded.stderr
    context = _context(tmp_path / "ctx", base)
    name = f"repro{uuid.uuid4().hex[:8]}"
    # One build takes the epoch as a build arg, the other from the CLI's environment.
    first = daemon.cli(
        "build",
        "--build-arg",
        f"SOURCE_DATE_EPOCH={EPOCH}",
        "-q",
        "-t",
        name,
        str(context),
        timeout=180,
    )
    assert first.returncode == 0, first.stdout + first.stderr
    env_build: dict[str, Any] = {**second_daemon.env, "SOURCE_DATE_EPOCH": str(EPOCH)}
    import subprocess

    from tests.helpers.daemon import VENV_BIN

    second = subprocess.run(
        [str(VENV_BIN / "dockling"), "build", "-q", "-t", name, str(context)],
        env=env_build,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert second.returncode == 0, second.stdout + second.stderr
    one, two = first.stdout.strip(), second.stdout.strip()
    assert one.startswith("sha256:")
    if one != two:
        left, right = _describe(daemon, name), _describe(second_daemon, name)
        for a, b in zip(left[1], right[1], strict=True):
            assert a == b, [(x, y) for x, y in zip(a, b, strict=False) if x != y]
        assert left[0] == right[0], (left[0], right[0])
        raise AssertionError(f"{one} != {two} with the same config and layers")
    try:
        status, body = daemon.request("GET", f"/images/{name}/json")
        assert status == 200
        assert body["Created"] == "2023-11-14T22:13:20Z"
        assert "Hostname" not in body["Config"] or not body["Config"]["Hostname"]
        assert body["Container"] == ""
        base_layers = len(_layers(daemon, base))
        for members in _layers(daemon, name)[base_layers:]:
            names = [m.name for m in members]
            assert names, "an empty layer"
            assert all(m.mtime <= EPOCH for m in members), [(m.name, m.mtime) for m in members]
            # Parents before children, siblings in name order: a deterministic order.
            for parent in {n.rsplit("/", 1)[0] for n in names if "/" in n}:
                siblings = [n for n in names if n.rsplit("/", 1)[0] == parent and "/" in n]
                assert siblings == sorted(siblings)
    finally:
        for d in (daemon, second_daemon):
            d.cli("rmi", "-f", name, base)
