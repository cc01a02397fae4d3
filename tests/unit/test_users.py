"""resolve_user against fake root filesystems."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockling.errors import InvalidParameter
from dockling.runtime.users import resolve_in_root, resolve_user

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
app:x:1000:1000:App:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """root:x:0:
wheel:x:10:root,app
staff:x:50:app
app:x:1000:
nogroup:x:65534:
"""


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    etc = tmp_path / "rootfs" / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text(PASSWD)
    (etc / "group").write_text(GROUP)
    return tmp_path / "rootfs"


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("", (0, 0, (0, 10))),
        ("root", (0, 0, (0, 10))),
        ("0", (0, 0, (0, 10))),
        ("app", (1000, 1000, (1000, 10, 50))),
        ("1000", (1000, 1000, (1000, 10, 50))),
        ("nobody", (65534, 65534, (65534,))),
        ("app:staff", (1000, 50, (50,))),
        ("app:4242", (1000, 4242, (4242,))),
        ("1000:50", (1000, 50, (50,))),
        ("4242", (4242, 0, (0,))),
        ("4242:4242", (4242, 4242, (4242,))),
        ("4242:wheel", (4242, 10, (10,))),
    ],
)
def test_resolve_user(rootfs: Path, user: str, expected: tuple[int, int, tuple[int, ...]]) -> None:
    assert resolve_user(user, str(rootfs)) == expected


def test_unknown_user(rootfs: Path) -> None:
    with pytest.raises(
        InvalidParameter, match=r"^unable to find user foo: no matching entries in passwd file$"
    ):
        resolve_user("foo", str(rootfs))


def test_unknown_group(rootfs: Path) -> None:
    with pytest.raises(InvalidParameter, match="unable to find group nope"):
        resolve_user("app:nope", str(rootfs))


def test_no_passwd_file(tmp_path: Path) -> None:
    assert resolve_user("", str(tmp_path)) == (0, 0, (0,))
    assert resolve_user("123:456", str(tmp_path)) == (123, 456, (456,))
    with pytest.raises(InvalidParameter):
        resolve_user("app", str(tmp_path))


def test_symlinked_passwd_stays_inside_rootfs(tmp_path: Path) -> None:
    # The "host" has a passwd with a user the image does not have.
    (tmp_path / "passwd").write_text("evil:x:7:7::/:/bin/sh\n")
    rootfs = tmp_path / "a" / "b" / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "real").mkdir()
    (rootfs / "real" / "passwd").write_text("inside:x:5:5::/:/bin/sh\n")
    os.symlink("../../../../passwd", rootfs / "etc" / "passwd")
    with pytest.raises(InvalidParameter):
        resolve_user("evil", str(rootfs))
    os.unlink(rootfs / "etc" / "passwd")
    os.symlink(str(tmp_path / "passwd"), rootfs / "etc" / "passwd")
    with pytest.raises(InvalidParameter):
        resolve_user("evil", str(rootfs))
    # An absolute link is followed inside the rootfs.
    os.unlink(rootfs / "etc" / "passwd")
    os.symlink("/real/passwd", rootfs / "etc" / "passwd")
    assert resolve_user("inside", str(rootfs)) == (5, 5, (5,))


def test_resolve_in_root(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    os.symlink("/", tmp_path / "etc" / "up")
    os.symlink("loop", tmp_path / "loop")
    assert resolve_in_root(str(tmp_path), "/etc/up/../../x") == str(tmp_path / "x")
    with pytest.raises(OSError):
        resolve_in_root(str(tmp_path), "/loop")
