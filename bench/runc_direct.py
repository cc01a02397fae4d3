"""Containers run by runc with no engine: the floor of `run`, and conmon as a monitor.

`RuncFloor` is the busybox rootfs run by bare `runc run` on a fresh overlay per
run; `ConmonMonitors` keeps `sleep` containers under conmon for the per-container
monitor memory comparison.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from engines import BUSYBOX_TAR, RUNC
from procs import (
    mount_overlay,
    output_of,
    processes_named,
    timed,
    unmount,
    unmount_all_under,
)


class RuncFloor:
    """The same busybox rootfs run by bare `runc run` on a fresh overlay: the floor.

    One timed run = mkdir upper/work, mount(2) the overlay, `runc run` `true`,
    umount, remove upper/work: what an engine cannot avoid, with no daemon,
    no client, no logs, no state.
    """

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="dlbr", dir="/tmp"))
        self.lower = self.root / "lower"
        self.merged = self.root / "bundle" / "rootfs"
        self.state = self.root / "runc"
        self.count = 0

    def prepare(self) -> None:
        self.lower.mkdir()
        self.merged.mkdir(parents=True)
        output_of(["tar", "-C", str(self.lower), "-xf", str(BUSYBOX_TAR)])
        output_of([RUNC, "spec", "--bundle", str(self.root / "bundle")])
        config_path = self.root / "bundle" / "config.json"
        config = json.loads(config_path.read_text())
        config["process"]["args"] = ["true"]
        config["process"]["terminal"] = False
        config["root"] = {"path": str(self.merged), "readonly": False}
        config_path.write_text(json.dumps(config))

    def run_once(self) -> float:
        self.count += 1
        upper, work = self.root / f"u{self.count}", self.root / f"w{self.count}"
        start = time.perf_counter()
        upper.mkdir()
        work.mkdir()
        mount_overlay(self.merged, lower=self.lower, upper=upper, work=work)
        try:
            timed(
                [
                    RUNC,
                    "--root",
                    str(self.state),
                    "run",
                    "--bundle",
                    str(self.root / "bundle"),
                    f"dlbench-{os.getpid()}-{self.count}",
                ]
            )
        finally:
            unmount(str(self.merged))
            shutil.rmtree(upper)
            shutil.rmtree(work)
        return time.perf_counter() - start

    def teardown(self) -> None:
        if self.state.exists():
            listing = subprocess.run(
                [RUNC, "--root", str(self.state), "list", "-q"], capture_output=True, check=False
            )
            for cid in listing.stdout.decode().split():
                subprocess.run(
                    [RUNC, "--root", str(self.state), "delete", "--force", cid],
                    capture_output=True,
                    check=False,
                )
        unmount_all_under(self.root)
        shutil.rmtree(self.root, ignore_errors=True)


class ConmonMonitors:
    """conmon (podman's per-container monitor) over runc, for the monitor-memory comparison.

    No podman here (its default runtime refuses this host's hybrid cgroups), so
    conmon is driven directly: one bundle per container, all on one shared
    overlay rootfs, each `sleep`ing; measured only if /usr/bin/conmon exists.
    """

    BINARY = "/usr/bin/conmon"

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="dlbc", dir="/tmp"))
        self.state = self.root / "runc"
        self.ids: list[str] = []

    @classmethod
    def available(cls) -> bool:
        return os.access(cls.BINARY, os.X_OK)

    def start(self, count: int) -> None:
        lower, upper, work = self.root / "lower", self.root / "upper", self.root / "work"
        merged = self.root / "rootfs"
        for d in (lower, upper, work, merged, self.root / "exits", self.root / "socks"):
            d.mkdir()
        output_of(["tar", "-C", str(lower), "-xf", str(BUSYBOX_TAR)])
        mount_overlay(merged, lower=lower, upper=upper, work=work)
        template = self.root / "template"
        output_of([RUNC, "spec", "--bundle", str(template.parent)])
        (self.root / "config.json").rename(template)
        config = json.loads(template.read_text())
        config["process"].update(args=["sleep", "3600"], terminal=False)
        config["root"] = {"path": str(merged), "readonly": False}
        for n in range(count):
            cid = f"dlbc{os.getpid()}-{n}"
            bundle = self.root / "bundles" / cid
            bundle.mkdir(parents=True)
            (bundle / "config.json").write_text(json.dumps(config))
            # conmon forks into the background once it has asked runc to create.
            output_of(
                [
                    self.BINARY,
                    "--api-version",
                    "1",
                    "-c",
                    cid,
                    "-u",
                    cid,
                    "-n",
                    cid,
                    "-r",
                    RUNC,
                    "-b",
                    str(bundle),
                    "-p",
                    str(bundle / "ctr.pid"),
                    "-P",
                    str(bundle / "conmon.pid"),
                    "-l",
                    f"k8s-file:{bundle / 'ctr.log'}",
                    "--exit-dir",
                    str(self.root / "exits"),
                    "--socket-dir-path",
                    str(self.root / "socks"),
                    "--runtime-arg",
                    "--root",
                    "--runtime-arg",
                    str(self.state),
                    "--log-level",
                    "error",
                ]
            )
            self.ids.append(cid)
            self._wait_created(cid)
            output_of([RUNC, "--root", str(self.state), "start", cid])

    def _wait_created(self, cid: str) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            state = subprocess.run(
                [RUNC, "--root", str(self.state), "state", cid], capture_output=True, check=False
            )
            if state.returncode == 0 and json.loads(state.stdout)["status"] == "created":
                return
            time.sleep(0.005)
        raise RuntimeError(f"conmon did not create {cid} within 10 s")

    def pids(self) -> list[int]:
        return processes_named("conmon", containing=str(self.root))

    def teardown(self) -> None:
        """Kill and delete the containers (their conmons then exit), then unmount and remove."""
        if self.state.exists():
            listing = subprocess.run(
                [RUNC, "--root", str(self.state), "list", "-q"], capture_output=True, check=False
            )
            for cid in listing.stdout.decode().split():
                subprocess.run(
                    [RUNC, "--root", str(self.state), "delete", "--force", cid],
                    capture_output=True,
                    check=False,
                )
        # A conmon exits once its container is gone; it forwards SIGTERM to the container
        # rather than exiting, so one still there after a few seconds gets SIGKILL.
        deadline = time.monotonic() + 5
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        unmount_all_under(self.root)
        shutil.rmtree(self.root, ignore_errors=True)
