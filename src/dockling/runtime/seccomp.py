"""The default seccomp profile, and compiling a Docker-format profile into an OCI one.

A Docker-format profile (what `--security-opt seccomp=profile.json` names) has an
`archMap` and syscall rules with `includes`/`excludes` conditions on capabilities,
architectures and kernel versions.  The OCI runtime spec has none of that: the rules
are evaluated here, for one container's capabilities on one host, and only the
matching ones are kept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable
from typing import Any

from dockling.errors import InvalidParameter

ERRNO_EPERM = 1
ERRNO_ENOSYS = 38

# Namespace flags of clone(2)/unshare(2): CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC |
# NEWUSER | NEWPID | NEWNET | NEWTIME(0x80).  Without CAP_SYS_ADMIN a process may
# clone/unshare only when none of these bits is set.
CLONE_NAMESPACE_FLAGS = 0x7E020000 | 0x80

ARCH_MAP: list[dict[str, Any]] = [
    {
        "architecture": "SCMP_ARCH_X86_64",
        "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    },
    {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
]

# uname -m → libseccomp architecture name.
_MACHINE_ARCH = {
    "x86_64": "SCMP_ARCH_X86_64",
    "amd64": "SCMP_ARCH_X86_64",
    "i686": "SCMP_ARCH_X86",
    "aarch64": "SCMP_ARCH_AARCH64",
    "arm64": "SCMP_ARCH_AARCH64",
    "armv7l": "SCMP_ARCH_ARM",
}

# Syscalls any program may make.  Names a given libseccomp or architecture does not
# know are skipped by runc, so 32-bit and newer-kernel variants are listed freely.
_ALLOWED = """
accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown
chown32 clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime
clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range connect
copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old
epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit
exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir
fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr
flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64
fsync ftruncate ftruncate64 futex futex_requeue futex_time64 futex_wait futex_waitv
futex_wake futimesat get_mempolicy get_robust_list get_thread_area getcpu getcwd getdents
getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32
getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid
getresgid32 getresuid getresuid32 getrlimit getrusage getsid getsockname getsockopt
gettid gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init inotify_init1
inotify_rm_watch io_cancel io_destroy io_getevents io_pgetevents io_pgetevents_time64
io_setup io_submit ioctl ioprio_get ioprio_set ipc kill landlock_add_rule
landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat
listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise
map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat
mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget
msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat
_newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc
pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64
process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead
readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages
removexattr rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction
rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_get_priority_max sched_get_priority_min
sched_getaffinity sched_getattr sched_getparam sched_getscheduler sched_rr_get_interval
sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop
semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto set_robust_list
set_thread_area set_tid_address setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32
setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid
setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit setsid setsockopt setuid
setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4
sigprocmask sigreturn socket socketcall socketpair splice stat stat64 statfs statfs64
statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create
timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64
timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times
tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat
utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
"""

# personality(2) values that do not weaken the container: PER_LINUX, PER_LINUX32,
# UNAME26, UNAME26|PER_LINUX32, and the 0xffffffff query.
_SAFE_PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

# Syscalls unlocked by holding a capability.
_BY_CAPABILITY: dict[str, str] = {
    "CAP_DAC_READ_SEARCH": "open_by_handle_at",
    "CAP_SYS_ADMIN": (
        "bpf fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount "
        "mount_setattr move_mount open_tree perf_event_open pivot_root quotactl quotactl_fd "
        "setdomainname sethostname setns syslog umount umount2 clone clone3 unshare"
    ),
    "CAP_SYS_BOOT": "reboot",
    "CAP_SYS_CHROOT": "chroot",
    "CAP_SYS_MODULE": "delete_module init_module finit_module",
    "CAP_SYS_PACCT": "acct",
    "CAP_SYS_PTRACE": "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace",
    "CAP_SYS_RAWIO": "iopl ioperm",
    "CAP_SYS_TIME": "settimeofday stime clock_settime clock_settime64",
    "CAP_SYS_TTY_CONFIG": "vhangup",
    "CAP_SYS_NICE": "mbind set_mempolicy set_mempolicy_home_node",
    "CAP_SYSLOG": "syslog",
    "CAP_BPF": "bpf",
    "CAP_PERFMON": "perf_event_open",
}


def _allow(names: str | Iterable[str], **extra: Any) -> dict[str, Any]:
    listed = names.split() if isinstance(names, str) else list(names)
    return {"names": listed, "action": "SCMP_ACT_ALLOW", **extra}


def default_profile() -> dict[str, Any]:
    """Docker's default seccomp profile, in Docker's own (conditional) format.

    Effects: everything not listed fails with EPERM; mount, unshare/clone with
    namespace flags, reboot, module loading, keyctl and friends, bpf and
    perf_event_open need the matching capability; ptrace and process_vm_* are allowed
    on kernels >= 4.8, where seccomp can no longer be bypassed through ptrace.
    """
    rules: list[dict[str, Any]] = [_allow(_ALLOWED)]
    rules.extend(
        _allow(["personality"], args=[{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}])
        for v in _SAFE_PERSONALITIES
    )
    rules.append(
        _allow(
            "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace",
            includes={"minKernel": "4.8"},
        )
    )
    rules.append(_allow("arch_prctl modify_ldt", includes={"arches": ["amd64", "x32", "x86"]}))
    rules.append(
        _allow(
            "arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls",
            includes={"arches": ["arm", "arm64"]},
        )
    )
    rules.extend(_allow(names, includes={"caps": [cap]}) for cap, names in _BY_CAPABILITY.items())
    # Without CAP_SYS_ADMIN: clone and unshare only without namespace flags; clone3
    # cannot be filtered on its flags (they live in memory) so it reports ENOSYS, which
    # makes glibc fall back to clone.
    no_ns = [
        {"index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}
    ]
    rules.append(_allow("clone unshare", args=no_ns, excludes={"caps": ["CAP_SYS_ADMIN"]}))
    rules.append(
        {
            "names": ["clone3"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": ERRNO_ENOSYS,
            "excludes": {"caps": ["CAP_SYS_ADMIN"]},
        }
    )
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": ERRNO_EPERM,
        "archMap": ARCH_MAP,
        "syscalls": rules,
    }


def load_profile(path: str) -> dict[str, Any]:
    """Read a seccomp profile file given with `--security-opt seccomp=<path>`."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise InvalidParameter(f"opening seccomp profile ({path}) failed: {e.strerror}") from e
    except ValueError as e:
        raise InvalidParameter(f"decoding seccomp profile ({path}) failed: {e}") from e
    if not isinstance(data, dict):
        raise InvalidParameter(f"decoding seccomp profile ({path}) failed: not a JSON object")
    return data


def _kernel_at_least(release: str, wanted: str) -> bool:
    def version(s: str) -> tuple[int, ...]:
        m = re.match(r"(\d+)\.(\d+)", s)
        return (int(m.group(1)), int(m.group(2))) if m else (0, 0)

    return version(release) >= version(wanted)


# Docker's includes/excludes name architectures the Go way.
_GO_ARCH = {
    "SCMP_ARCH_X86_64": "amd64",
    "SCMP_ARCH_X86": "x86",
    "SCMP_ARCH_X32": "x32",
    "SCMP_ARCH_AARCH64": "arm64",
    "SCMP_ARCH_ARM": "arm",
}


def _applies(
    rule: dict[str, Any], *, caps: Collection[str], arch: str, kernel_release: str
) -> bool:
    inc = rule.get("includes") or {}
    exc = rule.get("excludes") or {}
    go_arch = _GO_ARCH.get(arch, arch)
    if inc.get("arches") and go_arch not in inc["arches"]:
        return False
    if inc.get("caps") and not all(c in caps for c in inc["caps"]):
        return False
    if inc.get("minKernel") and not _kernel_at_least(kernel_release, inc["minKernel"]):
        return False
    if exc.get("arches") and go_arch in exc["arches"]:
        return False
    if exc.get("caps") and any(c in caps for c in exc["caps"]):
        return False
    return not (exc.get("minKernel") and _kernel_at_least(kernel_release, exc["minKernel"]))


def compile_profile(
    profile: dict[str, Any],
    *,
    capabilities: Collection[str],
    machine: str,
    kernel_release: str,
) -> dict[str, Any]:
    """The OCI `linux.seccomp` object for a container with these capabilities.

    `machine` is `uname -m`; `kernel_release` is `uname -r`.  Plain OCI profiles
    (an `architectures` list, no conditions) pass through unchanged in effect.
    """
    if "defaultAction" not in profile:
        raise InvalidParameter("seccomp profile has no defaultAction")
    arch = _MACHINE_ARCH.get(machine, machine)
    if "archMap" in profile:
        architectures: list[str] = []
        for entry in profile["archMap"] or []:
            if entry.get("architecture") == arch:
                architectures = [arch, *entry.get("subArchitectures", [])]
    else:
        architectures = list(profile.get("architectures") or [])
    out: dict[str, Any] = {"defaultAction": profile["defaultAction"]}
    if "defaultErrnoRet" in profile:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    if architectures:
        out["architectures"] = architectures
    syscalls: list[dict[str, Any]] = []
    for rule in profile.get("syscalls") or []:
        if not _applies(rule, caps=capabilities, arch=arch, kernel_release=kernel_release):
            continue
        names = list(rule.get("names") or ([rule["name"]] if rule.get("name") else []))
        if not names:
            continue
        compiled: dict[str, Any] = {"names": names, "action": rule["action"]}
        if rule.get("args"):
            compiled["args"] = rule["args"]
        if "errnoRet" in rule:
            compiled["errnoRet"] = rule["errnoRet"]
        syscalls.append(compiled)
    out["syscalls"] = syscalls
    return out
