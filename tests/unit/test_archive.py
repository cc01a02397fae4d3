"""Layer extraction: attributes, whiteouts, compression, DiffID, and refusal of unsafe tars."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from dockling import errors
from dockling.archive.extract import extract_layer

MTIME = 1_600_000_000


def entry(
    name: str,
    kind: bytes = tarfile.REGTYPE,
    *,
    data: bytes = b"",
    mode: int = 0o644,
    uid: int = 0,
    gid: int = 0,
    link: str = "",
    dev: tuple[int, int] = (0, 0),
    pax: dict[str, str] | None = None,
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.mtime = MTIME
    info.linkname = link
    info.devmajor, info.devminor = dev
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    if pax:
        info.pax_headers = pax
    return info, data


def make_tar(*entries: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def d(name: str, mode: int = 0o755, **kw: object) -> tuple[tarfile.TarInfo, bytes]:
    return entry(name, tarfile.DIRTYPE, mode=mode, **kw)  # type: ignore[arg-type]


def sym(name: str, target: str) -> tuple[tarfile.TarInfo, bytes]:
    return entry(name, tarfile.SYMTYPE, link=target, mode=0o777)


def hard(name: str, target: str) -> tuple[tarfile.TarInfo, bytes]:
    return entry(name, tarfile.LNKTYPE, link=target)


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """A root to extract into and, beside it, an `outside` directory that must stay empty."""
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    return root, outside


def extract(data: bytes, root: Path, lowers: tuple[Path, ...] = ()) -> str:
    return extract_layer(io.BytesIO(data), root, lowers=lowers).diff_id


def test_attributes_are_preserved(dirs: tuple[Path, Path]) -> None:
    root, _ = dirs
    data = make_tar(
        d("./", mode=0o700),
        d("tmp", mode=0o1777),
        d("bin", uid=7, gid=8),
        entry("bin/tool", data=b"#!x\n", mode=0o4755, uid=1000, gid=1001),
        entry("bin/sg", data=b"y", mode=0o2711),
        hard("bin/tool2", "bin/tool"),
        sym("bin/sh", "tool"),
        entry("dev/null", tarfile.CHRTYPE, mode=0o666, dev=(1, 3)),
        entry("dev/fifo", tarfile.FIFOTYPE, mode=0o600),
        entry("x", data=b"1", pax={"SCHILY.xattr.user.note": "hello"}),
    )
    diff_id = extract(data, root)
    assert diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert stat.S_IMODE(root.stat().st_mode) == 0o755  # the root entry is not applied
    tool = (root / "bin/tool").stat()
    assert stat.S_IMODE(tool.st_mode) == 0o4755 and (tool.st_uid, tool.st_gid) == (1000, 1001)
    assert tool.st_mtime == MTIME
    assert stat.S_IMODE((root / "bin/sg").stat().st_mode) == 0o2711
    assert stat.S_IMODE((root / "tmp").stat().st_mode) == 0o1777
    bin_ = (root / "bin").stat()
    assert (bin_.st_uid, bin_.st_gid) == (7, 8) and bin_.st_mtime == MTIME
    assert (root / "bin/tool2").stat().st_ino == tool.st_ino
    assert os.readlink(root / "bin/sh") == "tool"
    null = (root / "dev/null").lstat()
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
    assert stat.S_ISFIFO((root / "dev/fifo").lstat().st_mode)
    assert os.getxattr(root / "x", "user.note") == b"hello"


def test_gzip_gives_the_same_diff_id(dirs: tuple[Path, Path]) -> None:
    root, _ = dirs
    data = make_tar(entry("a", data=b"x" * 5000))
    result = extract_layer(io.BytesIO(gzip.compress(data)), root)
    assert result.compression == "gzip"
    assert result.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert (root / "a").read_bytes() == b"x" * 5000


def test_whiteouts_become_overlay_whiteouts(dirs: tuple[Path, Path]) -> None:
    root, _ = dirs
    extract(
        make_tar(
            entry("etc/gone", data=b"soon replaced"),
            entry("etc/.wh.gone"),
            entry("etc/.wh.other"),
            d("opt"),
            entry("opt/.wh..wh..opq"),
            entry("opt/.wh..wh.plnk"),
        ),
        root,
    )
    for name in ("gone", "other"):
        st = (root / "etc" / name).lstat()
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert not (root / "etc/.wh.gone").exists()
    assert os.getxattr(root / "opt", "trusted.overlay.opaque") == b"y"
    assert os.listdir(root / "opt") == []


def test_overlay_xattrs_from_the_tar_are_ignored(dirs: tuple[Path, Path]) -> None:
    root, _ = dirs
    extract(make_tar(d("a", pax={"SCHILY.xattr.trusted.overlay.opaque": "y"})), root)
    assert "trusted.overlay.opaque" not in os.listxattr(root / "a")


def test_entries_replace_each_other(dirs: tuple[Path, Path]) -> None:
    root, _ = dirs
    extract(
        make_tar(
            d("a"),
            entry("a/inner", data=b"1"),
            entry("a", data=b"now a file"),
            entry("b", data=b"file"),
            d("b"),
            entry("b/c", data=b"2"),
        ),
        root,
    )
    assert (root / "a").read_bytes() == b"now a file"
    assert (root / "b/c").read_bytes() == b"2"


def test_hard_link_to_a_lower_file_copies_it_up(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    lower.mkdir()
    upper.mkdir()
    extract(make_tar(d("opt", mode=0o710, uid=5), entry("opt/bin", data=b"ELF", mode=0o755)), lower)
    extract(make_tar(hard("opt/link", "opt/bin")), upper, (lower,))
    assert (upper / "opt/link").read_bytes() == b"ELF"
    assert (upper / "opt/link").stat().st_ino == (upper / "opt/bin").stat().st_ino
    # The implied directory looks like the lower one in the merged view.
    st = (upper / "opt").stat()
    assert stat.S_IMODE(st.st_mode) == 0o710 and st.st_uid == 5


UNSAFE = {
    "dotdot": make_tar(entry("../x", data=b"evil")),
    "nested-dotdot": make_tar(entry("a/../../x", data=b"evil")),
    "absolute": make_tar(entry("/x", data=b"evil")),
    "symlink-then-write": make_tar(sym("link", "../outside"), entry("link/x", data=b"evil")),
    "absolute-symlink-then-write": make_tar(sym("link", "/"), entry("link/x", data=b"evil")),
    "symlink-dir-then-nested": make_tar(sym("l", "."), sym("l/m", ".."), entry("l/m/x", data=b"e")),
    "hardlink-outside": make_tar(hard("h", "../outside/x")),
    "hardlink-absolute": make_tar(hard("h", "/etc/passwd")),
    "hardlink-through-symlink": make_tar(sym("s", "/etc"), hard("h", "s/passwd")),
    "whiteout-through-symlink": make_tar(sym("s", "../outside"), entry("s/.wh.x")),
    "opaque-through-symlink": make_tar(sym("s", "../outside"), entry("s/.wh..wh..opq")),
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_unsafe_layers_are_refused(case: str, dirs: tuple[Path, Path], tmp_path: Path) -> None:
    root, outside = dirs
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(errors.InvalidParameter) as e:
        extract(UNSAFE[case], root)
    assert "unsafe layer member" in str(e.value) or "hard link" in str(e.value)
    assert os.listdir(outside) == []
    assert sorted(os.listdir(tmp_path)) == before
    assert not os.path.lexists("/x") or os.path.getmtime("/x") < MTIME
    assert "trusted.overlay.opaque" not in os.listxattr(outside)


def test_symlink_planted_in_a_lower_layer_is_not_followed(tmp_path: Path) -> None:
    lower, upper, outside = tmp_path / "lower", tmp_path / "upper", tmp_path / "outside"
    for p in (lower, upper, outside):
        p.mkdir()
    (outside / "secret").write_text("s")
    extract(make_tar(sym("evil", str(outside))), lower)
    # Writing below the lower symlink makes a real directory in this layer, never a
    # write through the link.
    extract(make_tar(entry("evil/x", data=b"mine")), upper, (lower,))
    assert os.listdir(outside) == ["secret"]
    assert (upper / "evil").is_dir() and not (upper / "evil").is_symlink()
    # A hard link whose target goes through the lower symlink is refused.
    with pytest.raises(errors.InvalidParameter):
        extract(make_tar(hard("stolen", "evil/secret")), tmp_path / "upper", (lower,))
    assert not (upper / "stolen").exists()


@pytest.mark.parametrize(
    "data",
    [b"this is not a tar archive" * 40, make_tar(entry("a", data=b"x" * 20000))[:5000], b""],
    ids=["garbage", "truncated", "empty"],
)
def test_corrupt_streams_raise_invalid_parameter(data: bytes, dirs: tuple[Path, Path]) -> None:
    root, _ = dirs
    with pytest.raises(errors.InvalidParameter, match="invalid layer tar"):
        extract(data, root)


def test_corrupt_gzip_raises_invalid_parameter(dirs: tuple[Path, Path]) -> None:
    root, _ = dirs
    data = gzip.compress(make_tar(entry("a", data=b"x" * 20000)))
    with pytest.raises(errors.InvalidParameter):
        extract(data[: len(data) // 2], root)
