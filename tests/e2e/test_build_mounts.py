"""RUN --mount (cache, bind, tmpfs, secret) and ADD <url> --checksum, end to end with the
dockling CLI; `dockling builder prune`."""

from __future__ import annotations

import hashlib
import http.server
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.root, pytest.mark.runc]


def tag() -> str:
    return f"bm{uuid.uuid4().hex[:10]}"


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def run_out(daemon: Any, *args: str) -> str:
    result = daemon.cli("run", "--rm", *args)
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


@pytest.fixture
def images(daemon: Any) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        daemon.cli("rmi", "-f", name)


def test_run_mounts_cache_bind_tmpfs_secret(daemon: Any, tmp_path: Path, images: list[str]) -> None:
    name = tag()
    images.append(name)
    cache_id = uuid.uuid4().hex
    context = write(
        tmp_path / "ctx",
        {
            "Dockerfile": (
                f"FROM {daemon.image} AS base\n"
                "RUN mkdir -p /opt && echo from-stage > /opt/stage.txt\n"
                f"FROM {daemon.image}\n"
                "ARG RUNS=1\n"
                f"RUN --mount=type=cache,target=/var/cache/app,id={cache_id} "
                "echo run >> /var/cache/app/log && wc -l < /var/cache/app/log > /count\n"
                "RUN --mount=type=bind,source=data,target=/data cat /data/a.txt > /bound\n"
                "RUN --mount=type=bind,target=/ctx,rw echo scribble > /ctx/new.txt "
                "&& cat /ctx/data/a.txt > /rw\n"
                "RUN --mount=type=bind,from=base,source=/opt,target=/stage "
                "cp /stage/stage.txt /from-stage\n"
                "RUN --mount=type=tmpfs,target=/scratch,size=1m echo t > /scratch/x "
                "&& grep -c tmpfs /proc/mounts > /tmpfs-seen\n"
                "RUN --mount=type=secret,id=token "
                "cat /run/secrets/token > /dev/null "
                "&& stat -c %a /run/secrets/token > /secret-mode "
                "&& ls /run/secrets > /secret-names\n"
            ),
            "data/a.txt": "context data\n",
        },
    )
    secret = tmp_path / "token.txt"
    secret.write_text("s3cr3t-value")
    result = daemon.cli(
        "build", "--secret", f"id=token,src={secret}", "-t", name, str(context), timeout=180
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = run_out(
        daemon,
        name,
        "sh",
        "-c",
        "cat /count /bound /rw /from-stage /secret-mode /secret-names; "
        "ls -d /var/cache/app /data /ctx /stage /scratch /run/secrets 2>/dev/null | wc -l",
    )
    lines = out.split("\n")
    assert lines[0].strip() == "1"
    assert lines[1:6] == ["context data", "context data", "from-stage", "400", "token"]
    # As BuildKit: the mount points the runtime made are not in the image, nor anything of
    # the mounts' contents.
    assert lines[6].strip() == "0", out
    assert (context / "new.txt").exists() is False
    history = daemon.cli("history", "--no-trunc", name).stdout
    assert "s3cr3t" not in history
    archive = tmp_path / "image.tar"
    saved = daemon.cli("save", "-o", str(archive), name)
    assert saved.returncode == 0, saved.stderr
    assert b"s3cr3t-value" not in archive.read_bytes()
    assert "context data" in out

    # The cache dir persists across builds; the step itself re-runs without the layer cache.
    again = daemon.cli(
        "build",
        "--no-cache",
        "--secret",
        f"id=token,src={secret}",
        "-t",
        name,
        str(context),
        timeout=180,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert run_out(daemon, name, "cat", "/count").strip() == "2"

    # A changed bind source invalidates the step that binds it.
    (context / "data" / "a.txt").write_text("changed\n")
    third = daemon.cli(
        "build", "--secret", f"id=token,src={secret}", "-t", name, str(context), timeout=180
    )
    assert third.returncode == 0, third.stdout + third.stderr
    assert run_out(daemon, name, "cat", "/bound").strip() == "changed"


def test_missing_required_secret_fails(daemon: Any, tmp_path: Path) -> None:
    context = write(
        tmp_path,
        {
            "Dockerfile": (
                f"FROM {daemon.image}\n"
                "RUN --mount=type=secret,id=nope,required cat /run/secrets/nope\n"
            )
        },
    )
    result = daemon.cli("build", str(context), timeout=120)
    assert result.returncode != 0
    assert "secret nope not found" in result.stdout + result.stderr


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "www"
    root.mkdir()

    def handler(*args: Any, **kwargs: Any) -> _Quiet:
        return _Quiet(*args, directory=str(root), **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_add_url_with_checksum(
    daemon: Any, tmp_path: Path, images: list[str], http_root: tuple[Path, str]
) -> None:
    www, base = http_root
    payload = b"downloaded payload\n"
    (www / "file.txt").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    name = tag()
    images.append(name)
    context = write(
        tmp_path / "ctx",
        {
            "Dockerfile": (
                f"FROM {daemon.image}\n"
                f"ADD --checksum=sha256:{digest} {base}/file.txt /srv/\n"
                f"ADD {base}/file.txt /named.txt\n"
            )
        },
    )
    result = daemon.cli("build", "-t", name, str(context), timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    out = run_out(daemon, name, "sh", "-c", "cat /srv/file.txt /named.txt; stat -c %a /named.txt")
    assert out == "downloaded payload\ndownloaded payload\n600\n"

    wrong = write(
        tmp_path / "bad",
        {
            "Dockerfile": (
                f"FROM {daemon.image}\nADD --checksum=sha256:{'0' * 64} {base}/file.txt /x\n"
            )
        },
    )
    failed = daemon.cli("build", str(wrong), timeout=120)
    assert failed.returncode != 0
    assert f"digest mismatch sha256:{digest}" in failed.stdout + failed.stderr
    missing = write(
        tmp_path / "missing", {"Dockerfile": f"FROM {daemon.image}\nADD {base}/none.txt /x\n"}
    )
    failed = daemon.cli("build", str(missing), timeout=120)
    assert failed.returncode != 0
    assert "404" in failed.stdout + failed.stderr


def test_builder_prune(daemon: Any) -> None:
    result = daemon.cli("builder", "prune", "-f")
    assert result.returncode == 0, result.stderr
    assert "Total reclaimed space:" in result.stdout
