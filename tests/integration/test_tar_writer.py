"""diff.compare's TarWriter: byte-identical to tarfile's PAX output, readable by GNU tar and
by archive.extract, for every kind of member a layer holds (needs root: devices, owners)."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from dockling.archive.extract import extract_layer
from dockling.diff.compare import write_tree

pytestmark = pytest.mark.root

LONG = "d" * 60 + "/" + "n" * 120  # past ustar's 100-byte name field: a pax "path"


def make_tree(root: Path) -> None:
    """One of each member kind, plus the cases tarfile needs a pax header for."""
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "dir" / "file").write_bytes(b"hello\n")
    (root / "dir" / "block").write_bytes(bytes(range(256)) * 2)  # exactly one block
    (root / "empty").write_bytes(b"")
    (root / "big").write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # spans output flushes
    os.link(root / "dir" / "file", root / "hard")
    os.symlink("dir/file", root / "sym")
    os.symlink("x" * 150, root / "longlink")  # link target needs a pax "linkpath"
    os.mknod(root / "chr", stat.S_IFCHR | 0o640, os.makedev(1, 3))
    os.mknod(root / "blk", stat.S_IFBLK | 0o600, os.makedev(7, 0))
    os.mkfifo(root / "fifo")
    (root / LONG).parent.mkdir(parents=True)
    (root / LONG).write_text("long\n")
    (root / "ünï").write_text("utf8\n")
    (root / "xattr").write_text("x\n")
    os.setxattr(root / "xattr", "user.note", b"value")
    os.setxattr(root / "dir", "user.bin", b"\xff\x00")
    (root / "suid").write_text("")
    os.chown(root / "suid", 1000, 2000)  # before chmod: chown clears the setuid bit
    os.chmod(root / "suid", 0o4755)
    os.chmod(root / "dir" / "sub", 0o1777)
    os.chown(root / "empty", 3_000_000, 3_000_000)  # past the 8-byte octal field
    os.utime(root / "dir" / "file", (1_600_000_000, 1_600_000_000))


def reference(source: Path) -> bytes:
    """What tarfile writes for the same walk (the writer's contract)."""
    out = io.BytesIO()
    links: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in _walk_sorted(source):
            for name in sorted(dirnames + filenames):
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, source)
                st = os.lstat(full)
                info = tarfile.TarInfo(rel)
                info.uid, info.gid = st.st_uid, st.st_gid
                info.mode = stat.S_IMODE(st.st_mode)
                info.mtime = st.st_mtime_ns // 1_000_000_000
                if not stat.S_ISLNK(st.st_mode):
                    info.pax_headers = {
                        "SCHILY.xattr." + x: os.getxattr(full, x).decode("utf-8", "surrogateescape")
                        for x in os.listxattr(full)
                    }
                if stat.S_ISDIR(st.st_mode):
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif stat.S_ISREG(st.st_mode):
                    key = (st.st_dev, st.st_ino)
                    if st.st_nlink > 1 and key in links:
                        info.type, info.linkname = tarfile.LNKTYPE, links[key]
                        tar.addfile(info)
                        continue
                    links[key] = rel
                    info.size = st.st_size
                    with open(full, "rb") as f:
                        tar.addfile(info, f)
                elif stat.S_ISLNK(st.st_mode):
                    info.type, info.linkname = tarfile.SYMTYPE, os.readlink(full)
                    tar.addfile(info)
                elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                    info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
                    info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
                    tar.addfile(info)
                elif stat.S_ISFIFO(st.st_mode):
                    info.type = tarfile.FIFOTYPE
                    tar.addfile(info)
    return out.getvalue()


def _walk_sorted(source: Path) -> list[tuple[str, list[str], list[str]]]:
    """The order write_tree visits: a directory's entries in name order, then the
    contents of each of its subdirectories in name order."""
    order: list[tuple[str, list[str], list[str]]] = []

    def visit(path: str) -> None:
        names = sorted(os.listdir(path))
        order.append((path, [], names))
        for name in names:
            full = os.path.join(path, name)
            if os.path.isdir(full) and not os.path.islink(full):
                visit(full)

    visit(os.fspath(source))
    return order


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    make_tree(root)
    return root


def test_output_is_byte_identical_to_tarfile(tree: Path) -> None:
    out = io.BytesIO()
    write_tree(tree, out, name="")
    data = out.getvalue()
    assert len(data) % tarfile.RECORDSIZE == 0
    assert data == reference(tree)


def test_round_trip_through_extract_layer(tree: Path, tmp_path: Path) -> None:
    out = io.BytesIO()
    write_tree(tree, out, name="")
    target = tmp_path / "x"
    target.mkdir()
    extract_layer(io.BytesIO(out.getvalue()), target)
    _assert_same_tree(tree, target)


def test_gnu_tar_lists_and_extracts(tree: Path, tmp_path: Path) -> None:
    gnu = shutil.which("tar")
    if gnu is None:
        pytest.skip("no tar binary")
    archive = tmp_path / "t.tar"
    with open(archive, "wb") as f:
        write_tree(tree, f, name="top")
    listing = subprocess.run(
        [gnu, "--numeric-owner", "-tvf", str(archive)], check=True, capture_output=True, text=True
    ).stdout
    rows = listing.splitlines()

    def line(name: str) -> str:
        return next(r for r in rows if r.endswith(" " + name) or f" {name} -> " in r)

    assert line("top/hard").startswith("-rw-r--r-- 0/0")
    assert line("top/suid").startswith("-rwsr-xr-x 1000/2000")
    assert line("top/chr").startswith("crw-r-----") and "1,3" in line("top/chr")
    assert line("top/blk").startswith("brw-------")
    assert line("top/fifo").startswith("p")
    assert line("top/dir/sub/").startswith("drwxrwxrwt")
    assert line(f"top/{LONG}")
    assert "top/dir/file link to top/hard" in listing  # walked after it
    target = tmp_path / "gnu"
    target.mkdir()
    subprocess.run(
        [
            gnu,
            "--xattrs",
            "--xattrs-include=*",
            "--same-owner",
            "-xpf",
            str(archive),
            "-C",
            str(target),
        ],
        check=True,
    )
    _assert_same_tree(tree, target / "top")


def _assert_same_tree(a: Path, b: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(a):
        for name in dirnames + filenames:
            left = os.path.join(dirpath, name)
            right = os.path.join(b, os.path.relpath(left, a))
            sa, sb = os.lstat(left), os.lstat(right)
            assert (sa.st_mode, sa.st_uid, sa.st_gid) == (sb.st_mode, sb.st_uid, sb.st_gid), left
            if not stat.S_ISDIR(sa.st_mode):
                assert sa.st_mtime_ns // 10**9 == sb.st_mtime_ns // 10**9, left
            if stat.S_ISREG(sa.st_mode):
                assert Path(left).read_bytes() == Path(right).read_bytes(), left
            elif stat.S_ISLNK(sa.st_mode):
                assert os.readlink(left) == os.readlink(right), left
            elif stat.S_ISCHR(sa.st_mode) or stat.S_ISBLK(sa.st_mode):
                assert sa.st_rdev == sb.st_rdev, left
            if not stat.S_ISLNK(sa.st_mode):
                assert _user_xattrs(left) == _user_xattrs(right), left
    assert os.stat(a / "hard").st_ino != os.stat(a / "dir" / "file").st_ino or (
        os.stat(b / "hard").st_ino == os.stat(b / "dir" / "file").st_ino
    )


def _user_xattrs(path: str) -> dict[str, bytes]:
    return {x: os.getxattr(path, x) for x in os.listxattr(path) if x.startswith("user.")}
