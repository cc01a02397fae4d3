"""IPAM, port specs, the nftables rendering (golden) and the DNS wire format."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from dockling import errors
from dockling.network import firewall, ipam, ports
from dockling.network.dns import message
from dockling.network.model import PortMapping

GOLDEN = Path(__file__).parent / "golden"


def test_subnet_and_gateway_checks() -> None:
    net = ipam.parse_subnet("10.89.0.0/24")
    assert net == IPv4Network("10.89.0.0/24")
    for bad in ("abc", "10.89.0.1/24", "10.0.0.0/31"):
        with pytest.raises(errors.InvalidParameter):
            ipam.parse_subnet(bad)
    with pytest.raises(errors.InvalidParameter, match="outside"):
        ipam.check_gateway(net, IPv4Address("10.90.0.1"))
    with pytest.raises(errors.Conflict, match="overlaps"):
        ipam.check_overlap(IPv4Network("10.89.0.128/25"), [("app", net)])


def test_allocation_skips_used_and_honours_wanted() -> None:
    net = IPv4Network("10.1.0.0/29")
    used = {IPv4Address("10.1.0.1"), IPv4Address("10.1.0.2")}
    assert ipam.allocate(net, used) == IPv4Address("10.1.0.3")
    assert ipam.allocate(net, used, wanted=IPv4Address("10.1.0.6")) == IPv4Address("10.1.0.6")
    with pytest.raises(errors.Conflict):
        ipam.allocate(net, used, wanted=IPv4Address("10.1.0.2"))
    full = {IPv4Address(f"10.1.0.{i}") for i in range(1, 7)}
    with pytest.raises(errors.Unavailable):
        ipam.allocate(net, full)
    pools = [(IPv4Network("172.16.0.0/12"), 16)]
    used = [IPv4Network("172.16.0.0/16"), IPv4Network("172.17.0.0/16")]
    assert ipam.pick_subnet(pools, used) == IPv4Network("172.18.0.0/16")
    assert ipam.mac_for(IPv4Address("172.17.0.2")) == "02:42:ac:11:00:02"


def test_port_specs() -> None:
    assert ports.parse_bindings((":8080:80/tcp",)) == [ports.PortRequest("tcp", 80, "", 8080, 8080)]
    assert ports.parse_bindings(("127.0.0.1::53/udp",)) == [
        ports.PortRequest("udp", 53, "127.0.0.1", 0, 0)
    ]
    assert len(ports.parse_bindings((":9000-9001:80-81/tcp",))) == 2
    for bad in (":99999:80/tcp", "::abc/tcp", ":80:80/sctp", ":1-3:80-81/tcp"):
        with pytest.raises(errors.InvalidParameter):
            ports.parse_bindings((bad,))


def test_port_holder_refuses_a_port_in_use() -> None:
    holder = ports.PortHolder()
    try:
        port = holder.claim(ports.PortRequest("tcp", 80, "127.0.0.1"))
        with pytest.raises(errors.Conflict, match="already allocated"):
            holder.claim(ports.PortRequest("tcp", 80, "127.0.0.1", port, port))
        holder.release("tcp", "127.0.0.1", port)
        assert holder.claim(ports.PortRequest("tcp", 80, "127.0.0.1", port, port)) == port
    finally:
        holder.close()


def test_rules_golden() -> None:
    bridges = [
        firewall.BridgeRules("dockling0", "172.17.0.0/16", internal=False, masquerade=True),
        firewall.BridgeRules("dlbr-aaaa", "10.89.0.0/24", internal=False, masquerade=True),
        firewall.BridgeRules("dlbr-bbbb", "10.90.0.0/24", internal=True, masquerade=True),
    ]
    mappings = [
        PortMapping("tcp", "", 8080, "172.17.0.2", 80, "dockling0"),
        PortMapping("udp", "127.0.0.1", 5353, "10.89.0.3", 53, "dlbr-aaaa"),
    ]
    rendered = firewall.render("dockling", bridges, mappings)
    golden = GOLDEN / "nft_rules.txt"
    assert rendered == golden.read_text()


def test_dns_round_trip() -> None:
    query = message.query("db")
    question = message.parse_question(query)
    assert question is not None and question.name == "db" and question.qtype == message.TYPE_A
    reply = message.answer(query, question, ["10.89.0.2", "10.89.0.3"])
    assert message.read_answers(reply) == (0, ["10.89.0.2", "10.89.0.3"])
    assert message.parse_question(b"\x00" * 5) is None


def test_etc_hosts_entries_added_once_and_removed_in_place(tmp_path: Path) -> None:
    from dockling.network import etc_hosts

    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\tlocalhost\n10.1.0.2\tbox\n")
    inode = hosts.stat().st_ino
    etc_hosts.add_entry(hosts, "10.2.0.5", "box")
    etc_hosts.add_entry(hosts, "10.2.0.5", "box")
    assert hosts.read_text() == "127.0.0.1\tlocalhost\n10.1.0.2\tbox\n10.2.0.5\tbox\n"
    etc_hosts.remove_entries(hosts, "10.2.0.5")
    assert hosts.read_text() == "127.0.0.1\tlocalhost\n10.1.0.2\tbox\n"
    # Same inode: the file is bind-mounted into the running container.
    assert hosts.stat().st_ino == inode
