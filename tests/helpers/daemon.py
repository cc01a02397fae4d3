"""A real docklingd on a temporary data root and socket, for integration and e2e tests."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
CACHE = Path(os.environ.get("DOCKLING_TEST_CACHE", REPO / ".cache"))


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 60) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


@dataclass
class Daemon:
    root: Path
    socket_path: str
    process: subprocess.Popen[bytes]
    image: str = "busybox:latest"
    log_path: Path = field(default_factory=Path)

    @property
    def host(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def data_root(self) -> Path:
        return self.root / "d"

    @property
    def exec_root(self) -> Path:
        return self.root / "r"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["DOCKLING_HOST"] = self.host
        env["DOCKER_HOST"] = self.host
        env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '')}"
        env.pop("DOCKER_CONFIG", None)
        return env

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        timeout: float = 60,
    ) -> tuple[int, Any]:
        conn = UnixHTTPConnection(self.socket_path, timeout=timeout)
        try:
            payload = (
                raw
                if raw is not None
                else (json.dumps(body).encode() if body is not None else None)
            )
            headers = {"Content-Type": "application/json"} if payload is not None else {}
            conn.request(method, path, body=payload, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            try:
                return resp.status, json.loads(data) if data.strip() else None
            except ValueError:
                return resp.status, data
        finally:
            conn.close()

    def cli(
        self, *args: str, input: bytes | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(VENV_BIN / "dockling"), *args],
            env=self.env,
            input=input.decode() if input is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def build_prerequisites() -> None:
    subprocess.run([str(REPO / "scripts" / "build-test-images")], check=True, capture_output=True)
    subprocess.run(["make", "-s", "-C", str(REPO / "shim")], check=True, capture_output=True)


def start_daemon(*, extra_config: dict[str, Any] | None = None, root: Path | None = None) -> Daemon:
    # Short paths: unix socket paths are limited to 107 bytes and live under the exec root.
    root = root or Path(tempfile.mkdtemp(prefix="dl", dir="/tmp"))
    (root / "d").mkdir(exist_ok=True)
    config = root / "daemon.json"
    config.write_text(json.dumps(extra_config or {}))
    socket_path = str(root / "s.sock")
    log_path = root / "daemon.log"
    env = dict(os.environ)
    env["DOCKLING_SHIM"] = str(REPO / "shim" / "dockling-shim")
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [
                str(VENV_BIN / "docklingd"),
                "--data-root",
                str(root / "d"),
                "--exec-root",
                str(root / "r"),
                "--config-file",
                str(config),
                "-H",
                f"unix://{socket_path}",
                "--log-level",
                "debug",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    daemon = Daemon(root=root, socket_path=socket_path, process=process, log_path=log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"docklingd exited: {log_path.read_text()[-3000:]}")
        try:
            status, _ = daemon.request("GET", "/_ping", timeout=2)
            if status == 200:
                return daemon
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"docklingd did not answer: {log_path.read_text()[-3000:]}")


def import_busybox(daemon: Daemon, name: str = "busybox:latest") -> None:
    tar = (CACHE / "busybox-rootfs.tar").read_bytes()
    repo, _, tag = name.partition(":")
    status, body = daemon.request(
        "POST", f"/images/create?fromSrc=-&repo={repo}&tag={tag or 'latest'}", raw=tar
    )
    if status != 200:
        raise RuntimeError(f"import failed: {status} {body!r}")


def stop_daemon(daemon: Daemon, *, kill: bool = False) -> None:
    if daemon.process.poll() is None:
        daemon.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            daemon.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            daemon.process.kill()
            daemon.process.wait()


def remove_all_containers(daemon: Daemon) -> list[str]:
    _status, containers = daemon.request("GET", "/containers/json?all=1")
    ids = [c["Id"] for c in containers or []]
    for cid in ids:
        daemon.request("DELETE", f"/containers/{cid}?force=1&v=1")
    return ids


def leaks(daemon: Daemon, container_ids: list[str]) -> list[str]:
    """Mounts, cgroups and processes this daemon's containers left behind."""
    found = []
    root = str(daemon.root)
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            mount_point = line.split()[4]
            if mount_point.startswith(root):
                found.append(f"mount {mount_point}")
    controllers = list(Path("/sys/fs/cgroup").iterdir())
    found.extend(
        f"cgroup {controller / 'dockling' / cid}"
        for cid in container_ids
        for controller in controllers
        if (controller / "dockling" / cid).exists()
    )
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            cmdline = (
                (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            )
        except OSError:
            continue
        if "dockling-shim" in cmdline and root in cmdline:
            found.append(f"process {pid_dir.name}: {cmdline[:120]}")
    return found
