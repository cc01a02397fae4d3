"""Networking benchmark (issue 6): docklingd against dockerd 20.10 on this machine.

    .venv/bin/python bench/net_bench.py [--runs N] [--throughput-runs N] [--seconds N]
        [--lookups N] [--no-docker] [--no-write]

Measures, per engine, interleaved run by run:
- `run --rm busybox true` with `--network none`, on the default bridge and on a user network
  (the cost of networking per container is bridge minus none);
- TCP throughput container to container on a user network and host to container through a
  port published on 127.0.0.1: iperf3 (apt-get install iperf3), one stream, the host's
  binary bind-mounted into busybox containers (busybox nc copies in small buffers and tops
  out near 40 MB/s, which would measure nc, not the network);
- DNS lookups per second from a container on a user network (busybox `nslookup` of another
  container's name in a loop, run with `exec`).

dockerd runs as bench/engines.py starts it: --iptables=false --ip-forward=false
--ip-masq=false and a bridge this script makes and deletes, so it changes no firewall rule.
Its published ports on 127.0.0.1 go through docker-proxy either way (Docker's DNAT rules skip
loopback), so the host-to-container row measures what a default dockerd does.  docklingd runs
on its own bridge, link prefix, subnet and nft table; its table and bridge are deleted after.
Traffic goes only to 127.0.0.1 and to addresses of the containers made here.  The results
replace the marked net-bench section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sections
from engines import DockerEngine, DocklingEngine
from procs import CommandFailed, output_of, timed

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "benchmarks.md"
BEGIN = "<!-- net-bench:begin: written by bench/net_bench.py -->"
END = "<!-- net-bench:end -->"

# dockling's private names and addresses for this run (no clash with a running docklingd).
DL_CONFIG = {
    "default-bridge-name": "dlnb0",
    "link-prefix": "nb",
    "nft-table": "dockling_nb",
    "bip": "10.231.0.1/24",
    "default-address-pools": [{"base": "10.231.128.0/17", "size": 24}],
}
DL_USER_SUBNET = "10.231.1.0/24"
DOCKER_USER_SUBNET = "172.31.253.0/24"
NET = "nbnet"
PORT = 5001


class NetDocklingEngine(DocklingEngine):
    """A docklingd with this benchmark's own bridge, link prefix, subnet and nft table."""

    config: dict[str, object] = DL_CONFIG


Engine = NetDocklingEngine | DockerEngine


def cli(engine: Engine, *args: str, timeout: float = 120) -> str:
    return output_of(engine.argv(*args), env=engine.env, timeout=timeout).strip()


def container_ip(engine: Engine, cid: str, network: str) -> str:
    data = json.loads(cli(engine, "inspect", cid))[0]
    return str(data["NetworkSettings"]["Networks"][network]["IPAddress"])


def wait_listening(engine: Engine, cid: str, port: int) -> None:
    """Until `nc -l` in the container has its socket (read from the container's netstat)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        out = cli(engine, "exec", cid, "netstat", "-ltn")
        if f":{port} " in out:
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} in {cid[:12]}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_cost(engine: Engine, mode: str) -> float:
    args = ["run", "--rm"] + (["--network", mode] if mode else []) + ["busybox", "true"]
    return timed(engine.argv(*args), env=engine.env)


# iperf3 (Debian's, dynamically linked) run inside busybox containers: the host's binary and
# library directory bind-mounted read-only, the loader where the binary expects it.
IPERF = "/usr/bin/iperf3"
LIBDIR = "/usr/lib/x86_64-linux-gnu"
IPERF_MOUNTS = (
    "-v",
    f"{IPERF}:{IPERF}:ro",
    "-v",
    f"{LIBDIR}:{LIBDIR}:ro",
    "-v",
    f"{LIBDIR}/ld-linux-x86-64.so.2:/lib64/ld-linux-x86-64.so.2:ro",
    "-e",
    f"LD_LIBRARY_PATH={LIBDIR}",
)


def _iperf_rate(report: str) -> float:
    """MB/s the receiver saw, from iperf3 -J output."""
    data = json.loads(report)
    return float(data["end"]["sum_received"]["bits_per_second"]) / 8e6


def start_iperf_server(engine: Engine, host_port: int) -> tuple[str, str]:
    """An `iperf3 -s` container on the user network, its port published on 127.0.0.1."""
    cid = cli(
        engine,
        "run",
        "-d",
        "--network",
        NET,
        "-p",
        f"127.0.0.1:{host_port}:{PORT}",
        *IPERF_MOUNTS,
        "busybox",
        IPERF,
        "-s",
        "-p",
        str(PORT),
    )
    wait_listening(engine, cid, PORT)
    return cid, container_ip(engine, cid, NET)


def c2c_throughput(engine: Engine, server_ip: str, seconds: int) -> float:
    """MB/s of one TCP stream between two containers on the user network."""
    report = cli(
        engine,
        "run",
        "--rm",
        "--network",
        NET,
        *IPERF_MOUNTS,
        "busybox",
        IPERF,
        "-c",
        server_ip,
        "-p",
        str(PORT),
        "-t",
        str(seconds),
        "-J",
    )
    return _iperf_rate(report)


def host_throughput(host_port: int, seconds: int) -> float:
    """MB/s of one TCP stream from the host to 127.0.0.1:host_port, published to the server."""
    report = output_of(
        [IPERF, "-c", "127.0.0.1", "-p", str(host_port), "-t", str(seconds), "-J"], timeout=60
    )
    return _iperf_rate(report)


def dns_rate(engine: Engine, client: str, lookups: int) -> float:
    """Lookups per second of the peer's name from `client`, exec overhead included."""
    script = (
        f"i=0; while [ $i -lt {lookups} ]; do nslookup peer >/dev/null || exit 1; i=$((i+1)); done"
    )
    return lookups / timed(engine.argv("exec", client, "sh", "-c", script), env=engine.env)


def setup_user_network(engine: Engine, subnet: str) -> tuple[str, str]:
    cli(engine, "network", "create", "--subnet", subnet, NET)
    peer = cli(engine, "run", "-d", "--name", "peer", "--network", NET, "busybox", "sleep", "1d")
    client = cli(engine, "run", "-d", "--network", NET, "busybox", "sleep", "1d")
    out = cli(engine, "exec", client, "nslookup", "peer")
    if container_ip(engine, peer, NET) not in out:
        raise RuntimeError(f"name resolution does not work: {out}")
    return peer, client


def teardown_user_network(engine: Engine) -> None:
    try:
        ids = cli(engine, "ps", "-aq").split()
        if ids:
            cli(engine, "rm", "-f", *ids)
        cli(engine, "network", "rm", NET)
    except (CommandFailed, subprocess.TimeoutExpired) as exc:
        print(f"cleanup of {NET}: {exc}", file=sys.stderr)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def measure(
    args: argparse.Namespace, engines: dict[str, Engine]
) -> dict[str, dict[str, list[float]]]:
    results: dict[str, dict[str, list[float]]] = {name: {} for name in engines}

    def record(name: str, key: str, fn: Callable[[], float]) -> None:
        results[name].setdefault(key, []).append(fn())

    clients, servers, ports = {}, {}, {}
    for name, engine in engines.items():
        subnet = DL_USER_SUBNET if name == "dockling" else DOCKER_USER_SUBNET
        _peer, clients[name] = setup_user_network(engine, subnet)
        ports[name] = free_port()
        servers[name] = start_iperf_server(engine, ports[name])[1]
    # Warm-up: one of each, not recorded.
    for engine in engines.values():
        for mode in ("none", "", NET):
            run_cost(engine, mode)
    for _ in range(args.runs):
        for name, engine in engines.items():
            for key, mode in (("none", "none"), ("bridge", ""), ("user", NET)):
                record(name, f"run_{key}", lambda e=engine, m=mode: run_cost(e, m))
    for _ in range(args.throughput_runs):
        for name, engine in engines.items():
            record(
                name, "c2c", lambda e=engine, n=name: c2c_throughput(e, servers[n], args.seconds)
            )
            record(name, "host", lambda n=name: host_throughput(ports[n], args.seconds))
            record(name, "dns", lambda e=engine, n=name: dns_rate(e, clients[n], args.lookups))
    return results


def machine() -> str:
    kernel = os.uname().release
    load = os.getloadavg()[0]
    return f"{os.cpu_count()} cores, kernel {kernel}, load average at the end {load:.1f}"


NOTES = [
    "Notes:",
    "",
    "- The per-container cost is small next to the run's own time, and the medians move by "
    "tens of ms with the machine's load (other test runs share its 2 cores): read the two "
    "cost rows as 'no more than Docker', not as exact figures.",
    "- Throughput runs are bimodal on 2 cores (sender, receiver and softirq work land on the "
    "same or different cores), hence the medians of several runs.",
    "- DNS: each lookup is a busybox `nslookup` process (A and AAAA questions), so the rate "
    "includes a fork and exec per lookup; both engines pay that equally.",
    "",
]


def render(results: dict[str, dict[str, list[float]]], args: argparse.Namespace) -> str:
    dl, dk = results["dockling"], results.get("docker", {})

    def ms(values: list[float]) -> float:
        return median(values) * 1000

    lines = [
        "## Networking (issue 6)",
        "",
        f"`bench/net_bench.py --runs {args.runs} --throughput-runs {args.throughput_runs} "
        f"--seconds {args.seconds} --lookups {args.lookups}`: docklingd against dockerd 20.10 "
        f"(Debian docker.io) on this machine ({machine()}), engines interleaved run by run; "
        "medians.  dockerd runs with --iptables=false --ip-forward=false --ip-masq=false on a "
        "bridge the script makes (bench/engines.py), so it changes no firewall rule; its "
        "127.0.0.1 published ports go through docker-proxy, as they do in a default dockerd "
        "(Docker's DNAT rules skip loopback).  dockling publishes with nftables DNAT and "
        "route_localnet, no proxy process.  Throughput: iperf3 3.12, one TCP stream, "
        "the receiver's rate.",
        "",
        "| measure | dockling | docker | dockling / docker |",
        "|---|---:|---:|---:|",
    ]

    def row(label: str, a: float, b: float | None, fmt: str = "{:.0f}") -> None:
        ratio = f"{a / b:.2f}x" if b else "-"
        lines.append(f"| {label} | {fmt.format(a)} | {fmt.format(b) if b else '-'} | {ratio} |")

    for key, label in (
        ("run_none", "`run --rm busybox true`, `--network none`, ms"),
        ("run_bridge", "`run --rm busybox true`, default bridge, ms"),
        ("run_user", "`run --rm busybox true`, user network, ms"),
    ):
        row(label, ms(dl[key]), ms(dk[key]) if key in dk else None)
    for key, label in (("bridge", "default bridge"), ("user", "user network")):
        a = ms(dl[f"run_{key}"]) - ms(dl["run_none"])
        b = ms(dk[f"run_{key}"]) - ms(dk["run_none"]) if dk else None
        lines.append(
            f"| networking cost per container, {label}, ms (median minus none) | {a:.0f} | "
            f"{f'{b:.0f}' if b is not None else '-'} | {'-' if not b else f'{a / b:.2f}x'} |"
        )
    row(
        "TCP container to container (user network), MB/s",
        median(dl["c2c"]),
        median(dk["c2c"]) if dk else None,
    )
    row(
        "TCP host to container via 127.0.0.1 published port, MB/s",
        median(dl["host"]),
        median(dk["host"]) if dk else None,
    )
    row(
        "DNS lookups of a container name from a container, per s",
        median(dl["dns"]),
        median(dk["dns"]) if dk else None,
    )
    lines += ["", "Runs (dockling / docker):", ""]
    for key in ("c2c", "host", "dns"):
        a = ", ".join(f"{v:.0f}" for v in dl[key])
        b = ", ".join(f"{v:.0f}" for v in dk.get(key, []))
        lines.append(f"- {key}: {a} / {b}")
    lines += ["", *NOTES]
    return "\n".join(lines)


def write_section(report: str) -> None:
    """Replace the net-bench section of docs/benchmarks.md (or append it the first time)."""
    sections.write_section(OUT, BEGIN, END, report)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="run --rm samples per mode")
    parser.add_argument("--throughput-runs", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3, help="seconds per iperf3 run")
    parser.add_argument("--lookups", type=int, default=500, help="lookups per DNS sample")
    parser.add_argument("--no-docker", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root", file=sys.stderr)
        return 2
    engines: dict[str, Engine] = {"dockling": NetDocklingEngine()}
    if not args.no_docker and DockerEngine.available():
        engines["docker"] = DockerEngine(bridge=True)
    try:
        for engine in engines.values():
            engine.start()
            engine.import_busybox()
        results = measure(args, engines)
    finally:
        for engine in engines.values():
            if engine.pid:
                teardown_user_network(engine)
            engine.stop()
    report = render(results, args)
    print(report)
    if not args.no_write:
        write_section(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
