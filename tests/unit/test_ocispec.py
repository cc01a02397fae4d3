"""Unit tests of the OCI spec derivation (no runc; host facts pinned)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from dockling.containers.spec import ContainerSpec, Resources
from dockling.errors import InvalidParameter
from dockling.mount import Mount
from dockling.runtime import cgroups, seccomp
from dockling.runtime.defaults import (
    CAPABILITIES,
    DEFAULT_CAPABILITIES,
    MASKED_PATHS,
    READONLY_PATHS,
)
from dockling.runtime.ocispec import (
    ProcessConfig,
    build_exec_process,
    build_spec,
    capabilities,
    linux_resources,
    parse_security_opts,
    seccomp_profile_path,
    validate_resources,
)

MiB = 1024 * 1024
ALL = CAPABILITIES[:41]
PROCESS = ProcessConfig(
    args=("sh",), env=(), cwd="", uid=0, gid=0, additional_gids=(), terminal=False
)


def spec_of(**kw: Any) -> ContainerSpec:
    return replace(ContainerSpec(image="busybox"), **kw)


def build(spec: ContainerSpec | None = None, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "container_id": "abc123",
        "spec": spec or spec_of(),
        "process": PROCESS,
        "rootfs": "/rootfs",
        "mounts": (),
        "hostname": "abc123",
        "netns_path": None,
        "available_caps": ALL,
        "machine": "x86_64",
        "kernel_release": "6.1.0",
    }
    args.update(kw)
    return build_spec(**args)


# --- capabilities


def caps(**kw: Any) -> list[str]:
    kw.setdefault("privileged", False)
    kw.setdefault("cap_add", ())
    kw.setdefault("cap_drop", ())
    return capabilities(available=ALL, **kw)


def test_default_capabilities() -> None:
    assert caps() == list(DEFAULT_CAPABILITIES)
    assert len(DEFAULT_CAPABILITIES) == 14


def test_cap_add_and_drop_accept_any_case_and_prefix() -> None:
    result = caps(cap_add=("sys_admin", "CAP_net_admin"), cap_drop=("chown", "CAP_KILL"))
    assert "CAP_SYS_ADMIN" in result and "CAP_NET_ADMIN" in result
    assert "CAP_CHOWN" not in result and "CAP_KILL" not in result
    assert len(result) == 14


def test_cap_drop_all_keeps_only_adds() -> None:
    assert caps(cap_drop=("ALL",), cap_add=("NET_BIND_SERVICE",)) == ["CAP_NET_BIND_SERVICE"]
    assert caps(cap_drop=("all",)) == []


def test_cap_add_all_minus_drops() -> None:
    result = caps(cap_add=("ALL",), cap_drop=("SYS_ADMIN",))
    assert len(result) == len(ALL) - 1
    assert "CAP_SYS_ADMIN" not in result


def test_unknown_capability() -> None:
    with pytest.raises(InvalidParameter, match=r'^unknown capability: "CAP_FOO"$'):
        caps(cap_add=("foo",))


def test_caps_outside_the_bounding_set() -> None:
    without = tuple(c for c in ALL if c not in ("CAP_SYS_RESOURCE", "CAP_MKNOD"))
    with pytest.raises(InvalidParameter, match="CAP_SYS_RESOURCE is not in the daemon"):
        capabilities(privileged=False, cap_add=("SYS_RESOURCE",), cap_drop=(), available=without)
    granted = capabilities(privileged=False, cap_add=("ALL",), cap_drop=(), available=without)
    assert "CAP_SYS_RESOURCE" not in granted
    defaults_only = capabilities(privileged=False, cap_add=(), cap_drop=(), available=without)
    assert "CAP_MKNOD" not in defaults_only and len(defaults_only) == 13


def test_privileged_gets_available_caps() -> None:
    assert caps(privileged=True, cap_drop=("CHOWN",)) == list(ALL)


def test_process_capability_sets() -> None:
    process_caps = build()["process"]["capabilities"]
    assert set(process_caps) == {"bounding", "effective", "permitted"}
    assert process_caps["effective"] == list(DEFAULT_CAPABILITIES)


# --- process


def test_env_defaults() -> None:
    env = build()["process"]["env"]
    assert env[0] == "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert "HOSTNAME=abc123" in env
    assert not any(e.startswith("TERM=") for e in env)


def test_env_tty_and_overrides() -> None:
    process = replace(PROCESS, env=("PATH=/custom", "FOO=1", "TERM=dumb"), terminal=True)
    env = build(process=process)["process"]["env"]
    assert env == ["PATH=/custom", "HOSTNAME=abc123", "TERM=dumb", "FOO=1"]


def test_process_basics() -> None:
    process = replace(PROCESS, uid=1000, gid=100, additional_gids=(10, 20), cwd="/app")
    config = build(process=process)
    assert config["ociVersion"] == "1.0.2"
    assert config["root"] == {"path": "/rootfs", "readonly": False}
    assert config["hostname"] == "abc123"
    proc = config["process"]
    assert proc["user"] == {"uid": 1000, "gid": 100, "additionalGids": [10, 20]}
    assert proc["cwd"] == "/app"
    assert proc["noNewPrivileges"] is False
    assert proc["oomScoreAdj"] == 0
    assert "rlimits" not in proc
    assert build()["process"]["cwd"] == "/"


def test_nofile_is_clamped_to_hard_limit() -> None:
    proc = build(nofile_limit=(1048576, 20000))["process"]
    assert proc["rlimits"] == [{"type": "RLIMIT_NOFILE", "soft": 20000, "hard": 20000}]


def test_read_only_rootfs() -> None:
    assert build(spec_of(read_only_rootfs=True))["root"]["readonly"] is True


# --- security options


@pytest.mark.parametrize(
    "opt", ["no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"]
)
def test_no_new_privileges(opt: str) -> None:
    assert build(spec_of(security_opt=(opt,)))["process"]["noNewPrivileges"] is True


def test_unknown_security_opt() -> None:
    with pytest.raises(InvalidParameter, match="bogus=1"):
        parse_security_opts(["bogus=1"])
    with pytest.raises(InvalidParameter, match="whatever"):
        parse_security_opts(["whatever"])


def test_seccomp_unconfined_and_file() -> None:
    assert "seccomp" not in build(spec_of(security_opt=("seccomp=unconfined",)))["linux"]
    spec = spec_of(security_opt=("seccomp=/p.json",))
    assert seccomp_profile_path(spec) == "/p.json"
    with pytest.raises(InvalidParameter, match=r"/p\.json"):
        build(spec)
    custom = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}
    assert build(spec, seccomp_profile=custom)["linux"]["seccomp"]["defaultAction"] == (
        "SCMP_ACT_ALLOW"
    )


def test_systempaths_unconfined() -> None:
    linux = build(spec_of(security_opt=("systempaths=unconfined",)))["linux"]
    assert "maskedPaths" not in linux


# --- linux


def test_masked_and_readonly_paths() -> None:
    linux = build()["linux"]
    assert linux["maskedPaths"] == list(MASKED_PATHS)
    assert "/proc/kcore" in linux["maskedPaths"]
    assert linux["readonlyPaths"] == list(READONLY_PATHS)


def test_privileged_spec() -> None:
    linux = build(spec_of(privileged=True))["linux"]
    assert "maskedPaths" not in linux and "readonlyPaths" not in linux
    assert "seccomp" not in linux
    assert linux["resources"]["devices"] == [{"allow": True, "access": "rwm"}]


def test_default_devices() -> None:
    devices = build()["linux"]["resources"]["devices"]
    assert devices[0] == {"allow": False, "access": "rwm"}
    allowed = {
        (d.get("major"), d.get("minor")) for d in devices if d["allow"] and d.get("type") == "c"
    }
    for pair in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
        (136, None),
        (10, 200),
    ]:
        assert pair in allowed


def test_namespaces_and_cgroups_path() -> None:
    linux = build(netns_path="/run/netns/x")["linux"]
    types = [n["type"] for n in linux["namespaces"]]
    assert types == ["pid", "ipc", "uts", "mount", "cgroup", "network"]
    assert linux["namespaces"][-1] == {"type": "network", "path": "/run/netns/x"}
    assert linux["cgroupsPath"] == "/dockling/abc123"
    host = build(spec_of(network_mode="host"))["linux"]["namespaces"]
    assert "network" not in [n["type"] for n in host]
    none = build(spec_of(network_mode="none"))["linux"]["namespaces"]
    assert {"type": "network"} in none


def test_mounts_defaults_then_callers() -> None:
    extra = (
        Mount("bind", "/host/hosts", "/etc/hosts", ("rbind", "ro")),
        Mount("tmpfs", "tmpfs", "/dev/shm", ("size=1g",)),
    )
    mounts = build(mounts=extra)["mounts"]
    dests = [m["destination"] for m in mounts]
    assert dests == [
        "/proc",
        "/dev",
        "/dev/pts",
        "/sys",
        "/sys/fs/cgroup",
        "/dev/mqueue",
        "/etc/hosts",
        "/dev/shm",
    ]
    assert mounts[-1]["options"] == ["size=1g"]
    shm = next(m for m in build()["mounts"] if m["destination"] == "/dev/shm")
    assert "size=65536k" in shm["options"] and "mode=1777" in shm["options"]
    sysfs = next(m for m in build()["mounts"] if m["destination"] == "/sys")
    assert "ro" in sysfs["options"]


# --- resources


def test_memory_swap_translation() -> None:
    assert linux_resources(Resources(memory=64 * MiB))["memory"] == {
        "limit": 64 * MiB,
        "swap": 128 * MiB,
    }
    assert linux_resources(Resources(memory=64 * MiB, memory_swap=-1))["memory"]["swap"] == -1
    assert (
        linux_resources(Resources(memory=64 * MiB, memory_swap=100 * MiB))["memory"]["swap"]
        == 100 * MiB
    )
    assert "swap" not in linux_resources(Resources(memory=64 * MiB), swap_limit=False)["memory"]
    assert linux_resources(Resources()) == {}


def test_cpu_and_pids_translation() -> None:
    r = linux_resources(Resources(nano_cpus=1_500_000_000, cpu_shares=512, pids_limit=100))
    assert r["cpu"] == {"shares": 512, "period": 100000, "quota": 150000}
    assert r["pids"] == {"limit": 100}
    assert linux_resources(Resources(cpu_period=50000, cpu_quota=25000))["cpu"] == {
        "period": 50000,
        "quota": 25000,
    }
    assert "pids" not in linux_resources(Resources(pids_limit=-1))


def test_resources_in_spec() -> None:
    spec = spec_of(resources=Resources(memory=64 * MiB, pids_limit=10))
    resources = build(spec)["linux"]["resources"]
    assert resources["memory"]["limit"] == 64 * MiB
    assert resources["pids"] == {"limit": 10}


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        (Resources(memory=4 * MiB), "Minimum memory limit allowed is 6MB"),
        (
            Resources(memory=64 * MiB, memory_swap=32 * MiB),
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ),
        (
            Resources(memory_swap=32 * MiB),
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ),
        (
            Resources(nano_cpus=3_000_000_000),
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available",
        ),
        (
            Resources(nano_cpus=-1),
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available",
        ),
        (
            Resources(nano_cpus=1_000_000_000, cpu_quota=5000),
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ),
        (Resources(cpu_period=10), "CPU cfs period can not be less than 1ms"),
        (Resources(cpu_quota=10), "CPU cfs quota can not be less than 1ms"),
    ],
)
def test_validate_resources(resources: Resources, message: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        validate_resources(resources, host_cpus=2)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_validate_accepts_sane_values() -> None:
    validate_resources(
        Resources(memory=6 * MiB, memory_swap=-1, nano_cpus=2_000_000_000, pids_limit=5),
        host_cpus=2,
    )


# --- seccomp


def seccomp_rules(profile: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    by_name: dict[str, list[dict[str, Any]]] = {}
    for rule in profile["syscalls"]:
        for name in rule["names"]:
            by_name.setdefault(name, []).append(rule)
    return by_name


def test_default_seccomp_shape() -> None:
    profile = build()["linux"]["seccomp"]
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    assert profile["defaultErrnoRet"] == 1
    assert profile["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    rules = seccomp_rules(profile)
    for name in ("read", "write", "execve", "openat", "clone", "socket", "epoll_wait", "ptrace"):
        assert name in rules, name
    for name in (
        "mount",
        "umount2",
        "reboot",
        "kexec_load",
        "init_module",
        "swapon",
        "keyctl",
        "add_key",
        "request_key",
        "bpf",
        "perf_event_open",
        "setns",
        "arm_fadvise64_64",
    ):
        assert name not in rules, name
    # clone and unshare only without namespace flags
    assert all(r.get("args") for r in rules["clone"])
    assert all(r.get("args") for r in rules["unshare"])
    assert rules["clone3"][0]["errnoRet"] == 38
    assert {a["value"] for r in rules["personality"] for a in r["args"]} == {
        0,
        8,
        0x20000,
        0x20008,
        0xFFFFFFFF,
    }


def test_seccomp_capability_groups() -> None:
    spec = spec_of(cap_add=("SYS_ADMIN", "SYS_PTRACE", "SYS_TIME", "SYS_MODULE", "SYS_BOOT"))
    rules = seccomp_rules(build(spec)["linux"]["seccomp"])
    for name in ("mount", "umount2", "setns", "bpf", "settimeofday", "init_module", "reboot"):
        assert name in rules, name
    assert any(not r.get("args") for r in rules["clone"])
    assert "clone3" not in [n for n, rs in rules.items() if any("errnoRet" in r for r in rs)]


def test_seccomp_old_kernel_blocks_ptrace() -> None:
    rules = seccomp_rules(build(kernel_release="4.4.0")["linux"]["seccomp"])
    assert "ptrace" not in rules


def test_seccomp_aarch64() -> None:
    profile = build(machine="aarch64")["linux"]["seccomp"]
    assert profile["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    rules = seccomp_rules(profile)
    assert "arm_fadvise64_64" in rules and "arch_prctl" not in rules


def test_load_profile_errors(tmp_path: Any) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(InvalidParameter, match="decoding seccomp profile"):
        seccomp.load_profile(str(bad))
    with pytest.raises(InvalidParameter, match="opening seccomp profile"):
        seccomp.load_profile(str(tmp_path / "missing.json"))


# --- exec


def test_exec_process() -> None:
    proc = build_exec_process(
        args=("ls",),
        env=("FOO=1",),
        cwd="",
        uid=1,
        gid=2,
        additional_gids=(),
        terminal=True,
        privileged=False,
        cap_add=("NET_ADMIN",),
        cap_drop=(),
        no_new_privileges=True,
        available_caps=ALL,
    )
    assert proc["args"] == ["ls"]
    assert proc["env"][0].startswith("PATH=") and "FOO=1" in proc["env"]
    assert "TERM=xterm" in proc["env"]
    assert proc["cwd"] == "/"
    assert proc["user"] == {"uid": 1, "gid": 2}
    assert "CAP_NET_ADMIN" in proc["capabilities"]["effective"]
    assert proc["noNewPrivileges"] is True
    privileged = build_exec_process(
        args=("ls",),
        env=(),
        cwd="/",
        uid=0,
        gid=0,
        additional_gids=(),
        terminal=False,
        privileged=True,
        cap_add=(),
        cap_drop=(),
        no_new_privileges=False,
        available_caps=ALL,
    )
    assert privileged["capabilities"]["bounding"] == list(ALL)


def test_v2_stats_layout(tmp_path: Path) -> None:
    """The pure cgroup v2 reader, on a tree laid out like the kernel's files."""
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids io\n")
    cg = tmp_path / "dockling" / "c1"
    cg.mkdir(parents=True)
    (cg / "cpu.stat").write_text(
        "usage_usec 2000\nuser_usec 1500\nsystem_usec 500\n"
        "nr_periods 4\nnr_throttled 1\nthrottled_usec 10\n"
    )
    (cg / "memory.current").write_text("4096\n")
    (cg / "memory.max").write_text("8192\n")
    (cg / "memory.stat").write_text("anon 1024\nfile 2048\n")
    (cg / "pids.current").write_text("3\n")
    (cg / "pids.max").write_text("max\n")
    (cg / "io.stat").write_text("8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n")
    (cg / "cgroup.freeze").write_text("0\n")
    stats = cgroups.read_stats("/dockling/c1", root=str(tmp_path))
    assert stats["cpu_stats"]["cpu_usage"]["total_usage"] == 2_000_000
    assert stats["cpu_stats"]["cpu_usage"]["usage_in_usermode"] == 1_500_000
    assert stats["cpu_stats"]["throttling_data"]["throttled_periods"] == 1
    assert stats["memory_stats"]["usage"] == 4096
    assert stats["memory_stats"]["limit"] == 8192
    assert stats["memory_stats"]["stats"] == {"anon": 1024, "file": 2048}
    assert stats["pids_stats"] == {"current": 3}
    assert stats["blkio_stats"]["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "read", "value": 100},
        {"major": 8, "minor": 0, "op": "write", "value": 200},
    ]
    assert stats["read"].endswith("Z")
    assert cgroups.freezer_state("/dockling/c1", root=str(tmp_path)) == "THAWED"
    assert cgroups.cgroup_dirs("/dockling/c1", root=str(tmp_path)) == [str(cg)]
