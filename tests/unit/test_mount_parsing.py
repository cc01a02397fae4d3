"""Parsing of Docker's -v / --mount / --tmpfs / VOLUME inputs into MountSpecs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockling import errors
from dockling.containers import mounts
from dockling.containers.spec import MountSpec
from dockling.mount import Mount

EXISTING = {"/srv", "/etc"}


def exists(path: str) -> bool:
    return path in EXISTING


# -- HostConfig.Binds (-v) ------------------------------------------------------------------

BINDS_OK = [
    ("/host:/ctr", MountSpec("bind", "/ctr", "/host", False, "rprivate")),
    ("/host:/ctr:ro", MountSpec("bind", "/ctr", "/host", True, "rprivate")),
    ("/host/:/ctr/./x/:rw", MountSpec("bind", "/ctr/x", "/host", False, "rprivate")),
    ("/host:/ctr:ro,rshared", MountSpec("bind", "/ctr", "/host", True, "rshared")),
    ("/host:/ctr:z", MountSpec("bind", "/ctr", "/host", False, "rprivate")),
    ("data:/ctr", MountSpec("volume", "/ctr", "data")),
    ("data:/ctr:rw,z", MountSpec("volume", "/ctr", "data")),
    ("my.vol-1:/ctr:ro,nocopy", MountSpec("volume", "/ctr", "my.vol-1", True, no_copy=True)),
    ("/ctr", MountSpec("volume", "/ctr")),  # dockerd: a lone destination = anonymous volume
]


@pytest.mark.parametrize(("raw", "expected"), BINDS_OK)
def test_binds(raw: str, expected: MountSpec) -> None:
    assert mounts.parse_bind(raw) == expected


BINDS_BAD = [
    ("", "invalid volume specification: ''"),
    (":/ctr", "invalid volume specification: ':/ctr'"),
    ("/ctr:ro", "invalid volume specification: '/ctr:ro'"),
    ("/a:/b:ro:x", "invalid volume specification: '/a:/b:ro:x'"),
    ("/a:/b:xyz", "invalid mode: xyz"),
    ("/a:/b:ro,rw", "invalid mode: ro,rw"),
    (
        "/a:rel",
        "invalid volume specification: '/a:rel': invalid mount config for type \"bind\": "
        "invalid mount path: 'rel' mount path must be absolute",
    ),
    (
        "/a:/",
        "invalid volume specification: '/a:/': invalid mount config for type \"bind\": "
        "invalid specification: destination can't be '/'",
    ),
    (
        "vol:/data:rshared",
        "invalid volume specification: 'vol:/data:rshared': invalid mount config for type "
        '"volume": field BindOptions must not be specified',
    ),
    ("bad:name:/x", "invalid mode: /x"),
    (
        "bad:name",
        "invalid volume specification: 'bad:name': invalid mount config for type "
        "\"volume\": invalid mount path: 'name' mount path must be absolute",
    ),
    (
        "./rel:/x",
        'create ./rel: "./rel" includes invalid characters for a local volume name, only '
        '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, '
        "use absolute path",
    ),
]


@pytest.mark.parametrize(("raw", "message"), BINDS_BAD)
def test_binds_errors(raw: str, message: str) -> None:
    with pytest.raises(errors.InvalidParameter) as info:
        mounts.parse_bind(raw)
    assert str(info.value) == message


# -- HostConfig.Mounts (--mount) ------------------------------------------------------------

MOUNTS_OK: list[tuple[dict[str, object], MountSpec]] = [
    (
        {"Type": "bind", "Source": "/srv", "Target": "/data"},
        MountSpec("bind", "/data", "/srv", False, "rprivate"),
    ),
    (
        {
            "Type": "bind",
            "Source": "/srv/",
            "Target": "/data",
            "ReadOnly": True,
            "BindOptions": {"Propagation": "rslave"},
        },
        MountSpec("bind", "/data", "/srv", True, "rslave"),
    ),
    (
        {
            "Type": "bind",
            "Source": "/nope",
            "Target": "/data",
            "BindOptions": {"CreateMountpoint": True},
        },
        MountSpec("bind", "/data", "/nope", False, "rprivate"),
    ),
    ({"Type": "volume", "Source": "v1", "Target": "/v"}, MountSpec("volume", "/v", "v1")),
    ({"Type": "volume", "Target": "/anon"}, MountSpec("volume", "/anon")),
    (
        {
            "Type": "volume",
            "Source": "v1",
            "Target": "/v",
            "ReadOnly": True,
            "VolumeOptions": {"NoCopy": True, "DriverConfig": {"Name": "local"}},
        },
        MountSpec("volume", "/v", "v1", True, no_copy=True),
    ),
    ({"Type": "tmpfs", "Target": "/t"}, MountSpec("tmpfs", "/t")),
    (
        {
            "Type": "tmpfs",
            "Target": "/t",
            "ReadOnly": True,
            "TmpfsOptions": {"SizeBytes": 64 << 20, "Mode": 0o1770, "Options": [["exec"]]},
        },
        MountSpec(
            "tmpfs", "/t", read_only=True, tmpfs_options=("ro", "mode=1770", "size=64m", "exec")
        ),
    ),
    (
        {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1000}},
        MountSpec("tmpfs", "/t", tmpfs_options=("size=1000",)),
    ),
]


@pytest.mark.parametrize(("obj", "expected"), MOUNTS_OK)
def test_mount_objects(obj: dict[str, object], expected: MountSpec) -> None:
    assert mounts.parse_mount_object(obj, path_exists=exists) == expected


def cfg(kind: str, message: str) -> str:
    return f'invalid mount config for type "{kind}": {message}'


MOUNTS_BAD: list[tuple[dict[str, object], str]] = [
    (
        {"Type": "bind", "Source": "/nope", "Target": "/d"},
        cfg("bind", "bind source path does not exist: /nope"),
    ),
    ({"Type": "bind", "Target": "/d"}, cfg("bind", "field Source must not be empty")),
    ({"Type": "bind", "Source": "/srv"}, cfg("bind", "field Target must not be empty")),
    (
        {"Type": "bind", "Source": "srv", "Target": "/d"},
        cfg("bind", "invalid mount path: 'srv' mount path must be absolute"),
    ),
    (
        {"Type": "bind", "Source": "/srv", "Target": "d"},
        cfg("bind", "invalid mount path: 'd' mount path must be absolute"),
    ),
    (
        {"Type": "bind", "Source": "/srv", "Target": "/"},
        cfg("bind", "invalid specification: destination can't be '/'"),
    ),
    (
        {"Type": "bind", "Source": "/srv", "Target": "/d", "BindOptions": {"Propagation": "x"}},
        cfg("bind", "invalid propagation mode: x"),
    ),
    (
        {"Type": "bind", "Source": "/srv", "Target": "/d", "VolumeOptions": {}},
        cfg("bind", "field VolumeOptions must not be specified"),
    ),
    (
        {"Type": "volume", "Target": "/d", "BindOptions": {}},
        cfg("volume", "field BindOptions must not be specified"),
    ),
    (
        {"Type": "volume", "Target": "/d", "ReadOnly": True},
        cfg("volume", "must not set ReadOnly mode when using anonymous volumes"),
    ),
    (
        {"Type": "tmpfs", "Target": "/d", "Source": "x"},
        cfg("tmpfs", "field Source must not be specified"),
    ),
    (
        {"Type": "tmpfs", "Target": "/d", "TmpfsOptions": {"Options": [["suid"]]}},
        cfg("tmpfs", "invalid option: suid"),
    ),
    ({"Type": "weird", "Target": "/d"}, cfg("weird", "mount type unknown")),
    ({"Target": "/d"}, cfg("", "mount type unknown")),
    ({"Type": "bind", "Source": "/srv", "Target": "/d", "ReadOnly": "yes"}, "wrong type"),
]


@pytest.mark.parametrize(("obj", "message"), MOUNTS_BAD)
def test_mount_object_errors(obj: dict[str, object], message: str) -> None:
    with pytest.raises(errors.InvalidParameter) as info:
        mounts.parse_mount_object(obj, path_exists=exists)
    assert message in str(info.value)
    if message != "wrong type":
        assert str(info.value) == message


def test_unsupported_mount_features_say_so() -> None:
    with pytest.raises(errors.NotImplementedFeature):
        mounts.parse_mount_object(
            {"Type": "volume", "Source": "v", "Target": "/d", "VolumeOptions": {"Subpath": "a"}}
        )
    with pytest.raises(errors.NotImplementedFeature):
        mounts.parse_mount_object(
            {
                "Type": "volume",
                "Source": "v",
                "Target": "/d",
                "VolumeOptions": {"DriverConfig": {"Name": "nfs-plugin"}},
            }
        )


# -- HostConfig.Tmpfs (--tmpfs) -------------------------------------------------------------


def test_tmpfs() -> None:
    specs = mounts.parse_tmpfs({"/run": "rw,size=64m", "/ro": "ro,mode=755", "/plain": ""})
    assert specs == [
        MountSpec("tmpfs", "/run", tmpfs_options=("rw", "size=64m")),
        MountSpec("tmpfs", "/ro", read_only=True, tmpfs_options=("ro", "mode=755")),
        MountSpec("tmpfs", "/plain"),
    ]


@pytest.mark.parametrize(
    ("tmpfs", "message"),
    [
        ({"/run": "foo"}, 'Invalid tmpfs option ["foo"]'),
        ({"/run": "size=1m,bar=2"}, 'Invalid tmpfs option ["bar" "2"]'),
        ({"run": ""}, "invalid mount path: 'run' mount path must be absolute"),
        ({"/": ""}, "invalid specification: destination can't be '/'"),
    ],
)
def test_tmpfs_errors(tmpfs: dict[str, str], message: str) -> None:
    with pytest.raises(errors.InvalidParameter) as info:
        mounts.parse_tmpfs(tmpfs)
    assert str(info.value) == message


# -- the whole HostConfig, duplicates, Config.Volumes and image VOLUMEs ---------------------


def test_host_mounts_in_order() -> None:
    specs = mounts.parse_host_mounts(
        binds=["/srv:/a"],
        mounts=[{"Type": "volume", "Target": "/b"}],
        tmpfs={"/c": ""},
        path_exists=exists,
    )
    assert [(s.type, s.target) for s in specs] == [
        ("bind", "/a"),
        ("volume", "/b"),
        ("tmpfs", "/c"),
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"binds": ["/srv:/data", "vol:/data/"]},
        {"binds": ["/srv:/data"], "mounts": [{"Type": "tmpfs", "Target": "/data"}]},
        {"mounts": [{"Type": "volume", "Target": "/data"}], "tmpfs": {"/data": ""}},
    ],
)
def test_duplicate_mount_point(kwargs: dict[str, object]) -> None:
    with pytest.raises(errors.InvalidParameter, match=r"^Duplicate mount point: /data$"):
        mounts.parse_host_mounts(path_exists=exists, **kwargs)  # type: ignore[arg-type]


def test_config_volumes() -> None:
    assert mounts.parse_config_volumes(["/data/", "/x", "/data"]) == ("/data", "/x")
    with pytest.raises(errors.InvalidParameter, match="mount path must be absolute"):
        mounts.parse_config_volumes(["data"])


def test_merge_image_volumes_skips_covered_targets() -> None:
    specs = (MountSpec("bind", "/data", "/srv", propagation="rprivate"),)
    merged = mounts.merge_image_volumes(specs, ["/data", "/cache/", "/cache", "/logs"])
    assert merged == (
        specs[0],
        MountSpec("volume", "/cache"),
        MountSpec("volume", "/logs"),
    )


def test_resolve_anonymous_volumes() -> None:
    names = iter(["a" * 64, "b" * 64])
    specs = (
        MountSpec("volume", "/x"),
        MountSpec("volume", "/y", "named"),
        MountSpec("volume", "/z"),
    )
    resolved = mounts.resolve_anonymous_volumes(specs, lambda: next(names))
    assert [s.source for s in resolved] == ["a" * 64, "named", "b" * 64]


def test_prepare_bind_sources_creates_only_missing(tmp_path: Path) -> None:
    present = tmp_path / "present"
    present.mkdir()
    missing = tmp_path / "missing" / "deep"
    specs = [
        MountSpec("bind", "/a", str(present)),
        MountSpec("bind", "/b", str(missing)),
        MountSpec("volume", "/c", "v"),
    ]
    assert mounts.prepare_bind_sources(specs) == [str(missing)]
    assert missing.is_dir()
    assert os.stat(missing).st_mode & 0o777 == 0o755 & ~_umask()


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


# -- runtime mounts and inspect -------------------------------------------------------------


def volume_path(name: str) -> str:
    return f"/var/lib/dockling/volumes/{name}/_data"


def test_to_runtime_mounts() -> None:
    specs = [
        MountSpec("bind", "/a/b", "/srv", True, "rshared"),
        MountSpec("volume", "/a", "v1"),
        MountSpec("tmpfs", "/run", tmpfs_options=("exec", "size=64m")),
        MountSpec("tmpfs", "/t2", read_only=True, tmpfs_options=("ro",)),
    ]
    assert mounts.to_runtime_mounts(specs, volume_path) == [
        Mount("bind", volume_path("v1"), "/a", ("rbind", "rprivate", "rw")),
        Mount("tmpfs", "tmpfs", "/run", ("nosuid", "nodev", "rprivate", "exec", "size=64m")),
        Mount("tmpfs", "tmpfs", "/t2", ("noexec", "nosuid", "nodev", "rprivate", "ro")),
        Mount("bind", "/srv", "/a/b", ("rbind", "rshared", "ro")),
    ]


def test_runtime_mounts_need_named_volumes() -> None:
    with pytest.raises(errors.SystemError):
        mounts.to_runtime_mounts([MountSpec("volume", "/x")], volume_path)


def test_inspect_mounts() -> None:
    specs = [
        MountSpec("bind", "/a", "/srv", True, "rprivate"),
        MountSpec("volume", "/v", "v1"),
        MountSpec("tmpfs", "/t"),
    ]
    assert mounts.inspect_mounts(specs, volume_path) == [
        {
            "Type": "bind",
            "Source": "/srv",
            "Destination": "/a",
            "Mode": "ro",
            "RW": False,
            "Propagation": "rprivate",
        },
        {
            "Type": "volume",
            "Name": "v1",
            "Source": volume_path("v1"),
            "Destination": "/v",
            "Driver": "local",
            "Mode": "z",
            "RW": True,
            "Propagation": "",
        },
        {
            "Type": "tmpfs",
            "Source": "",
            "Destination": "/t",
            "Mode": "",
            "RW": True,
            "Propagation": "",
        },
    ]


def test_merge_tmpfs_options_last_wins() -> None:
    assert mounts.merge_tmpfs_options(["noexec", "size=1m", "exec", "size=2m", "ro"]) == (
        "exec",
        "size=2m",
        "ro",
    )


@pytest.mark.parametrize(
    ("raw", "clean"), [("//a//b/", "/a/b"), ("/a/./b/../c", "/a/c"), ("/", "/"), ("", "")]
)
def test_clean_path(raw: str, clean: str) -> None:
    assert mounts.clean_path(raw) == clean
