"""Networking against a real daemon: bridges, veths, netns, nft rules, ports and DNS.

Traffic goes only to 127.0.0.1, to the daemon's bridge addresses and to containers made here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import pytest

from tests.helpers.daemon import Daemon

pytestmark = [pytest.mark.runc, pytest.mark.root]


def net_config(d: Daemon) -> dict:
    return json.loads((d.root / "net.json").read_text())


def n_of(d: Daemon) -> int:
    return int(net_config(d)["link-prefix"][1:], 16)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(url: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def web(daemon: Daemon) -> Iterator[tuple[str, int]]:
    port = free_port()
    cid = ok(
        daemon.cli(
            "run", "-d", "-p", f"{port}:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc"
        )
    ).strip()
    yield cid, port
    daemon.cli("rm", "-f", cid)


def test_default_bridge_gives_address_route_hosts(daemon: Daemon) -> None:
    out = ok(
        daemon.cli(
            "run",
            "--rm",
            "--hostname",
            "box",
            "busybox",
            "sh",
            "-c",
            "ip -4 -o addr show eth0; ip route; cat /etc/hosts",
        )
    )
    n = n_of(daemon)
    assert f"inet 10.{n}.0." in out
    assert f"default via 10.{n}.0.1 dev eth0" in out
    assert "\tbox" in out
    assert not list((daemon.exec_root / "netns").glob("*"))


def test_network_none_and_host(daemon: Daemon) -> None:
    out = ok(daemon.cli("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link"))
    assert "lo" in out and "eth0" not in out
    out = ok(daemon.cli("run", "--rm", "--network", "host", "busybox", "ip", "-o", "link"))
    # The daemon's default bridge lives only in the host's namespace.
    assert f"{net_config(daemon)['default-bridge-name']}:" in out


def test_published_port_from_host_and_hairpin(daemon: Daemon, web: tuple[str, int]) -> None:
    cid, port = web
    assert fetch(f"http://127.0.0.1:{port}/hostname").strip() == cid[:12]
    # Hairpin: another container reaches it through the host's address on the bridge.
    gateway = f"10.{n_of(daemon)}.0.1"
    out = ok(
        daemon.cli(
            "run", "--rm", "busybox", "wget", "-q", "-O-", f"http://{gateway}:{port}/hostname"
        )
    )
    assert out.strip() == cid[:12]
    assert ok(daemon.cli("port", cid)).strip() == f"80/tcp -> 0.0.0.0:{port}"
    assert f"0.0.0.0:{port}->80/tcp" in ok(daemon.cli("ps"))
    _, info = daemon.request("GET", f"/containers/{cid}/json")
    assert info["NetworkSettings"]["Ports"] == {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]
    }
    assert info["NetworkSettings"]["IPAddress"].startswith(f"10.{n_of(daemon)}.0.")


def test_ephemeral_port_and_port_in_use(daemon: Daemon, web: tuple[str, int]) -> None:
    _, port = web
    cid = ok(daemon.cli("run", "-d", "-p", "80", "busybox", "httpd", "-f", "-p", "80")).strip()
    try:
        mapped = ok(daemon.cli("port", cid, "80")).strip()
        assert mapped.startswith("0.0.0.0:") and int(mapped.split(":")[1]) > 0
    finally:
        daemon.cli("rm", "-f", cid)
    before = sorted((daemon.exec_root / "netns").glob("*"))
    result = daemon.cli("run", "-d", "--name", "clash", "-p", f"{port}:80", "busybox", "sleep", "9")
    assert result.returncode != 0
    assert "port is already allocated" in result.stderr
    assert sorted((daemon.exec_root / "netns").glob("*")) == before
    daemon.cli("rm", "-f", "clash")


@pytest.mark.parametrize(
    ("spec", "message"),
    [("99999:80", "invalid hostPort: 99999"), ("abc", "invalid containerPort: abc")],
)
def test_bad_port_specs(daemon: Daemon, spec: str, message: str) -> None:
    result = daemon.cli("run", "--rm", "-p", spec, "busybox", "true")
    assert result.returncode != 0 and message in result.stderr
    status, body = daemon.request(
        "POST",
        "/containers/create",
        {"Image": "busybox", "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "99999"}]}}},
    )
    assert status == 400 and "invalid hostPort" in body["message"]


def test_user_network_dns_isolation_and_internal(daemon: Daemon) -> None:
    n = n_of(daemon)
    ok(daemon.cli("network", "create", "--subnet", f"10.{n}.1.0/24", "appnet"))
    ok(daemon.cli("network", "create", "--subnet", f"10.{n}.2.0/24", "othernet"))
    ok(daemon.cli("network", "create", "--internal", "--subnet", f"10.{n}.3.0/24", "inner"))
    try:
        ls = ok(daemon.cli("network", "ls"))
        assert ls.splitlines()[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
        assert "appnet" in ls and "bridge" in ls
        db = ok(
            daemon.cli(
                "run",
                "-d",
                "--name",
                "db",
                "--network",
                "appnet",
                "--network-alias",
                "database",
                "busybox",
                "nc",
                "-ll",
                "-p",
                "5000",
                "-e",
                "echo",
                "pong",
            )
        ).strip()
        db_ip = json.loads(ok(daemon.cli("inspect", db)))[0]["NetworkSettings"]["Networks"][
            "appnet"
        ]["IPAddress"]
        assert db_ip.startswith(f"10.{n}.1.")
        for name in ("db", "database", db[:12]):
            out = ok(daemon.cli("run", "--rm", "--network", "appnet", "busybox", "nslookup", name))
            assert db_ip in out, out
        out = ok(
            daemon.cli(
                "run",
                "--rm",
                "--network",
                "appnet",
                "busybox",
                "sh",
                "-c",
                "echo hi | nc -w 2 db 5000",
            )
        )
        assert "pong" in out
        # Another network neither resolves nor reaches it.
        other = daemon.cli("run", "--rm", "--network", "othernet", "busybox", "nslookup", "db")
        assert db_ip not in other.stdout
        blocked = daemon.cli(
            "run",
            "--rm",
            "--network",
            "othernet",
            "busybox",
            "sh",
            "-c",
            f"echo hi | nc -w 1 {db_ip} 5000",
        )
        assert "pong" not in blocked.stdout
        # Removing a network in use is refused.
        status, body = daemon.request("DELETE", "/networks/appnet")
        assert status == 409 and "active endpoints" in body["message"]
        # An internal network has no route out.
        out = ok(daemon.cli("run", "--rm", "--network", "inner", "busybox", "ip", "route"))
        assert "default" not in out
        daemon.cli("rm", "-f", db)
    finally:
        for name in ("appnet", "othernet", "inner"):
            daemon.cli("network", "rm", name)
    assert "appnet" not in ok(daemon.cli("network", "ls"))


def test_connect_disconnect_running_container(daemon: Daemon) -> None:
    n = n_of(daemon)
    ok(daemon.cli("network", "create", "--subnet", f"10.{n}.4.0/24", "joinnet"))
    cid = ok(daemon.cli("run", "-d", "busybox", "sleep", "60")).strip()
    try:
        ok(daemon.cli("network", "connect", "--ip", f"10.{n}.4.9", "joinnet", cid))
        out = ok(daemon.cli("exec", cid, "ip", "-4", "-o", "addr"))
        assert f"10.{n}.4.9/24" in out and "eth1" in out
        inspect = json.loads(ok(daemon.cli("network", "inspect", "joinnet")))[0]
        assert inspect["Containers"][cid]["IPv4Address"] == f"10.{n}.4.9/24"
        ok(daemon.cli("network", "disconnect", "joinnet", cid))
        assert "eth1" not in ok(daemon.cli("exec", cid, "ip", "-o", "link"))
    finally:
        daemon.cli("rm", "-f", cid)
        daemon.cli("network", "rm", "joinnet")


def test_bad_network_input(daemon: Daemon) -> None:
    n = n_of(daemon)
    cases = [
        (["--subnet", "10.1.2.3.4/24"], "Invalid subnet 10.1.2.3.4/24 : invalid CIDR address"),
        (["--subnet", f"10.{n}.5.0/24", "--gateway", f"10.{n}.6.1"], "outside"),
        (["--subnet", f"10.{n}.0.0/16"], "overlaps"),
    ]
    bridges = f"{net_config(daemon)['link-prefix']}br-"
    for flags, message in cases:
        result = daemon.cli("network", "create", *flags, "badnet")
        assert result.returncode != 0 and message in result.stderr, result.stderr
    links_after = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert bridges not in links_after
    ok(daemon.cli("network", "create", "--subnet", f"10.{n}.7.0/24", "dupnet"))
    try:
        result = daemon.cli("network", "create", "dupnet")
        assert result.returncode != 0 and "already exists" in result.stderr
    finally:
        daemon.cli("network", "rm", "dupnet")
    result = daemon.cli("network", "rm", "bridge")
    assert "pre-defined network" in result.stderr


@pytest.mark.slow
def test_kill_9_restart_keeps_ports_without_duplicate_rules() -> None:
    from tests.helpers.daemon import (
        build_prerequisites,
        import_busybox,
        leaks,
        remove_all_containers,
        remove_daemon_network,
        start_daemon,
        stop_daemon,
    )

    build_prerequisites()
    d = start_daemon()
    try:
        import_busybox(d)
        port = free_port()
        cid = ok(
            d.cli(
                "run", "-d", "-p", f"{port}:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc"
            )
        ).strip()
        assert fetch(f"http://127.0.0.1:{port}/hostname").strip() == cid[:12]
        table = net_config(d)["nft-table"]
        rules = subprocess.run(
            ["nft", "list", "table", "ip", table], capture_output=True, text=True
        )
        stop_daemon(d, kill=True)
        d = start_daemon(root=d.root)
        assert fetch(f"http://127.0.0.1:{port}/hostname").strip() == cid[:12]
        again = subprocess.run(
            ["nft", "list", "table", "ip", table], capture_output=True, text=True
        )
        assert again.stdout == rules.stdout
        assert again.stdout.count("dnat to") == 2
        assert ok(d.cli("port", cid)).strip() == f"80/tcp -> 0.0.0.0:{port}"
    finally:
        ids = remove_all_containers(d) if d.process.poll() is None else []
        stop_daemon(d)
        leaked = leaks(d, ids)
        remove_daemon_network(d)
        if not leaked:
            shutil.rmtree(d.root, ignore_errors=True)
    assert not leaked, leaked
