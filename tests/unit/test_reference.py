"""Image references (parse, normalise, familiar form) and identifiers (chain ids, prefixes)."""

from __future__ import annotations

import hashlib

import pytest

from dockling import errors
from dockling.ids import PrefixIndex, chain_id, chain_ids, generate_id
from dockling.reference import parse_normalized, parse_tagged

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "full", "short"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("index.docker.io/foo/bar", "docker.io/foo/bar:latest", "foo/bar:latest"),
        ("foo/bar/baz:v1", "docker.io/foo/bar/baz:v1", "foo/bar/baz:v1"),
        ("localhost/a", "localhost/a:latest", "localhost/a:latest"),
        ("localhost:5000/a/b:tag", "localhost:5000/a/b:tag", "localhost:5000/a/b:tag"),
        ("127.0.0.1:5000/x", "127.0.0.1:5000/x:latest", "127.0.0.1:5000/x:latest"),
        ("ghcr.io/o/r:v1.2-rc_3", "ghcr.io/o/r:v1.2-rc_3", "ghcr.io/o/r:v1.2-rc_3"),
        (f"busybox@{D}", f"docker.io/library/busybox@{D}", f"busybox@{D}"),
        (f"busybox:1@{D}", f"docker.io/library/busybox:1@{D}", f"busybox:1@{D}"),
        ("a__b.c-d---e", "docker.io/library/a__b.c-d---e:latest", "a__b.c-d---e:latest"),
    ],
)
def test_normalise_and_familiar(text: str, full: str, short: str) -> None:
    ref = parse_tagged(text)
    assert str(ref) == full
    assert ref.familiar() == short


def test_no_default_tag_without_asking() -> None:
    ref = parse_normalized("busybox")
    assert ref.tag is None and ref.familiar() == "busybox"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "Busybox",
            "invalid reference format: repository name (library/Busybox) must be lowercase",
        ),
        ("foo/Bar", "invalid reference format: repository name (foo/Bar) must be lowercase"),
        ("a:b:c", "invalid reference format"),
        ("", "invalid reference format"),
        ("busybox:", "invalid reference format"),
        ("-busybox", "invalid reference format"),
        ("busy box", "invalid reference format"),
        ("busybox@sha256:abc", "invalid reference format"),
        (
            "a" * 64,
            f"invalid repository name ({'a' * 64}), cannot specify 64-byte hexadecimal strings",
        ),
        (
            "x/" + "a" * 260,
            "invalid reference format: repository name must not be more than 255 characters",
        ),
    ],
)
def test_invalid(text: str, message: str) -> None:
    with pytest.raises(errors.InvalidParameter) as e:
        parse_normalized(text)
    assert str(e.value) == message


def test_chain_id_matches_the_oci_definition() -> None:
    d1, d2, d3 = ("sha256:" + c * 64 for c in "123")
    c2 = "sha256:" + hashlib.sha256(f"{d1} {d2}".encode()).hexdigest()
    c3 = "sha256:" + hashlib.sha256(f"{c2} {d3}".encode()).hexdigest()
    assert chain_id([d1]) == d1
    assert chain_id([d1, d2, d3]) == c3
    assert chain_ids([d1, d2, d3]) == [d1, c2, c3]
    with pytest.raises(errors.InvalidParameter):
        chain_id([])


def test_generate_id() -> None:
    ids = {generate_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 64 and int(i, 16) >= 0 for i in ids)


def test_prefix_index() -> None:
    index = PrefixIndex(errors.ContainerNotFound, ["abc1" + "0" * 60, "abd2" + "0" * 60])
    assert index.get("abc") == "abc1" + "0" * 60
    assert index.get("abd2" + "0" * 60) == "abd2" + "0" * 60
    with pytest.raises(
        errors.InvalidParameter, match="multiple IDs found with provided prefix: ab"
    ):
        index.get("ab")
    with pytest.raises(errors.ContainerNotFound, match="No such container: zz"):
        index.get("zz")
    with pytest.raises(errors.ContainerNotFound):
        index.get("")
    index.remove("abd2" + "0" * 60)
    assert index.get("ab") == "abc1" + "0" * 60
    index.add("abc1" + "0" * 60)  # twice is harmless
    assert len(index) == 1 and ("abc1" + "0" * 60) in index
