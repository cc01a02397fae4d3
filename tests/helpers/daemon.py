"""A real docklingd on a temporary data root and socket, for integration and e2e tests."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
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


def network_config(root: Path) -> dict[str, Any]:
    """Names and subnets of this daemon's own, so parallel daemons never share a bridge,
    a link name, an nft table or an address range.  Kept in the root's net.json so a daemon
    restarted on the same root keeps them."""
    saved = root / "net.json"
    if saved.exists():
        return dict(json.loads(saved.read_text()))
    sweep_dead_test_networks()
    busy = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    taken = {p.name for p in Path("/tmp").glob("dlnet-*")}
    for _ in range(500):
        n = random.randint(1, 250)
        if f"10.{n}." in busy or f"dlnet-{n}" in taken:
            continue
        try:
            (Path("/tmp") / f"dlnet-{n}").mkdir()
        except FileExistsError:
            continue
        (Path("/tmp") / f"dlnet-{n}" / "root").write_text(str(root))
        break
    else:
        raise RuntimeError("no free test subnet")
    tag = f"t{n:02x}"
    config = {
        "default-bridge-name": f"{tag}0",
        "link-prefix": tag,
        "nft-table": f"dockling_{tag}",
        "bip": f"10.{n}.0.1/24",
        "default-address-pools": [{"base": f"10.{n}.128.0/17", "size": 24}],
    }
    saved.write_text(json.dumps(config))
    return config


def _daemon_alive(root: Path) -> bool:
    try:
        pid = int((root / "r" / "docklingd.pid").read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def sweep_dead_test_networks() -> None:
    """Bridges, links and nft tables of test daemons that died without their teardown (a
    killed test run), found through the /tmp/dlnet-N reservations."""
    for reservation in Path("/tmp").glob("dlnet-*"):
        owner = reservation / "root"
        try:
            root = Path(owner.read_text())
        except OSError:
            continue  # being made right now, or by an older helper
        if _daemon_alive(root) or not (root / "net.json").exists():
            continue
        config = json.loads((root / "net.json").read_text())
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        for line in links.splitlines():
            name = line.split(":", 2)[1].strip().split("@")[0]
            if name.startswith(config["link-prefix"]):
                subprocess.run(["ip", "link", "del", name], capture_output=True)
        subprocess.run(["nft", "delete", "table", "ip", config["nft-table"]], capture_output=True)
        shutil.rmtree(reservation, ignore_errors=True)


def start_daemon(*, extra_config: dict[str, Any] | None = None, root: Path | None = None) -> Daemon:
    # Short paths: unix socket paths are limited to 107 bytes and live under the exec root.
    root = root or Path(tempfile.mkdtemp(prefix="dl", dir="/tmp"))
    (root / "d").mkdir(exist_ok=True)
    config = root / "daemon.json"
    config.write_text(json.dumps({**network_config(root), **(extra_config or {})}))
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


def remove_all_networks(daemon: Daemon) -> None:
    _status, networks = daemon.request("GET", "/networks")
    for network in networks or []:
        if network["Name"] not in ("bridge", "host", "none"):
            daemon.request("DELETE", f"/networks/{network['Id']}")


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
    found.extend(network_leaks(daemon))
    return found


def network_leaks(daemon: Daemon) -> list[str]:
    """Links, netns files and the nft table this daemon made and left behind.

    The default bridge and the table stay while the daemon runs; after it stopped with no
    containers and no user networks, only they may remain, and the check removes them."""
    saved = daemon.root / "net.json"
    if not saved.exists():
        return []
    config = json.loads(saved.read_text())
    prefix = config["link-prefix"]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    found = []
    for line in links.splitlines():
        name = line.split(":", 2)[1].strip().split("@")[0]
        if name == config["default-bridge-name"]:
            continue
        if name.startswith(prefix):
            found.append(f"link {name}")
    netns_dir = daemon.exec_root / "netns"
    if netns_dir.is_dir():
        found.extend(f"netns {p}" for p in netns_dir.iterdir())
    table = subprocess.run(
        ["nft", "list", "table", "ip", config["nft-table"]], capture_output=True, text=True
    ).stdout
    if " dnat to " in table:
        found.append(f"nft dnat rules left in {config['nft-table']}")
    if daemon.process.poll() is not None:
        remove_daemon_network(daemon)
    return found


def remove_daemon_network(daemon: Daemon) -> None:
    """The default bridge, the nft table and the subnet reservation of a stopped daemon."""
    saved = daemon.root / "net.json"
    if not saved.exists():
        return
    config = json.loads(saved.read_text())
    subprocess.run(["ip", "link", "del", config["default-bridge-name"]], capture_output=True)
    subprocess.run(["nft", "delete", "table", "ip", config["nft-table"]], capture_output=True)
    n = int(config["link-prefix"][1:], 16)
    shutil.rmtree(Path("/tmp") / f"dlnet-{n}", ignore_errors=True)


@contextlib.contextmanager
def running_daemon(*, with_busybox: bool = True) -> Iterator[Daemon]:
    """A docklingd for the block, torn down after it with the leak check.

    A test may kill the daemon: it is brought back to clean up, so that what its
    containers made is removed through the daemon and the check sees what really leaked.
    """
    build_prerequisites()
    d = start_daemon()
    try:
        if with_busybox:
            import_busybox(d)
        yield d
    finally:
        if d.process.poll() is not None:
            d.process = start_daemon(root=d.root).process
        ids = remove_all_containers(d)
        remove_all_networks(d)
        stop_daemon(d)
        leaked = leaks(d, ids)
        remove_daemon_network(d)
        log = d.log_path.read_text()[-4000:] if d.log_path.exists() else ""
        if not leaked:
            shutil.rmtree(d.root, ignore_errors=True)
        assert not leaked, f"leaked: {leaked}\n{log}"
