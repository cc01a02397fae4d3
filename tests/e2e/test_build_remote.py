"""`dockling build URL`: the daemon downloads a tar context from a local HTTP server
(127.0.0.1 only) and builds it; `-f` names the Dockerfile inside; clear errors for a
missing URL and for content that is not a tar."""

from __future__ import annotations

import functools
import http.server
import io
import tarfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.root, pytest.mark.runc]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served over HTTP on 127.0.0.1 and its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def make_tar(path: Path, files: dict[str, str], gz: bool) -> None:
    with tarfile.open(path, "w:gz" if gz else "w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))


def remove(daemon: Any, name: str) -> None:
    daemon.cli("rmi", "-f", name)


@pytest.mark.parametrize(("suffix", "gz"), [("tar", False), ("tar.gz", True)])
def test_build_from_a_tar_url(daemon: Any, served: tuple[Path, str], suffix: str, gz: bool) -> None:
    root, base = served
    make_tar(
        root / f"ctx.{suffix}",
        {
            "ci/Dockerfile": f"FROM {daemon.image}\nCOPY hello.txt /hello.txt\n"
            'CMD ["cat", "/hello.txt"]\n',
            "hello.txt": f"hello from {suffix}\n",
        },
        gz,
    )
    name = f"remote{uuid.uuid4().hex[:10]}"
    result = daemon.cli(
        "build", "-t", name, "-f", "ci/Dockerfile", f"{base}/ctx.{suffix}", timeout=180
    )
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Step 2/3 : COPY hello.txt /hello.txt" in result.stdout
        assert f"Successfully tagged {name}:latest" in result.stdout
        assert "Sending build context" not in result.stdout
        run = daemon.cli("run", "--rm", name)
        assert run.returncode == 0, run.stderr
        assert run.stdout == f"hello from {suffix}\n"
    finally:
        remove(daemon, name)


def test_missing_url_is_a_clear_error(daemon: Any, served: tuple[Path, str]) -> None:
    _, base = served
    result = daemon.cli("build", f"{base}/nothing.tar")
    assert result.returncode != 0
    assert "unable to prepare context:" in result.stderr
    assert "returned status code 404" in result.stderr


def test_content_that_is_not_a_tar_is_refused(daemon: Any, served: tuple[Path, str]) -> None:
    root, base = served
    (root / "page.html").write_text("<html>not a tar</html>\n" * 40)
    result = daemon.cli("build", f"{base}/page.html")
    assert result.returncode != 0
    assert "is not a tar archive" in result.stderr, result.stderr


def test_unsupported_scheme_is_refused(daemon: Any) -> None:
    status, body = daemon.request("POST", "/build?remote=git://example.invalid/x.git")
    assert status >= 400 and "only http:// and https://" in str(body)
