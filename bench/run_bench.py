"""Benchmark dockling against docker 20.10 and bare runc, side by side in one run.

Run as root from the repository:  .venv/bin/python bench/run_bench.py
It starts a docklingd, a dockerd (with its own containerd) and a runc bundle on
private temp paths, measures, prints a markdown report and writes it into
docs/benchmarks.md, and tears everything down by PID, also on failure or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from engines import BUSYBOX_TAR, REPO, RUNC, VENV_BIN, DockerEngine, DocklingEngine
from procs import (
    Memory,
    Summary,
    memory_of,
    mounts_under,
    output_of,
    remove_empty_cgroups,
    timed,
)
from report import Results, machine_facts, render, write_into
from runc_direct import ConmonMonitors, RuncFloor

DOC = REPO / "docs" / "benchmarks.md"
LABELS = {
    "floor": "runc run (overlay, no engine): the floor",
    "dockling_run": "dockling run --rm busybox true (default bridge)",
    "dockling_run_none": "dockling run --rm --network none busybox true",
    "docker_run_bridge": "docker run --rm busybox true (default bridge)",
    "docker_run_none": "docker run --rm --network none busybox true",
    "dockling_ps": "dockling ps",
    "docker_ps": "docker ps",
    "dockling_daemon": "docklingd",
    "docker_daemon": "dockerd + containerd",
    "dockling_shim": "dockling-shim",
    "docker_shim": "containerd-shim-runc-v2",
}
PREAMBLE = """# Benchmarks

`.venv/bin/python bench/run_bench.py` (as root, after `scripts/install --test`, which brings
Debian's docker.io) measures dockling side by side with docker 20.10 and bare runc in one run
and rewrites the block between the markers below. `--help` lists its options.
"""

Case = Callable[[], float]


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM/SIGHUP into an exception so that every teardown callback still runs.
    raise SystemExit(128 + signum)


def _teardown(cleanup: contextlib.ExitStack) -> None:
    """Run every teardown callback; a second Ctrl-C or SIGTERM must not cut one short."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    print("tearing down ...", file=sys.stderr)
    cleanup.close()


def _prerequisites() -> None:
    if os.geteuid() != 0:
        sys.exit("bench/run_bench.py: run as root (mounts, runc, dockerd)")
    subprocess.run(["make", "-s", "-C", str(REPO / "shim")], check=True)
    if not BUSYBOX_TAR.exists():
        subprocess.run([str(REPO / "scripts" / "build-test-images")], check=True)


def _rounds(
    cases: dict[str, Case], *, warmups: int, iterations: int, rng: random.Random
) -> dict[str, Summary]:
    """Run every case once per round in a shuffled order; keep the measured rounds."""
    samples: dict[str, list[float]] = {label: [] for label in cases}
    order = list(cases)
    for round_no in range(warmups + iterations):
        rng.shuffle(order)
        for label in order:
            elapsed = cases[label]()
            if round_no >= warmups:
                samples[label].append(elapsed)
    return {label: Summary.of(samples[label]) for label in cases}


def _settled_memory(measure: Callable[[], Memory]) -> Memory:
    # Give the daemons a moment to finish whatever the last request left (GC, flushes).
    time.sleep(2)
    return measure()


def _start_sleepers(
    argv: Callable[..., list[str]], env: dict[str, str], count: int, *, extra: tuple[str, ...] = ()
) -> None:
    for _ in range(count):
        output_of(argv("run", "-d", *extra, "busybox", "sleep", "3600"), env=env)


def _ps_case(argv: list[str], env: dict[str, str], expect_rows: int) -> Case:
    """A timed `ps`; the first call checks it really lists every container."""
    checked = False

    def run() -> float:
        nonlocal checked
        if not checked:
            rows = len(output_of(argv, env=env).strip().splitlines()) - 1
            if rows != expect_rows:
                raise RuntimeError(f"{' '.join(argv)} listed {rows} containers, not {expect_rows}")
            checked = True
        return timed(argv, env=env)

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20, help="measured rounds (default 20)")
    parser.add_argument(
        "--warmups", type=int, default=3, help="unmeasured rounds first (default 3)"
    )
    parser.add_argument("--containers", type=int, default=50, help="running containers for ps")
    parser.add_argument("--no-docker", action="store_true", help="measure dockling and runc only")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch the docs")
    parser.add_argument("--seed", type=int, default=1, help="seed of the round order shuffle")
    args = parser.parse_args()
    if not args.no_docker and not DockerEngine.available():
        sys.exit(
            "dockerd 20.10 not found: `scripts/install --test` brings docker.io; or --no-docker"
        )
    _prerequisites()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_sigterm)

    started = datetime.datetime.now(datetime.UTC)
    t0 = time.monotonic()
    results = Results(
        started=started,
        facts=machine_facts(REPO, VENV_BIN, RUNC),
        iterations=args.iterations,
        warmups=args.warmups,
        containers=args.containers,
    )
    load_start = Path("/proc/loadavg").read_text().split()[0]
    rng = random.Random(args.seed)

    cleanup = contextlib.ExitStack()
    try:
        floor = RuncFloor()
        cleanup.callback(floor.teardown)
        floor.prepare()

        dockling = DocklingEngine()
        cleanup.callback(dockling.stop)
        dockling.start()
        dockling.import_busybox()

        docker: DockerEngine | None = None
        if not args.no_docker:
            docker = DockerEngine(bridge=True)
            cleanup.callback(docker.stop)
            try:
                docker.start()
            except (RuntimeError, OSError) as e:
                # No bridge: measure docker with --bridge=none only, and say so.
                results.notes.append(f"dockerd with a bridge did not start ({e}); none only.")
                docker.stop()
                docker = DockerEngine(bridge=False)
                cleanup.callback(docker.stop)
                docker.start()
            docker.import_busybox()

        fresh = {LABELS["dockling_daemon"]: _settled_memory(dockling.daemon_memory)}
        if docker:
            fresh[LABELS["docker_daemon"]] = docker.daemon_memory()

        print("measuring run --rm ...", file=sys.stderr)
        run_cases: dict[str, Case] = {
            LABELS["floor"]: floor.run_once,
            LABELS["dockling_run"]: lambda: timed(
                dockling.argv("run", "--rm", "busybox", "true"), env=dockling.env
            ),
            LABELS["dockling_run_none"]: lambda: timed(
                dockling.argv("run", "--rm", "--network", "none", "busybox", "true"),
                env=dockling.env,
            ),
            "dockling --version": lambda: timed(dockling.argv("--version"), env=dockling.env),
        }
        if docker:
            d = docker
            if d.bridge:
                run_cases[LABELS["docker_run_bridge"]] = lambda: timed(
                    d.argv("run", "--rm", "busybox", "true"), env=d.env
                )
            run_cases[LABELS["docker_run_none"]] = lambda: timed(
                d.argv("run", "--rm", "--network", "none", "busybox", "true"), env=d.env
            )
            run_cases["docker --version"] = lambda: timed(d.argv("--version"), env=d.env)
        measured = _rounds(run_cases, warmups=args.warmups, iterations=args.iterations, rng=rng)
        for label, summary in measured.items():
            (results.client if label.endswith("--version") else results.run)[label] = summary
        left = mounts_under(dockling.root)
        if left:
            results.notes.append(
                f"after the `run --rm` rounds docklingd still had mounts: {left[:3]}"
            )

        print(f"starting {args.containers} sleepers per engine ...", file=sys.stderr)
        _start_sleepers(dockling.argv, dockling.env, args.containers)
        if docker:
            _start_sleepers(docker.argv, docker.env, args.containers, extra=("--network", "none"))
        conmon: ConmonMonitors | None = None
        if ConmonMonitors.available():
            conmon = ConmonMonitors()
            cleanup.callback(conmon.teardown)
            conmon.start(args.containers)
        else:
            results.notes.append("conmon not installed (`apt-get install conmon`): no conmon row.")
        time.sleep(2)
        results.shims[LABELS["dockling_shim"]] = [memory_of(p) for p in dockling.shim_pids()]
        if docker:
            results.shims[LABELS["docker_shim"]] = [memory_of(p) for p in docker.shim_pids()]
        if conmon:
            results.shims["conmon (over runc, no podman)"] = [memory_of(p) for p in conmon.pids()]

        print("measuring ps ...", file=sys.stderr)
        ps_cases = {
            LABELS["dockling_ps"]: _ps_case(dockling.argv("ps"), dockling.env, args.containers)
        }
        if docker:
            ps_cases[LABELS["docker_ps"]] = _ps_case(docker.argv("ps"), docker.env, args.containers)
        results.ps = _rounds(ps_cases, warmups=args.warmups, iterations=args.iterations, rng=rng)

        dockling.remove_all_containers()
        after = {LABELS["dockling_daemon"]: _settled_memory(dockling.daemon_memory)}
        if docker:
            output_of(
                docker.argv(
                    "rm", "-f", *output_of(docker.argv("ps", "-aq"), env=docker.env).split()
                ),
                env=docker.env,
            )
            after[LABELS["docker_daemon"]] = _settled_memory(docker.daemon_memory)
        results.idle = {label: (fresh[label], after[label]) for label in fresh}
        if docker and not docker.bridge:
            results.notes.append("dockerd ran with --bridge=none: no bridge figure.")
    finally:
        _teardown(cleanup)

    leaked = dockling.leaked_cgroups()
    if leaked:
        results.notes.append(
            f"dockling left {len(leaked)} cgroups of removed containers, e.g. "
            f"{leaked[0]}; the benchmark removed the empty ones"
        )
        for path in leaked:
            remove_empty_cgroups(path)
    results.load = (load_start, Path("/proc/loadavg").read_text().split()[0])
    results.seconds = time.monotonic() - t0
    generated = render(results, LABELS)
    print(generated)
    if not args.no_write:
        write_into(DOC, generated, PREAMBLE)
        print(f"written into {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
