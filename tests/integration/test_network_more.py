"""Networking details: DNS forwarding, /etc/hosts on connect, ps --filter network,
container:ID mode, inspect of stopped containers, subnets clear of host routes.

Traffic goes only to 127.0.0.0/8, to the daemon's bridge addresses and to containers made here.
"""

from __future__ import annotations

import json
import random
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest

from dockling.network.dns import message
from tests.helpers.daemon import Daemon
from tests.integration.test_network import n_of, net_config, ok

pytestmark = [pytest.mark.runc, pytest.mark.root]

FAKE_ANSWER = "192.0.2.77"  # TEST-NET-1: only ever an answer, never contacted


class TinyResolver:
    """A UDP DNS server on a loopback address answering every A question with FAKE_ANSWER."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(50):
            self.address = f"127.{random.randint(100, 250)}.{random.randint(1, 250)}.53"
            try:
                self.sock.bind((self.address, 53))
                break
            except OSError:
                continue
        else:
            raise RuntimeError("no free loopback address for the test resolver")
        self.sock.settimeout(0.2)
        self.questions: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            question = message.parse_question(data)
            if question is None:
                continue
            self.questions.append(question.name)
            addresses = [FAKE_ANSWER] if question.qtype == message.TYPE_A else []
            self.sock.sendto(message.answer(data, question, addresses), addr)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def resolver() -> Iterator[TinyResolver]:
    server = TinyResolver()
    yield server
    server.close()


def test_dns_forwards_other_names_to_daemon_json_dns(resolver: TinyResolver) -> None:
    from tests.helpers.daemon import (
        import_busybox,
        leaks,
        remove_all_containers,
        remove_all_networks,
        remove_daemon_network,
        start_daemon,
        stop_daemon,
    )

    d = start_daemon(extra_config={"dns": [resolver.address]})
    try:
        import_busybox(d)
        n = n_of(d)
        ok(d.cli("network", "create", "--subnet", f"10.{n}.9.0/24", "fwdnet"))
        out = ok(
            d.cli("run", "--rm", "--network", "fwdnet", "busybox", "nslookup", "far.example.test")
        )
        assert FAKE_ANSWER in out, out
        assert any(q.rstrip(".").startswith("far.example.test") for q in resolver.questions)
        # Container names are still answered by the daemon, not forwarded.
        before = len(resolver.questions)
        cid = ok(
            d.cli("run", "-d", "--name", "near", "--network", "fwdnet", "busybox", "sleep", "30")
        )
        out = ok(d.cli("run", "--rm", "--network", "fwdnet", "busybox", "nslookup", "near"))
        assert f"10.{n}.9." in out and FAKE_ANSWER not in out
        assert not any(q.startswith("near") for q in resolver.questions[before:])
        d.cli("rm", "-f", cid.strip())
        # On the default bridge the daemon's dns goes into resolv.conf as Docker does.
        out = ok(d.cli("run", "--rm", "busybox", "cat", "/etc/resolv.conf"))
        assert f"nameserver {resolver.address}" in out
    finally:
        ids = remove_all_containers(d) if d.process.poll() is None else []
        if d.process.poll() is None:
            remove_all_networks(d)
        stop_daemon(d)
        leaked = leaks(d, ids)
        remove_daemon_network(d)
        if not leaked:
            shutil.rmtree(d.root, ignore_errors=True)
    assert not leaked, leaked


def test_bad_daemon_json_dns_is_refused() -> None:
    from dockling import errors
    from dockling.daemon.config import network_settings

    with pytest.raises(errors.InvalidParameter, match="not an IPv4 address"):
        network_settings({"dns": ["resolver.example"]})
    assert network_settings({"dns": ["127.0.0.53"]}).dns == ("127.0.0.53",)


def test_connect_adds_and_disconnect_removes_hosts_entry(daemon: Daemon) -> None:
    n = n_of(daemon)
    ok(daemon.cli("network", "create", "--subnet", f"10.{n}.10.0/24", "hostsnet"))
    cid = ok(daemon.cli("run", "-d", "--hostname", "hbox", "busybox", "sleep", "60")).strip()
    try:
        ok(daemon.cli("network", "connect", "--ip", f"10.{n}.10.7", "hostsnet", cid))
        hosts = ok(daemon.cli("exec", cid, "cat", "/etc/hosts"))
        assert f"10.{n}.10.7\thbox" in hosts
        # The default bridge's entry is still there.
        assert f"10.{n}.0." in hosts
        ok(daemon.cli("network", "disconnect", "hostsnet", cid))
        hosts = ok(daemon.cli("exec", cid, "cat", "/etc/hosts"))
        assert f"10.{n}.10.7" not in hosts and f"10.{n}.0." in hosts
    finally:
        daemon.cli("rm", "-f", cid)
        daemon.cli("network", "rm", "hostsnet")


def test_ps_filter_network_and_stopped_containers_in_inspect(daemon: Daemon) -> None:
    n = n_of(daemon)
    net_id = ok(daemon.cli("network", "create", "--subnet", f"10.{n}.11.0/24", "filternet")).strip()
    running = ok(
        daemon.cli("run", "-d", "--network", "filternet", "busybox", "sleep", "60")
    ).strip()
    stopped = ok(daemon.cli("create", "--network", "filternet", "busybox", "true")).strip()
    other = ok(daemon.cli("run", "-d", "busybox", "sleep", "60")).strip()
    try:
        for value in ("filternet", net_id[:10]):
            shown = ok(daemon.cli("ps", "-q", "--no-trunc", "--filter", f"network={value}"))
            assert shown.split() == [running], (value, shown)
        shown = ok(daemon.cli("ps", "-aq", "--no-trunc", "--filter", "network=filternet"))
        assert sorted(shown.split()) == sorted([running, stopped])
        shown = ok(daemon.cli("ps", "-q", "--no-trunc", "--filter", "network=bridge"))
        assert other in shown.split() and running not in shown.split()
        assert ok(daemon.cli("ps", "-aq", "--filter", "network=nosuchnet")).strip() == ""
        # Like Docker, network inspect lists only containers with a live endpoint.
        inspect = json.loads(ok(daemon.cli("network", "inspect", "filternet")))[0]
        assert list(inspect["Containers"]) == [running]
    finally:
        daemon.cli("rm", "-f", running, stopped, other)
        daemon.cli("network", "rm", "filternet")


def test_container_network_mode_shares_address_and_localhost(daemon: Daemon) -> None:
    target = ok(
        daemon.cli("run", "-d", "busybox", "httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/etc")
    ).strip()
    try:
        info = json.loads(ok(daemon.cli("inspect", target)))[0]
        address = info["NetworkSettings"]["IPAddress"]
        assert address.startswith(f"10.{n_of(daemon)}.0.")
        out = ok(
            daemon.cli(
                "run",
                "--rm",
                "--network",
                f"container:{target}",
                "busybox",
                "sh",
                "-c",
                "ip -4 -o addr show eth0; wget -q -O- http://127.0.0.1:8080/hostname",
            )
        )
        assert f"inet {address}/" in out
        assert target[:12] in out  # the target's hostname file, served on its localhost
    finally:
        daemon.cli("rm", "-f", target)


def test_picked_subnet_avoids_host_routes(daemon: Daemon) -> None:
    n = n_of(daemon)
    dummy = f"{net_config(daemon)['link-prefix']}dum"
    # The daemon's pool starts at 10.n.128.0/24: a host route there must push it further.
    subprocess.run(["ip", "link", "add", dummy, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", f"10.{n}.128.1/24", "dev", dummy], check=True)
        subprocess.run(["ip", "link", "set", dummy, "up"], check=True)
        ok(daemon.cli("network", "create", "picked"))
        try:
            inspect = json.loads(ok(daemon.cli("network", "inspect", "picked")))[0]
            subnet = inspect["IPAM"]["Config"][0]["Subnet"]
            assert subnet.startswith(f"10.{n}.") and subnet != f"10.{n}.128.0/24", subnet
        finally:
            daemon.cli("network", "rm", "picked")
    finally:
        subprocess.run(["ip", "link", "del", dummy], check=False)
