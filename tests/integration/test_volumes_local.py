"""The local volume store on a temporary root: real directories, real tmpfs and bind mounts."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockling import errors
from dockling.containers import mounts
from dockling.mount import is_mountpoint
from dockling.volumes.base import ANONYMOUS_LABEL, VolumeDriver
from dockling.volumes.local import LocalVolumeStore
from tests.helpers.daemon import CACHE
from tests.helpers.mounts import unmount_under

pytestmark = pytest.mark.root


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """The volumes root; fails the test if a mount under it outlives the test."""
    if os.geteuid() != 0:
        pytest.fail("these tests mount filesystems and need root")
    root = tmp_path / "volumes"
    yield root
    leaked = unmount_under(tmp_path)
    assert leaked == [], f"leaked mounts: {leaked}"


@pytest.fixture
def store(root: Path) -> LocalVolumeStore:
    return LocalVolumeStore(root)


def test_store_satisfies_protocol(store: LocalVolumeStore) -> None:
    driver: VolumeDriver = store
    assert driver.list() == []


def test_create_inspect_list_remove(store: LocalVolumeStore, root: Path) -> None:
    v = store.create("data", labels={"app": "web"})
    assert v.name == "data"
    assert v.driver == "local"
    assert v.scope == "local"
    assert v.mountpoint == str(root / "data" / "_data")
    assert Path(v.mountpoint).is_dir()
    assert v.labels == {"app": "web"}
    assert v.created_at.endswith("Z") and "T" in v.created_at
    assert store.get("data") == v
    # Docker returns an existing volume unchanged, whatever the new labels say.
    assert store.create("data", labels={"other": "x"}) == v

    anon = store.create(None)
    assert len(anon.name) == 64
    assert anon.labels == {ANONYMOUS_LABEL: ""}
    assert [x.name for x in store.list()] == sorted(["data", anon.name])

    store.remove("data")
    with pytest.raises(errors.VolumeNotFound, match=r"^get data: no such volume$"):
        store.get("data")
    with pytest.raises(errors.VolumeNotFound):
        store.remove("data")
    store.remove("data", force=True)
    assert not (root / "data").exists()
    assert [x.name for x in store.list()] == [anon.name]


def test_invalid_names(store: LocalVolumeStore) -> None:
    with pytest.raises(errors.InvalidParameter, match="includes invalid characters"):
        store.create("bad:name")
    with pytest.raises(errors.VolumeNotFound):
        store.get("../etc")
    with pytest.raises(errors.InvalidParameter, match='invalid option: "foo"'):
        store.create("x1", options={"foo": "bar"})
    assert store.list() == []


def test_in_use_refuses_remove_and_survives_reopen(store: LocalVolumeStore, root: Path) -> None:
    v = store.create("busy")
    assert store.acquire("busy", "c2") == v.mountpoint
    store.acquire("busy", "c1")
    store.acquire("busy", "c1")  # idempotent
    assert store.users("busy") == ["c1", "c2"]
    with pytest.raises(errors.VolumeInUse) as info:
        store.remove("busy")
    assert str(info.value) == "remove busy: volume is in use - [c1, c2]"

    reopened = LocalVolumeStore(root)
    assert reopened.users("busy") == ["c1", "c2"]
    assert reopened.get("busy") == v
    reopened.release("busy", "c1")
    reopened.release("busy", "c1")  # unknown holder: no-op
    reopened.release("busy", "c2")
    assert reopened.users("busy") == []
    reopened.remove("busy")
    assert reopened.list() == []


def test_prune(store: LocalVolumeStore) -> None:
    named = store.create("named", labels={"keep": "no"})
    anon_used = store.create(None)
    anon_free = store.create(None, labels={"tier": "cache"})
    anon_plain = store.create(None)
    Path(anon_free.mountpoint, "blob").write_bytes(b"x" * 5000)
    os.link(Path(anon_free.mountpoint, "blob"), Path(anon_free.mountpoint, "hardlink"))
    store.acquire(anon_used.name, "c1")
    assert store.usage(anon_free.name) == 5000

    report = store.prune(labels=["tier=cache"])
    assert report.removed == (anon_free.name,)
    assert report.space_reclaimed == 5000

    report = store.prune(not_labels=["tier"])
    assert report.removed == (anon_plain.name,)
    assert report.space_reclaimed == 0

    # Named volumes go only with all=true; a volume in use never.
    assert store.prune().removed == ()
    assert store.prune(all=True, labels=["keep"]).removed == (named.name,)
    assert [v.name for v in store.list()] == [anon_used.name]
    store.release(anon_used.name, "c1")
    assert store.prune(all=True).removed == (anon_used.name,)


def test_interrupted_create_and_delete_are_invisible(root: Path) -> None:
    store = LocalVolumeStore(root)
    (root / "half" / "_data").mkdir(parents=True)  # crash before the record was written
    (root / ".trash-gone-1234" / "_data").mkdir(parents=True)  # crash mid-remove
    assert store.list() == []
    reopened = LocalVolumeStore(root)
    assert not (root / ".trash-gone-1234").exists()
    assert reopened.create("half").name == "half"


def test_metadata_is_json_with_holders(store: LocalVolumeStore, root: Path) -> None:
    store.create("meta", options={})
    store.acquire("meta", "abc")
    record = json.loads((root / "meta" / "volume.json").read_text())
    assert record["Users"] == ["abc"]
    assert not (root / "meta" / "volume.json.tmp").exists()
    store.release("meta", "abc")


def test_tmpfs_volume_mounts_on_first_use(store: LocalVolumeStore, root: Path) -> None:
    v = store.create("scratch", options={"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
    assert v.options == {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}
    assert not is_mountpoint(v.mountpoint)
    store.acquire("scratch", "c1")
    store.acquire("scratch", "c2")
    assert is_mountpoint(v.mountpoint)
    st = os.statvfs(v.mountpoint)
    assert st.f_blocks * st.f_frsize == 1 << 20
    Path(v.mountpoint, "f").write_text("hello")

    # After a daemon restart the mount is still there and the holders are remembered.
    reopened = LocalVolumeStore(root)
    reopened.release("scratch", "c1")
    assert is_mountpoint(v.mountpoint)
    reopened.release("scratch", "c2")
    assert not is_mountpoint(v.mountpoint)
    assert not Path(v.mountpoint, "f").exists()  # the data lived in the tmpfs
    reopened.remove("scratch")


def test_bind_volume_keeps_host_data_on_remove(store: LocalVolumeStore, tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "precious").write_text("keep me")
    v = store.create("hostdir", options={"type": "none", "device": str(host), "o": "bind,ro"})
    store.acquire("hostdir", "c1")
    assert Path(v.mountpoint, "precious").read_text() == "keep me"
    with pytest.raises(OSError):
        Path(v.mountpoint, "new").write_text("no")  # the bind is read-only
    store.release("hostdir", "c1")
    assert not is_mountpoint(v.mountpoint)
    store.acquire("hostdir", "c2")
    store.release("hostdir", "c2")
    store.remove("hostdir")
    assert (host / "precious").read_text() == "keep me"


def test_mount_failure_is_a_system_error_and_records_nothing(store: LocalVolumeStore) -> None:
    store.create("broken", options={"type": "nosuchfs", "device": "x", "o": ""})
    with pytest.raises(errors.SystemError, match="error while mounting volume"):
        store.acquire("broken", "c1")
    assert store.users("broken") == []
    store.remove("broken")


BUSYBOX = CACHE / "busybox-rootfs.tar"


@pytest.mark.runc
def test_runc_container_sees_volume_bind_and_tmpfs(store: LocalVolumeStore, tmp_path: Path) -> None:
    """The parsed specs, turned into OCI mounts, work in a real runc container."""
    if not BUSYBOX.exists():
        pytest.fail(f"{BUSYBOX} is missing: run scripts/build-test-images")
    bundle = tmp_path / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    subprocess.run(["tar", "-xf", str(BUSYBOX), "-C", str(bundle / "rootfs")], check=True)
    host = tmp_path / "host"
    specs = mounts.parse_host_mounts(binds=[f"{host}:/h:ro", "appdata:/v"], tmpfs={"/t": "size=1m"})
    assert mounts.prepare_bind_sources(specs) == [str(host)]
    (host / "f").write_text("from host")
    specs = mounts.merge_image_volumes(specs, ["/anon"])
    specs = mounts.resolve_anonymous_volumes(specs, lambda: store.create(None).name)
    for spec in specs:
        if spec.type == "volume":
            store.create(spec.source)
            store.acquire(spec.source, "c1")

    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = [
        "sh",
        "-c",
        "cat /h/f && echo in-volume > /v/g && touch /t/x && ! touch /h/nope 2>/dev/null",
    ]
    volume_path = lambda name: store.get(name).mountpoint  # noqa: E731
    config["mounts"] += [m.to_oci() for m in mounts.to_runtime_mounts(specs, volume_path)]
    (bundle / "config.json").write_text(json.dumps(config))
    run = subprocess.run(
        ["runc", "run", "--bundle", str(bundle), f"dockling-voltest-{os.getpid()}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (run.returncode, run.stdout) == (0, "from host"), run.stderr
    assert Path(store.get("appdata").mountpoint, "g").read_text() == "in-volume\n"
    assert not (host / "nope").exists()
    for spec in specs:
        if spec.type == "volume":
            store.release(spec.source, "c1")
            store.remove(spec.source)
    assert store.list() == []


def test_reconcile_forgets_dead_holders_and_unmounts(store: LocalVolumeStore, root: Path) -> None:
    v = store.create("t1", options={"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
    store.create("plain")
    store.acquire("t1", "dead")
    store.acquire("plain", "live")
    store.acquire("plain", "dead")
    reopened = LocalVolumeStore(root)
    assert reopened.reconcile({"live"}) == ["plain", "t1"]
    assert reopened.users("plain") == ["live"]
    assert reopened.users("t1") == []
    assert not is_mountpoint(v.mountpoint)
    assert reopened.reconcile({"live"}) == []
    reopened.release("plain", "live")


def test_prune_result_unpacks(store: LocalVolumeStore) -> None:
    store.create(None)
    removed, reclaimed = store.prune()
    assert len(removed) == 1
    assert reclaimed == 0
