"""diff.compare: an overlay-style upper dir to a layer tar and a change list (needs root)."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from dockling.archive.extract import extract_layer
from dockling.diff.compare import (
    ChangeKind,
    changes,
    has_changes,
    write_layer,
    write_settled_layer,
)

pytestmark = pytest.mark.root


def make_trees(tmp_path: Path) -> tuple[Path, Path]:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for d in (lower / "etc", lower / "gone", lower / "opaque" / "old", upper / "etc"):
        d.mkdir(parents=True)
    (lower / "etc" / "passwd").write_text("root\n")
    (lower / "file").write_text("old\n")
    (upper / "etc" / "passwd").write_text("root\nme\n")
    (upper / "etc" / "new").write_text("n\n")
    os.link(upper / "etc" / "new", upper / "etc" / "new-link")
    os.setxattr(upper / "etc" / "new", "user.note", b"\xff\x00bin")
    os.mknod(upper / "file", stat.S_IFCHR, os.makedev(0, 0))
    os.mknod(upper / "gone", stat.S_IFCHR, os.makedev(0, 0))
    (upper / "opaque").mkdir()
    os.setxattr(upper / "opaque", "trusted.overlay.opaque", b"y")
    (upper / "opaque" / "fresh").write_text("f\n")
    os.symlink("/etc/passwd", upper / "link")
    (upper / "suid").write_text("")
    os.chown(upper / "suid", 7, 8)  # before chmod: chown clears the setuid bit
    os.chmod(upper / "suid", 0o4755)
    return lower, upper


def test_layer_tar_translates_overlay_markers(tmp_path: Path) -> None:
    lower, upper = make_trees(tmp_path)
    out = io.BytesIO()
    write_layer(upper, out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members[".wh.file"].isreg() and members[".wh.gone"].size == 0
    assert "opaque/.wh..wh..opq" in members
    assert "trusted.overlay.opaque" not in str(members["opaque"].pax_headers)
    assert members["etc/new-link"].islnk() and members["etc/new-link"].linkname == "etc/new"
    assert (
        members["etc/new"].pax_headers["SCHILY.xattr.user.note"].encode("utf-8", "surrogateescape")
        == b"\xff\x00bin"
    )
    assert members["link"].issym() and members["link"].linkname == "/etc/passwd"
    suid = members["suid"]
    assert (suid.mode, suid.uid, suid.gid) == (0o4755, 7, 8)
    # Applied on the lower it came from, the layer gives the same tree back.
    target = tmp_path / "applied"
    target.mkdir()
    result = extract_layer(io.BytesIO(out.getvalue()), target, lowers=[lower])
    assert result.diff_id.startswith("sha256:")
    assert os.getxattr(target / "etc" / "new", "user.note") == b"\xff\x00bin"
    assert os.stat(target / "etc" / "new").st_ino == os.stat(target / "etc" / "new-link").st_ino
    assert os.getxattr(target / "opaque", "trusted.overlay.opaque") == b"y"
    assert stat.S_ISCHR(os.lstat(target / "gone").st_mode)


def test_changes_follow_docker_rules(tmp_path: Path) -> None:
    lower, upper = make_trees(tmp_path)
    found = {c.path: c.kind for c in changes(upper, [lower])}
    assert found["/etc/passwd"] is ChangeKind.MODIFIED
    assert found["/etc/new"] is ChangeKind.ADDED
    assert found["/file"] is ChangeKind.DELETED and found["/gone"] is ChangeKind.DELETED
    assert found["/opaque"] is ChangeKind.MODIFIED
    assert found["/link"] is ChangeKind.ADDED
    assert list(found) == sorted(found)


def test_has_changes_agrees_with_changes(tmp_path: Path) -> None:
    lower, upper = make_trees(tmp_path)
    assert has_changes(upper, [lower])
    # Only what the runtime leaves (bind-mount targets in an existing /etc, its mtime
    # unchanged) and a whiteout of something never below: no change.
    quiet = tmp_path / "quiet"
    (quiet / "etc").mkdir(parents=True)
    (quiet / "etc" / "hosts").touch()
    os.mknod(quiet / "never-there", stat.S_IFCHR | 0o000, os.makedev(0, 0))
    os.utime(
        quiet / "etc", ns=(os.stat(lower / "etc").st_atime_ns, os.stat(lower / "etc").st_mtime_ns)
    )
    os.chmod(quiet / "etc", stat.S_IMODE(os.stat(lower / "etc").st_mode))
    assert changes(quiet, [lower]) == []
    assert not has_changes(quiet, [lower])


def test_unused_mount_stubs_are_left_out_and_deleted(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "a" / "b" / "c").mkdir(parents=True)  # stubs all the way down
    (upper / "a" / "b" / "d").mkdir()
    (upper / "run" / "secrets").mkdir(parents=True)
    (upper / "run" / "secrets" / "token").touch()  # a file mount's stub
    (upper / "cache" / "used").mkdir(parents=True)
    (upper / "cache" / "used" / "kept.txt").write_text("written by the step\n")
    (upper / "real").write_text("x\n")
    stubs = ["a/b/c", "a/b/d", "run/secrets/token", "cache/used", "a/b", "run/secrets", "a"]
    stubs += ["cache", "run"]
    stubs.sort(key=lambda rel: rel.count("/"), reverse=True)
    out = io.BytesIO()
    settling = write_settled_layer(upper, out, None, stubs)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        names = tar.getnames()
    assert sorted(names) == ["cache", "cache/used", "cache/used/kept.txt", "real"]
    settling.apply()
    assert sorted(os.listdir(upper)) == ["cache", "real"]
