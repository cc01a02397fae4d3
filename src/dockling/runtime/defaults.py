"""Docker's security and filesystem defaults for a container, as plain data.

Everything here is a constant except the two small readers of the host's capability
facts, which callers use as defaults for the keyword arguments of `runtime.ocispec`.
"""

from __future__ import annotations

from typing import Any

DEFAULT_PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Linux capability names indexed by their number (linux/capability.h).
CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)

# The 14 capabilities Docker grants an unprivileged container, in Docker's order.
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)

READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)


def _char(major: int | None, minor: int | None, access: str = "rwm") -> dict[str, Any]:
    rule: dict[str, Any] = {"allow": True, "type": "c", "access": access}
    if major is not None:
        rule["major"] = major
    if minor is not None:
        rule["minor"] = minor
    return rule


# Device cgroup rules: deny everything, then allow what Docker allows by default.
# A missing major/minor means "any" (the `*` of `c *:* m`).
DEFAULT_DEVICE_RULES: tuple[dict[str, Any], ...] = (
    {"allow": False, "access": "rwm"},
    _char(None, None, "m"),  # c *:* m: mknod of any char device (use still denied)
    {"allow": True, "type": "b", "access": "m"},  # b *:* m
    _char(1, 3),  # /dev/null
    _char(1, 5),  # /dev/zero
    _char(1, 7),  # /dev/full
    _char(1, 8),  # /dev/random
    _char(1, 9),  # /dev/urandom
    _char(5, 0),  # /dev/tty
    _char(5, 1),  # /dev/console
    _char(5, 2),  # /dev/ptmx
    _char(136, None),  # /dev/pts/*
    _char(10, 200),  # /dev/net/tun
)

PRIVILEGED_DEVICE_RULES: tuple[dict[str, Any], ...] = ({"allow": True, "access": "rwm"},)

_SIZE_64M = "size=65536k"


def default_mounts(*, privileged: bool) -> list[dict[str, Any]]:
    """The kernel filesystems every container gets, in mount order.

    A privileged container gets /sys and its cgroups writable, as Docker does.
    """
    sys_mode = "rw" if privileged else "ro"
    return [
        {
            "destination": "/proc",
            "type": "proc",
            "source": "proc",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", _SIZE_64M],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": [
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", sys_mode],
        },
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", sys_mode],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", _SIZE_64M],
        },
    ]


def host_capabilities() -> tuple[str, ...]:
    """The capabilities in this process's bounding set, by name.

    A privileged container gets these rather than every capability the kernel knows:
    asking runc for one outside the bounding set (CAP_SYS_RESOURCE on some CI hosts)
    makes the start fail.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    mask = int(line.split()[1], 16)
                    return tuple(name for bit, name in enumerate(CAPABILITIES) if mask & (1 << bit))
    except OSError:
        pass
    return kernel_capabilities()


def kernel_capabilities() -> tuple[str, ...]:
    """Every capability the running kernel knows (up to /proc/sys/kernel/cap_last_cap)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as f:
            last = int(f.read().strip())
    except (OSError, ValueError):
        last = len(CAPABILITIES) - 1
    return CAPABILITIES[: last + 1]
