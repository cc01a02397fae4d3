"""Volume names, local driver options and the Engine API JSON of a volume."""

from __future__ import annotations

import pytest

from dockling import errors
from dockling.mount import MS_NOEXEC
from dockling.volumes import local_mount
from dockling.volumes.base import Volume, to_api
from dockling.volumes.names import anonymous_volume_name, validate_volume_name


@pytest.mark.parametrize("name", ["ab", "my_vol", "a.b-c_d", "9x", "x" * 200])
def test_valid_names(name: str) -> None:
    validate_volume_name(name)


@pytest.mark.parametrize("name", ["bad:name", "-lead", ".hidden", "a/b", "", "with space", "0"])
def test_invalid_names_use_dockers_message(name: str) -> None:
    with pytest.raises(errors.InvalidParameter) as info:
        validate_volume_name(name)
    assert str(info.value) == (
        f'create {name}: "{name}" includes invalid characters for a local volume name, only '
        '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, '
        "use absolute path"
    )


def test_anonymous_name_is_64_hex() -> None:
    name = anonymous_volume_name()
    assert len(name) == 64
    int(name, 16)
    validate_volume_name(name)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"foo": "bar"}, 'invalid option: "foo"'),
        ({"type": "tmpfs"}, 'missing required option: "device"'),
        ({"device": "tmpfs"}, 'missing required option: "type"'),
        ({"o": "size=1m"}, 'missing required option: "device"'),
        ({"type": "none", "device": "rel", "o": "bind"}, "must be an absolute path"),
    ],
)
def test_bad_driver_options(options: dict[str, str], message: str) -> None:
    with pytest.raises(errors.InvalidParameter, match=message):
        local_mount.validate_options(options)


def test_driver_options_split_flags_from_data() -> None:
    request = local_mount.parse_options(
        {"type": "tmpfs", "device": "tmpfs", "o": "size=100m,ro,noexec,uid=1000,rw"}
    )
    assert request.fstype == "tmpfs"
    assert request.flags == MS_NOEXEC
    assert request.data == "size=100m,uid=1000"
    local_mount.validate_options({"type": "tmpfs", "device": "tmpfs", "o": "size=100m"})
    local_mount.validate_options({})


def test_to_api() -> None:
    v = Volume("v", "local", "/root/v/_data", "2024-01-02T03:04:05Z")
    assert to_api(v) == {
        "CreatedAt": "2024-01-02T03:04:05Z",
        "Driver": "local",
        "Labels": None,
        "Mountpoint": "/root/v/_data",
        "Name": "v",
        "Options": None,
        "Scope": "local",
    }
    labelled = Volume("v", "local", "/m", "t", labels={"a": "b"}, options={"type": "tmpfs"})
    body = to_api(labelled, size=10, ref_count=2)
    assert body["Labels"] == {"a": "b"}
    assert body["Options"] == {"type": "tmpfs"}
    assert body["UsageData"] == {"Size": 10, "RefCount": 2}
    assert to_api(v, ref_count=0)["UsageData"] == {"Size": -1, "RefCount": 0}
