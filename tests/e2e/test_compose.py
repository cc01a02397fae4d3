"""Docker Compose (Debian's docker-compose 1.29, which drives the Engine API through
docker-py) against a docklingd of its own: a two-service project with a build, a
published port, two networks, a shared volume and a healthcheck, up to down."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.daemon import running_daemon

pytestmark = pytest.mark.runc

COMPOSE_FILE = """\
version: "3.8"
services:
  web:
    build: ./web
    image: composeweb-{tag}:1
    ports: ["127.0.0.1:{port}:80"]
    environment: {{GREETING: hello}}
    volumes: ["data:/data"]
    networks: [front, back]
    depends_on: [db]
    healthcheck: {{test: ["CMD", "true"], interval: 1s}}
  db:
    image: busybox
    command: sh -c "echo db-up > /shared/db; httpd -f -p 5432 -h /shared"
    volumes: ["data:/shared"]
    networks: [back]
volumes: {{data: {{}}}}
networks: {{front: {{}}, back: {{}}}}
"""

DOCKERFILE = """\
FROM busybox
RUN mkdir -p /www && echo '<h1>compose</h1>' > /www/index.html
CMD ["httpd", "-f", "-p", "80", "-h", "/www"]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _compose(daemon: Any, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**daemon.env, "COMPOSE_PROJECT_NAME": "cp"}
    return subprocess.run(
        ["docker-compose", *args], cwd=project, env=env, capture_output=True, text=True,
        timeout=180,
    )  # fmt: skip


def test_compose_project_up_to_down(tmp_path: Path) -> None:
    port = _free_port()
    tag = tmp_path.name.lower().replace("_", "-")
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "Dockerfile").write_text(DOCKERFILE)
    (tmp_path / "docker-compose.yml").write_text(COMPOSE_FILE.format(port=port, tag=tag))
    with running_daemon() as d:
        up = _compose(d, tmp_path, "up", "-d", "--build")
        assert up.returncode == 0, up.stderr
        assert f"Successfully tagged composeweb-{tag}:1" in up.stdout
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read()
        assert body == b"<h1>compose</h1>\n"
        # Service names resolve on the shared network; the volume is shared.
        ex = _compose(d, tmp_path, "exec", "-T", "web", "sh", "-c",
                      "echo $GREETING; wget -qO- http://db:5432/db; cat /data/db")  # fmt: skip
        assert ex.stdout.split() == ["hello", "db-up", "db-up"], ex.stderr
        deadline = time.monotonic() + 20
        while "Up (healthy)" not in _compose(d, tmp_path, "ps").stdout:
            assert time.monotonic() < deadline, "web never became healthy"
            time.sleep(0.5)
        scaled = _compose(d, tmp_path, "up", "-d", "--scale", "db=2")
        assert scaled.returncode == 0, scaled.stderr
        names = subprocess.run(["docker", "ps", "--format", "{{.Names}}"], env=d.env,
                               capture_output=True, text=True).stdout.split()  # fmt: skip
        assert sorted(names) == ["cp_db_1", "cp_db_2", "cp_web_1"]
        down = _compose(d, tmp_path, "down", "-v", "--rmi", "all")
        assert down.returncode == 0, down.stderr
        left = subprocess.run(
            "docker ps -aq; docker volume ls -q; docker network ls --filter name=cp_ -q; "
            f"docker images -q composeweb-{tag}",
            shell=True, env=d.env, capture_output=True, text=True,
        )  # fmt: skip
        assert left.stdout.split() == [], left.stdout
