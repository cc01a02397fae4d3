"""Just enough of the DNS wire format (RFC 1035): read one question, write A answers."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

TYPE_A = 1
CLASS_IN = 1
RCODE_NXDOMAIN = 3
RCODE_SERVFAIL = 2
TTL = 600


@dataclass(frozen=True, slots=True)
class Question:
    id: int
    flags: int
    name: str  # lower case, without the trailing dot
    qtype: int
    qclass: int
    end: int  # offset just past the question


def parse_question(packet: bytes) -> Question | None:
    """The first question of a query, or None for anything that is not a plain query."""
    if len(packet) < 12:
        return None
    qid, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if flags & 0x8000 or qdcount < 1 or (flags >> 11) & 0xF:
        return None
    labels = []
    pos = 12
    while True:
        if pos >= len(packet):
            return None
        length = packet[pos]
        pos += 1
        if length == 0:
            break
        if length & 0xC0 or pos + length > len(packet):
            return None
        labels.append(packet[pos : pos + length].decode("ascii", errors="replace"))
        pos += length
    if pos + 4 > len(packet):
        return None
    qtype, qclass = struct.unpack("!HH", packet[pos : pos + 4])
    return Question(qid, flags, ".".join(labels).lower(), qtype, qclass, pos + 4)


def answer(packet: bytes, question: Question, addresses: list[str], rcode: int = 0) -> bytes:
    """A response to `packet` carrying A records for `addresses` (none for other types)."""
    records = addresses if question.qtype == TYPE_A else []
    flags = 0x8000 | 0x0400 | (question.flags & 0x0100) | 0x0080 | rcode  # QR AA RD RA
    header = struct.pack("!HHHHHH", question.id, flags, 1, len(records), 0, 0)
    body = packet[12 : question.end]
    for address in records:
        # 0xC00C points back at the question's name.
        body += struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, TTL, 4)
        body += ipaddress.IPv4Address(address).packed
    return header + body


def query(name: str, qid: int = 0x1234, qtype: int = TYPE_A) -> bytes:
    """A recursive query for `name` (used by tests and health checks)."""
    header = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.strip(".").split(".") if p)
    return header + labels + b"\0" + struct.pack("!HH", qtype, CLASS_IN)


def read_answers(packet: bytes) -> tuple[int, list[str]]:
    """(rcode, A addresses) of a response that `answer` wrote or that uses name pointers."""
    rcode = struct.unpack("!H", packet[2:4])[0] & 0xF
    ancount = struct.unpack("!H", packet[6:8])[0]
    question = parse_question(packet[:2] + b"\0\0" + packet[4:])
    if question is None:
        return rcode, []
    pos = question.end
    found = []
    for _ in range(ancount):
        if packet[pos] & 0xC0:
            pos += 2
        else:
            while packet[pos]:
                pos += packet[pos] + 1
            pos += 1
        rtype, _cls, _ttl, length = struct.unpack("!HHIH", packet[pos : pos + 10])
        pos += 10
        if rtype == TYPE_A and length == 4:
            found.append(str(ipaddress.IPv4Address(packet[pos : pos + 4])))
        pos += length
    return rcode, found
