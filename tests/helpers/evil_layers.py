"""A corpus of crafted layer tars that try to write, link or delete outside the directory
they are unpacked into, written with tarfile.

Each case is unpacked by the tests into `<tmp>/root`, with any `lowers` unpacked first
into `<tmp>/lower<N>`; `<tmp>/outside` (holding `secret`) is the victim that must stay
untouched.  Relative escapes therefore aim at `../outside`, absolute ones at the victim's
absolute path (filled in by `corpus(outside)`).

`refused` cases must fail with InvalidParameter; the others must unpack and be
neutralised the way Docker does (a real directory instead of a write through a lower
symlink, a symlink replaced rather than followed, ...), checked by `check`.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

MTIME = 1_700_000_000

Entry = tuple[tarfile.TarInfo, bytes | None]


def _info(name: str, kind: bytes, **kw: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mtime = MTIME
    for key, value in kw.items():
        setattr(info, key, value)
    return info


def file(name: str, data: bytes = b"evil\n", **kw: object) -> Entry:
    info = _info(name, tarfile.REGTYPE, **kw)
    info.size = len(data)
    return info, data


def directory(name: str) -> Entry:
    return _info(name, tarfile.DIRTYPE), None


def symlink(name: str, target: str) -> Entry:
    return _info(name, tarfile.SYMTYPE, linkname=target, mode=0o777), None


def hardlink(name: str, target: str) -> Entry:
    return _info(name, tarfile.LNKTYPE, linkname=target), None


def device(name: str, major: int, minor: int, *, block: bool = False) -> Entry:
    kind = tarfile.BLKTYPE if block else tarfile.CHRTYPE
    return _info(name, kind, devmajor=major, devminor=minor, mode=0o666), None


def fifo(name: str) -> Entry:
    return _info(name, tarfile.FIFOTYPE), None


def pax_path(benign: str, real: str, data: bytes = b"evil\n") -> Entry:
    """A regular file whose ustar name is harmless and whose PAX `path` record is `real`."""
    info, _ = file(benign, data)
    info.pax_headers = {"path": real}
    return info, data


def tar(*entries: Entry, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as out:
        for info, data in entries:
            out.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def gnu_longname(name: str, data: bytes = b"evil\n") -> bytes:
    """A GNU-format tar whose member name (stored in a ././@LongLink record) is `name`."""
    return tar(file(name, data), fmt=tarfile.GNU_FORMAT)


@dataclass(frozen=True)
class EvilLayer:
    layer: bytes
    refused: bool = True
    lowers: tuple[bytes, ...] = ()  # unpacked below `layer`, bottom first
    # For neutralised cases: called with the unpacked root, asserts what Docker leaves.
    check: Callable[[Path], None] | None = field(default=None, compare=False)


def _is_real_dir(path: Path) -> None:
    assert path.is_dir() and not path.is_symlink(), path


def _whiteout_at(path: Path) -> None:
    st = os.lstat(path)
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0, path


def _regular(path: Path, data: bytes) -> None:
    assert not path.is_symlink() and path.read_bytes() == data, path


def _only(path: Path, names: list[str]) -> None:
    assert sorted(os.listdir(path)) == names, os.listdir(path)


def _opaque_dir(path: Path) -> None:
    _is_real_dir(path)
    assert os.getxattr(path, "trusted.overlay.opaque") == b"y"


def _char_device(path: Path, major: int, minor: int) -> None:
    st = os.lstat(path)
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(major, minor), path


def corpus(outside: Path) -> dict[str, EvilLayer]:
    """Every crafted layer, by name; `outside` is the victim directory's absolute path."""
    victim = str(outside)
    secret = f"{victim}/secret"
    deep = "a/" * 2100 + "x"  # over PATH_MAX
    too_deep = "a/" * 400 + "x"  # within PATH_MAX, deeper than MAX_DEPTH
    lower_link = tar(symlink("evil", "../outside"))
    lower_abs_link = tar(symlink("evil", victim))
    return {
        # -- names that leave the root --------------------------------------------------
        "dotdot": EvilLayer(tar(file("../outside/x"))),
        "nested-dotdot": EvilLayer(tar(file("a/../../outside/x"))),
        "dot-then-dotdot": EvilLayer(tar(file("./a/b/../../../outside/x"))),
        "absolute": EvilLayer(tar(file(f"{victim}/x"))),
        "absolute-dir": EvilLayer(tar(directory(f"{victim}/d"))),
        "pax-path-dotdot": EvilLayer(tar(pax_path("harmless", "../outside/x"))),
        "pax-path-absolute": EvilLayer(tar(pax_path("harmless", f"{victim}/x"))),
        "gnu-longname-dotdot": EvilLayer(gnu_longname("a" * 120 + "/../../outside/x")),
        # -- a symlink planted in the same layer, then used as a parent ------------------
        "symlink-then-write": EvilLayer(tar(symlink("l", "../outside"), file("l/x"))),
        "abs-symlink-then-write": EvilLayer(tar(symlink("l", victim), file("l/x"))),
        "symlink-chain-then-write": EvilLayer(
            tar(symlink("a", "b"), symlink("b", "../outside"), file("a/x"))
        ),
        "symlink-to-dot-nested": EvilLayer(
            tar(symlink("l", "."), symlink("l/m", ".."), file("l/m/outside/x"))
        ),
        "symlink-then-mkdir": EvilLayer(tar(symlink("l", "../outside"), directory("l/d"))),
        "symlink-then-symlink": EvilLayer(tar(symlink("l", "../outside"), symlink("l/s", "/"))),
        "symlink-then-fifo": EvilLayer(tar(symlink("l", "../outside"), fifo("l/p"))),
        "symlink-then-device": EvilLayer(tar(symlink("l", "../outside"), device("l/null", 1, 3))),
        "symlink-then-hardlink-in": EvilLayer(
            tar(file("f"), symlink("l", "../outside"), hardlink("l/h", "f"))
        ),
        "dir-replaced-by-symlink-then-write": EvilLayer(
            tar(directory("d"), symlink("d", "../outside"), file("d/x"))
        ),
        # -- hard links whose target is outside -------------------------------------------
        "hardlink-dotdot": EvilLayer(tar(hardlink("h", "../outside/secret"))),
        "hardlink-absolute": EvilLayer(tar(hardlink("h", secret))),
        "hardlink-etc-passwd": EvilLayer(tar(hardlink("h", "/etc/passwd"))),
        "hardlink-through-symlink": EvilLayer(
            tar(symlink("s", "../outside"), hardlink("h", "s/secret"))
        ),
        "hardlink-through-abs-symlink": EvilLayer(
            tar(symlink("s", victim), hardlink("h", "s/secret"))
        ),
        "hardlink-through-lower-symlink": EvilLayer(
            tar(hardlink("h", "evil/secret")), lowers=(lower_link,)
        ),
        # -- whiteouts and opaque markers aimed outside ----------------------------------
        "whiteout-dotdot": EvilLayer(tar(file("../.wh.outside", b""))),
        "whiteout-nested-dotdot": EvilLayer(tar(file("a/../../outside/.wh.secret", b""))),
        "whiteout-absolute": EvilLayer(tar(file(f"{victim}/.wh.secret", b""))),
        "whiteout-through-symlink": EvilLayer(
            tar(symlink("s", "../outside"), file("s/.wh.secret", b""))
        ),
        "opaque-dotdot": EvilLayer(tar(file("../outside/.wh..wh..opq", b""))),
        "opaque-through-symlink": EvilLayer(
            tar(symlink("s", "../outside"), file("s/.wh..wh..opq", b""))
        ),
        # -- huge names --------------------------------------------------------------------
        "huge-component": EvilLayer(tar(file("n" * 300))),
        "huge-path": EvilLayer(tar(file(deep))),
        "huge-hardlink-target": EvilLayer(tar(hardlink("h", deep))),
        "huge-depth": EvilLayer(tar(file(too_deep))),
        "huge-symlink-target": EvilLayer(tar(symlink("s", "t/" * 2100))),
        # -- neutralised: unpacked, but nothing reaches outside ---------------------------
        "lower-symlink-then-write": EvilLayer(
            tar(file("evil/x", b"mine")),
            refused=False,
            lowers=(lower_link,),
            check=lambda r: (_is_real_dir(r / "evil"), _regular(r / "evil/x", b"mine")),
        ),
        "lower-abs-symlink-then-write": EvilLayer(
            tar(file("evil/x", b"mine")),
            refused=False,
            lowers=(lower_abs_link,),
            check=lambda r: _regular(r / "evil/x", b"mine"),
        ),
        "lower-symlink-then-whiteout": EvilLayer(
            tar(file("evil/.wh.secret", b"")),
            refused=False,
            lowers=(lower_link,),
            check=lambda r: _whiteout_at(r / "evil/secret"),
        ),
        "lower-symlink-then-opaque": EvilLayer(
            tar(file("evil/.wh..wh..opq", b"")),
            refused=False,
            lowers=(lower_link,),
            check=lambda r: _opaque_dir(r / "evil"),
        ),
        "lower-symlink-then-mkdir": EvilLayer(
            tar(directory("evil/sub")),
            refused=False,
            lowers=(lower_link,),
            check=lambda r: _is_real_dir(r / "evil/sub"),
        ),
        "file-replaces-outside-symlink": EvilLayer(
            tar(symlink("f", "../outside/secret"), file("f", b"mine")),
            refused=False,
            check=lambda r: _regular(r / "f", b"mine"),
        ),
        "file-replaces-abs-symlink": EvilLayer(
            tar(symlink("f", secret), file("f", b"mine")),
            refused=False,
            check=lambda r: _regular(r / "f", b"mine"),
        ),
        "hardlink-to-outside-symlink": EvilLayer(
            tar(symlink("s", secret), hardlink("h", "s")),
            refused=False,
            check=lambda r: (
                os.readlink(r / "h") == secret or None,
                os.lstat(r / "h").st_ino == os.lstat(r / "s").st_ino or None,
            ),
        ),
        "whiteout-removes-outside-symlink": EvilLayer(
            tar(symlink("s", "../outside"), file(".wh.s", b"")),
            refused=False,
            check=lambda r: _whiteout_at(r / "s"),
        ),
        "whiteout-removes-dir-holding-symlink": EvilLayer(
            tar(directory("d"), symlink("d/l", "../../outside"), file(".wh.d", b"")),
            refused=False,
            check=lambda r: _whiteout_at(r / "d"),
        ),
        "whiteout-of-dotdot-ignored": EvilLayer(
            tar(file(".wh..."), file("a/.wh..", b"")),
            refused=False,
            check=lambda r: _only(r, ["a"]),
        ),
        # Docker (as root) keeps device nodes: they only matter inside the container,
        # where the device cgroup decides.
        "device-nodes-kept": EvilLayer(
            tar(device("dev/null", 1, 3), device("dev/sda", 8, 0, block=True)),
            refused=False,
            check=lambda r: _char_device(r / "dev/null", 1, 3),
        ),
        "long-but-legal-names": EvilLayer(
            tar(file("n" * 255), file("a/" * 399 + "x", b"deep")),
            refused=False,
            check=lambda r: _regular(r / ("n" * 255), b"evil\n"),
        ),
    }
