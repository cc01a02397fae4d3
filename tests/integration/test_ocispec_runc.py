"""build_spec output run by the real runc: what the container sees from the inside."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from dockling.containers.spec import ContainerSpec, Resources
from dockling.mount import Mount
from dockling.runtime import cgroups
from dockling.runtime.defaults import CAPABILITIES, DEFAULT_CAPABILITIES, host_capabilities
from dockling.runtime.ocispec import ProcessConfig, build_exec_process, build_spec
from dockling.runtime.users import resolve_user
from tests.helpers.daemon import CACHE

pytestmark = [pytest.mark.root, pytest.mark.runc]

ROOTFS_TAR = CACHE / "busybox-rootfs.tar"
CGROUP_PARENT = "/dockling-test-ocispec"  # not shared with other test modules


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.geteuid() != 0:
        pytest.fail("these tests need root")
    if shutil.which("runc") is None:
        pytest.fail("runc is not installed")
    if not ROOTFS_TAR.exists():
        pytest.fail(f"{ROOTFS_TAR} is missing: run scripts/build-test-images")
    root = tmp_path_factory.mktemp("busybox") / "rootfs"
    root.mkdir()
    # GNU tar keeps owners and modes, and is faster than tarfile for 400 symlinks.
    subprocess.run(["tar", "-xf", str(ROOTFS_TAR), "-C", str(root)], check=True)
    # The tarball records "./" as 0700 (scripts/build-test-images tars a mktemp -d);
    # images have a 0755 root, and a non-root process needs to traverse it.
    root.chmod(0o755)
    return root


@dataclass
class Runner:
    rootfs: Path
    workdir: Path
    started: list[tuple[str, str]]  # (runc root, container id)

    def config(
        self,
        spec: ContainerSpec,
        args: tuple[str, ...],
        cid: str,
        rootfs: Path | None = None,
        mounts: tuple[Mount, ...] = (),
    ) -> dict[str, object]:
        rootfs = rootfs or self.rootfs
        uid, gid, groups = resolve_user(spec.user, str(rootfs))
        process = ProcessConfig(
            args=args,
            env=spec.env,
            cwd="/",
            uid=uid,
            gid=gid,
            additional_gids=groups,
            terminal=False,
        )
        return build_spec(
            container_id=cid,
            spec=spec,
            process=process,
            rootfs=str(rootfs),
            mounts=mounts,
            hostname=cid[:12],
            netns_path=None,
            cgroup_parent=CGROUP_PARENT,
        )

    def _bundle(
        self,
        spec: ContainerSpec,
        args: tuple[str, ...],
        rootfs: Path | None = None,
        mounts: tuple[Mount, ...] = (),
    ) -> tuple[str, str, Path]:
        cid = "ocispec-" + uuid.uuid4().hex[:12]
        state = self.workdir / f"state-{cid}"
        bundle = self.workdir / f"bundle-{cid}"
        bundle.mkdir()
        (bundle / "config.json").write_text(
            json.dumps(self.config(spec, args, cid, rootfs, mounts))
        )
        self.started.append((str(state), cid))
        return str(state), cid, bundle

    def run(
        self,
        spec: ContainerSpec,
        *args: str,
        rootfs: Path | None = None,
        mounts: tuple[Mount, ...] = (),
    ) -> subprocess.CompletedProcess[str]:
        """Run to completion; stdout and stderr captured."""
        state, cid, bundle = self._bundle(spec, args, rootfs, mounts)
        return subprocess.run(
            ["runc", "--root", state, "run", "--bundle", str(bundle), cid],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )

    def start_detached(self, spec: ContainerSpec, *args: str) -> str:
        """Start in the background; returns the container id."""
        state, cid, bundle = self._bundle(spec, args)
        subprocess.run(
            ["runc", "--root", state, "run", "--detach", "--bundle", str(bundle), cid],
            check=True,
            # The container inherits these: a pipe would stay open until it exits.
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
        return cid


@pytest.fixture
def runner(rootfs: Path, tmp_path: Path) -> Iterator[Runner]:
    r = Runner(rootfs, tmp_path, [])
    try:
        yield r
    finally:
        for state, cid in r.started:
            subprocess.run(
                ["runc", "--root", state, "delete", "--force", cid],
                capture_output=True,
                timeout=30,
            )
            cgroups.remove_cgroups(f"{CGROUP_PARENT}/{cid}")
        for d in cgroups.cgroup_dirs(CGROUP_PARENT):
            try:
                os.rmdir(d)
            except OSError:
                pass  # another worker's container still lives there


def _busybox(**kw: object) -> ContainerSpec:
    return replace(ContainerSpec(image="busybox"), **kw)  # type: ignore[arg-type]


def _cap_mask(names: tuple[str, ...]) -> int:
    return sum(1 << CAPABILITIES.index(n) for n in names)


def test_default_capabilities_inside(runner: Runner) -> None:
    result = runner.run(_busybox(), "cat", "/proc/self/status")
    assert result.returncode == 0, result.stderr
    fields = dict(line.split(":\t", 1) for line in result.stdout.splitlines() if ":\t" in line)
    assert int(fields["CapEff"], 16) == _cap_mask(DEFAULT_CAPABILITIES)
    assert int(fields["CapBnd"], 16) == _cap_mask(DEFAULT_CAPABILITIES)
    assert int(fields["CapInh"], 16) == 0
    assert fields["Seccomp"].strip() == "2"


def test_env_and_hostname(runner: Runner) -> None:
    result = runner.run(_busybox(env=("FOO=bar",)), "sh", "-c", "env; hostname")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in lines
    assert "FOO=bar" in lines
    hostname = lines[-1]
    assert f"HOSTNAME={hostname}" in lines


def test_memory_and_pids_limits_visible(runner: Runner) -> None:
    spec = _busybox(resources=Resources(memory=64 * 1024 * 1024, pids_limit=50))
    result = runner.run(
        spec,
        "cat",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes",
        "/sys/fs/cgroup/pids/pids.max",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["67108864", str(2 * 67108864), "50"]


def test_masked_and_readonly_paths(runner: Runner) -> None:
    # This kernel has no /proc/kcore; /proc/timer_list and /sys/firmware stand in.
    result = runner.run(
        _busybox(),
        "sh",
        "-c",
        "wc -c < /proc/timer_list; ls /sys/firmware | wc -l;"
        " echo 1 > /proc/sys/kernel/domainname && echo WROTE",
    )
    assert result.stdout.split()[:2] == ["0", "0"], result.stderr
    assert "WROTE" not in result.stdout
    assert "Read-only file system" in result.stderr


def test_privileged_has_no_masks_and_all_caps(runner: Runner) -> None:
    result = runner.run(
        _busybox(privileged=True),
        "sh",
        "-c",
        "grep -E 'CapEff|Seccomp:' /proc/self/status; ls /sys/firmware | wc -l",
    )
    assert result.returncode == 0, result.stderr
    fields = dict(line.split(":\t", 1) for line in result.stdout.splitlines() if ":\t" in line)
    assert fields["Seccomp"] == "0"
    assert int(fields["CapEff"], 16) == _cap_mask(host_capabilities())
    assert result.stdout.split()[-1] != "0"


def test_seccomp_blocks_unshare_and_mount(runner: Runner) -> None:
    result = runner.run(
        _busybox(cap_add=("SYS_ADMIN",), security_opt=()),
        "sh",
        "-c",
        "echo ok; unshare -U true && echo UNSHARED",
    )
    # With CAP_SYS_ADMIN Docker's profile allows unshare.
    assert "UNSHARED" in result.stdout, result.stderr
    result = runner.run(
        _busybox(),
        "sh",
        "-c",
        "ls / >/dev/null && echo LS; unshare -U true && echo UNSHARED;"
        " mount -t tmpfs t /mnt && echo MOUNTED",
    )
    assert "LS" in result.stdout
    assert "UNSHARED" not in result.stdout
    assert "MOUNTED" not in result.stdout
    assert "Operation not permitted" in result.stderr


def test_seccomp_unconfined(runner: Runner) -> None:
    result = runner.run(
        _busybox(security_opt=("seccomp=unconfined",)), "grep", "Seccomp:", "/proc/self/status"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["Seccomp:", "0"]


def test_user_nobody(runner: Runner) -> None:
    result = runner.run(_busybox(user="nobody"), "id")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("uid=65534(nobody) gid=65534(nogroup)")


def test_root_has_wheel_group(runner: Runner) -> None:
    result = runner.run(_busybox(), "id")
    assert result.returncode == 0, result.stderr
    assert "10(wheel)" in result.stdout


def test_read_stats_of_running_container(runner: Runner) -> None:
    cid = runner.start_detached(
        _busybox(resources=Resources(memory=32 * 1024 * 1024)), "sleep", "30"
    )
    path = f"{CGROUP_PARENT}/{cid}"
    deadline = time.monotonic() + 5
    stats = cgroups.read_stats(path)
    while stats["pids_stats"]["current"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
        stats = cgroups.read_stats(path)
    assert stats["pids_stats"]["current"] >= 1
    assert stats["memory_stats"]["usage"] > 0
    assert stats["memory_stats"]["limit"] == 32 * 1024 * 1024
    assert stats["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert stats["cpu_stats"]["system_cpu_usage"] > 0
    assert stats["cpu_stats"]["online_cpus"] >= 1
    assert "cache" in stats["memory_stats"]["stats"]
    assert cgroups.freezer_state(path) == "THAWED"


def test_debian_userland_runs_under_default_seccomp(runner: Runner, tmp_path: Path) -> None:
    """The host's own Debian /usr (python, apt, dpkg, bash) bound read-only into a rootfs."""
    if not os.path.exists("/usr/bin/apt-get") or not os.path.islink("/bin"):
        pytest.fail("this test expects a merged-/usr Debian host")
    rootfs = tmp_path / "debian"
    for d in ("usr", "etc", "var/lib/dpkg", "var/lib/apt", "var/cache/apt", "tmp", "root"):
        (rootfs / d).mkdir(parents=True)
    for link in ("bin", "lib", "lib64", "sbin"):
        os.symlink(f"usr/{link}", rootfs / link)
    binds = ("usr", "etc", "var/lib/dpkg", "var/lib/apt", "var/cache/apt")
    mounts = tuple(Mount("bind", f"/{d}", f"/{d}", ("rbind", "ro")) for d in binds)
    script = (
        "python3 -c 'import subprocess, socket, asyncio, multiprocessing;"
        " socket.socket().close();"
        ' print(subprocess.run(["true"]).returncode, multiprocessing.Pool(2).map(abs, [-1]))\';'
        " apt-get -s install hello >/dev/null && echo APT;"
        " dpkg -s bash >/dev/null && echo DPKG;"
        " ps aux >/dev/null && echo PS"
    )
    result = runner.run(_busybox(), "/bin/bash", "-c", script, rootfs=rootfs, mounts=mounts)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "[1]", "APT", "DPKG", "PS"], result.stderr


def test_exec_process_json(runner: Runner, tmp_path: Path) -> None:
    cid = runner.start_detached(_busybox(), "sleep", "30")
    state = next(st for st, c in runner.started if c == cid)
    process = build_exec_process(
        args=("sh", "-c", "id -u; grep -E '^(CapEff|Seccomp):' /proc/self/status; echo $FOO"),
        env=("FOO=from-exec",),
        cwd="/tmp",
        uid=65534,
        gid=65534,
        additional_gids=(),
        terminal=False,
        privileged=False,
        cap_add=("NET_ADMIN",),
        cap_drop=(),
        no_new_privileges=True,
    )
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))
    result = subprocess.run(
        ["runc", "--root", state, "exec", "--process", str(path), cid],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "65534", result.stderr
    # A non-root exec keeps no effective capabilities (no ambient set), as in Docker.
    assert lines[1].split() == ["CapEff:", "0000000000000000"]
    assert lines[2].split() == ["Seccomp:", "2"]
    assert lines[3] == "from-exec"
