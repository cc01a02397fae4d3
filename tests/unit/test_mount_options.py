"""mount(8)-style options split into mount(2) flags, propagation and filesystem data."""

from __future__ import annotations

from dockling import mount


def test_flags_propagation_and_data_are_split() -> None:
    flags, propagation, data = mount.parse_options(
        ["defaults", "ro", "nosuid", "lowerdir=/a:/b", "sync", "rprivate", "index=off"]
    )
    assert flags == mount.MS_RDONLY | mount.MS_NOSUID | mount.MS_SYNCHRONOUS
    assert propagation == mount.MS_PRIVATE | mount.MS_REC
    assert data == "lowerdir=/a:/b,index=off"


def test_later_options_win() -> None:
    flags, _, _ = mount.parse_options(["ro", "noexec", "rw", "rbind"])
    assert flags == mount.MS_NOEXEC | mount.MS_BIND | mount.MS_REC


def test_mountinfo_escapes_are_undone() -> None:
    assert mount._unescape("/tmp/a\\040b\\134c") == "/tmp/a b\\c"
    assert "/" in mount.mount_points()
    assert mount.is_mountpoint("/")
