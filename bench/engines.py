"""The daemons under test, each started on private temp paths and torn down by PID.

`DocklingEngine` is a docklingd on a temp data root (as tests/helpers/daemon.py
does), `DockerEngine` a dockerd 20.10 (Debian's docker.io) with its own
containerd on a private data root, exec root and socket.
"""

from __future__ import annotations

import compileall
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from procs import (
    Memory,
    cgroup_dirs,
    children_of,
    cmdline,
    memory_of,
    output_of,
    processes_named,
    remove_empty_cgroups,
    stop_pid,
    unmount_all_under,
)

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
BUSYBOX_TAR = REPO / ".cache" / "busybox-rootfs.tar"
SHIM = REPO / "shim" / "dockling-shim"
RUNC = shutil.which("runc") or "/usr/sbin/runc"
DOCKERD = "/usr/sbin/dockerd"
# Debian's 20.10 CLI, not whatever `docker` is first on PATH: client and daemon of one release.
DOCKER_CLI = "/usr/bin/docker"
TRUST_KEY = Path("/etc/docker/key.json")


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.unix_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _request(
    socket_path: str, method: str, path: str, body: bytes | None = None, timeout: float = 60
) -> tuple[int, bytes]:
    conn = _UnixHTTP(socket_path, timeout)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _wait_for_ping(socket_path: str, pid: int, log: Path, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            raise RuntimeError(f"{what} exited at start: {log.read_text()[-2000:]}")
        try:
            if _request(socket_path, "GET", "/_ping", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer in {timeout}s: {log.read_text()[-2000:]}")


def compile_package() -> None:
    """Write the bytecode of dockling's modules, as installing the package does.

    An editable install in a shell with PYTHONDONTWRITEBYTECODE=1 would otherwise compile
    every module changed since the last cache write on each CLI start (about 10 ms for
    `build`), a cost no installed copy has.
    """
    compileall.compile_dir(str(REPO / "src" / "dockling"), quiet=1)


class DocklingEngine:
    """A docklingd of this tree on a temp data root; `argv()` builds `dockling` command lines.

    Its default bridge, link prefix, subnet and nft table are the benchmark's own, so that a
    docklingd already running on the machine is never touched; `stop` removes them.
    """

    config: dict[str, object] = {
        "default-bridge-name": "dlbe0",
        "link-prefix": "be",
        "nft-table": "dockling_be",
        "bip": "10.232.0.1/24",
        "default-address-pools": [{"base": "10.232.128.0/17", "size": 24}],
    }

    def __init__(self) -> None:
        # Short path: the socket lives under it and unix socket paths are limited to 107 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="dlb", dir="/tmp"))
        self.socket_path = str(self.root / "s.sock")
        self.log = self.root / "daemon.log"
        self.pid = 0
        self.env = dict(os.environ, DOCKLING_HOST=f"unix://{self.socket_path}")
        self.container_ids: set[str] = set()

    def start(self) -> None:
        compile_package()
        (self.root / "daemon.json").write_text(json.dumps(self.config))
        with open(self.log, "ab") as log:
            proc = subprocess.Popen(
                [
                    str(VENV_BIN / "docklingd"),
                    "--data-root",
                    str(self.root / "d"),
                    "--exec-root",
                    str(self.root / "r"),
                    "--config-file",
                    str(self.root / "daemon.json"),
                    "-H",
                    f"unix://{self.socket_path}",
                    "--log-level",
                    "info",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=dict(os.environ, DOCKLING_SHIM=str(SHIM)),
            )
        self.pid = proc.pid
        _wait_for_ping(self.socket_path, self.pid, self.log, "docklingd")

    def import_busybox(self) -> None:
        status, body = _request(
            self.socket_path,
            "POST",
            "/images/create?fromSrc=-&repo=busybox&tag=latest",
            BUSYBOX_TAR.read_bytes(),
        )
        if status != 200:
            raise RuntimeError(f"docklingd import failed: {status} {body[-500:]!r}")

    def argv(self, *args: str) -> list[str]:
        return [str(VENV_BIN / "dockling"), *args]

    def daemon_memory(self) -> Memory:
        """docklingd and any helper processes it keeps (the shims are counted apart)."""
        total = memory_of(self.pid)
        for child in children_of(self.pid):
            if os.path.basename((cmdline(child) or [""])[0]) != "dockling-shim":
                total = total + memory_of(child)
        return total

    def shim_pids(self) -> list[int]:
        return processes_named("dockling-shim", containing=str(self.root))

    def remove_all_containers(self) -> None:
        status, body = _request(self.socket_path, "GET", "/containers/json?all=1")
        if status == 200:
            for container in json.loads(body):
                self.container_ids.add(container["Id"])
                _request(self.socket_path, "DELETE", f"/containers/{container['Id']}?force=1&v=1")

    def leaked_cgroups(self) -> list[Path]:
        """Cgroups of containers this run saw (ps, removal) that outlived their removal."""
        return [d for cid in sorted(self.container_ids) for d in cgroup_dirs(f"dockling/{cid}")]

    def stop(self) -> None:
        """Remove containers, stop the daemon by pid, clear anything left, delete the root."""
        if self.pid and Path(f"/proc/{self.pid}").exists():
            try:
                self.remove_all_containers()
            except OSError:
                pass
            stop_pid(self.pid)
        _reap_runc_and_shims(self.root, "dockling-shim")
        unmount_all_under(self.root)
        shutil.rmtree(self.root, ignore_errors=True)
        # The default bridge and the nft table outlive the daemon, as Docker's do.
        subprocess.run(
            ["nft", "delete", "table", "ip", str(self.config["nft-table"])],
            capture_output=True,
            check=False,
        )
        subprocess.run(
            ["ip", "link", "del", str(self.config["default-bridge-name"])],
            capture_output=True,
            check=False,
        )


def _reap_runc_and_shims(root: Path, shim_name: str) -> None:
    """After a failed run: delete runc containers and stop shims that mention `root`."""
    for pid in processes_named(shim_name, containing=str(root)):
        argv = cmdline(pid)
        if "--runtime-root" in argv and "--id" in argv:
            runtime_root = argv[argv.index("--runtime-root") + 1]
            cid = argv[argv.index("--id") + 1]
            subprocess.run(
                [RUNC, "--root", runtime_root, "delete", "--force", cid],
                capture_output=True,
                check=False,
            )
        stop_pid(pid, timeout=5)


class DockerEngine:
    """dockerd 20.10 with its own containerd, on private paths; with a bridge if `bridge` is set.

    The bridge is one this class creates and deletes (so no host interface of
    anyone else is touched), and dockerd runs with --iptables=false
    --ip-forward=false --ip-masq=false, so it changes no firewall rule nor sysctl.
    """

    BRIDGE = "dlbench0"
    BRIDGE_ADDR = "172.31.254.1/24"

    def __init__(self, *, bridge: bool) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="dlbd", dir="/tmp"))
        self.socket_path = str(self.root / "docker.sock")
        self.log = self.root / "dockerd.log"
        self.pid = 0
        self.bridge = bridge
        self.made_bridge = False
        self.had_trust_key = TRUST_KEY.exists()
        # runc makes a "docker" parent cgroup in each hierarchy and nobody removes it.
        self.had_cgroups = set(cgroup_dirs("docker"))
        (self.root / "cli").mkdir()
        self.env = dict(
            os.environ,
            DOCKER_HOST=f"unix://{self.socket_path}",
            DOCKER_CONFIG=str(self.root / "cli"),
        )

    @staticmethod
    def available() -> bool:
        return os.access(DOCKERD, os.X_OK) and os.access(DOCKER_CLI, os.X_OK)

    def start(self) -> None:
        bridge_flag = "none"
        if self.bridge:
            if Path(f"/sys/class/net/{self.BRIDGE}").exists():
                raise RuntimeError(
                    f"interface {self.BRIDGE} exists already: not ours, not touching it"
                )
            for cmd in (
                ["ip", "link", "add", self.BRIDGE, "type", "bridge"],
                ["ip", "addr", "add", self.BRIDGE_ADDR, "dev", self.BRIDGE],
                ["ip", "link", "set", self.BRIDGE, "up"],
            ):
                output_of(cmd)
                self.made_bridge = True
            bridge_flag = self.BRIDGE
        (self.root / "daemon.json").write_text("{}")
        with open(self.log, "ab") as log:
            proc = subprocess.Popen(
                [
                    DOCKERD,
                    "--data-root",
                    str(self.root / "dd"),
                    "--exec-root",
                    str(self.root / "dx"),
                    "-H",
                    f"unix://{self.socket_path}",
                    "--pidfile",
                    str(self.root / "docker.pid"),
                    "--config-file",
                    str(self.root / "daemon.json"),
                    "--iptables=false",
                    "--ip-forward=false",
                    "--ip-masq=false",
                    f"--bridge={bridge_flag}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid = proc.pid
        _wait_for_ping(self.socket_path, self.pid, self.log, "dockerd")

    def import_busybox(self) -> None:
        output_of([DOCKER_CLI, "import", str(BUSYBOX_TAR), "busybox:latest"], env=self.env)

    def argv(self, *args: str) -> list[str]:
        return [DOCKER_CLI, *args]

    def daemon_memory(self) -> Memory:
        """dockerd plus the containerd it started (its child); shims are counted apart."""
        total = memory_of(self.pid)
        for child in children_of(self.pid):
            if os.path.basename((cmdline(child) or [""])[0]) == "containerd":
                total = total + memory_of(child)
        return total

    def containerd_pid(self) -> int:
        for child in children_of(self.pid):
            if os.path.basename((cmdline(child) or [""])[0]) == "containerd":
                return child
        return 0

    def shim_pids(self) -> list[int]:
        return processes_named("containerd-shim-runc-v2", containing=str(self.root))

    def stop(self) -> None:
        """Remove containers, stop dockerd (and its containerd) by pid, undo what it made."""
        if self.pid and Path(f"/proc/{self.pid}").exists():
            try:
                ids = output_of([DOCKER_CLI, "ps", "-aq"], env=self.env, timeout=30).split()
                if ids:
                    output_of([DOCKER_CLI, "rm", "-f", *ids], env=self.env, timeout=120)
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
            containerd = self.containerd_pid()
            stop_pid(self.pid)
            if containerd:
                stop_pid(containerd, timeout=10)
        for pid in self.shim_pids():
            stop_pid(pid, timeout=5)
        unmount_all_under(self.root)
        if self.made_bridge:
            subprocess.run(["ip", "link", "del", self.BRIDGE], capture_output=True, check=False)
        # dockerd 20.10 writes a trust key on first start; keep the host as we found it.
        if not self.had_trust_key:
            TRUST_KEY.unlink(missing_ok=True)
        for top in set(cgroup_dirs("docker")) - self.had_cgroups:
            remove_empty_cgroups(top)
        shutil.rmtree(self.root, ignore_errors=True)
