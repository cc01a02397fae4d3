"""Launcher: turns a container record into a running process and back.

It owns the container's rootfs mount, its bundle (config.json) in the exec root, the files
bind-mounted into it (/etc/hosts, /etc/hostname, /etc/resolv.conf) and the shim launch.
Teardown undoes all of it and is safe to call twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dockling import errors
from dockling.containers import mounts as mount_parsing
from dockling.containers.model import Container
from dockling.mount import Mount, mount_all, unmount
from dockling.runtime import ocispec, seccomp, shim
from dockling.runtime.cgroups import is_hybrid, remove_cgroups
from dockling.runtime.runc import OciRuntime
from dockling.runtime.users import resolve_groups, resolve_user
from dockling.snapshots.overlay import OverlaySnapshotter

log = logging.getLogger(__name__)

CGROUP_PARENT = "/dockling"
INIT_PATH = "/sbin/docker-init"
INIT_CANDIDATES = ("docker-init", "tini-static", "tini")


def find_init_binary() -> str:
    """The init for `--init`: Docker's docker-init, or tini from Debian's tini package."""
    for name in INIT_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    raise errors.Unavailable("--init needs tini: install it (apt-get install tini)")


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    """How the container joins the network, decided by the service before launch."""

    netns_path: str | None = None  # None: the runtime makes a new, empty one (or host)
    addresses: tuple[str, ...] = ()  # the container's own addresses, for /etc/hosts
    nameservers: tuple[str, ...] = ()  # the embedded DNS; empty: the host's resolvers
    hosts_file: str = ""  # container:ID mode: the other container's /etc/hosts
    host_gateway: str = ""  # what `--add-host NAME:host-gateway` means: the bridge's gateway


@dataclass(frozen=True, slots=True)
class LogDefaults:
    max_size: int = 0
    max_file: int = 1


def parse_size(value: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    text = value.strip().lower()
    try:
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except ValueError:
        raise errors.InvalidParameter(
            f"failed to initialize logging driver: invalid size: {value!r}"
        ) from None


class Launcher:
    def __init__(
        self,
        *,
        data_root: Path,
        exec_root: Path,
        snapshotter: OverlaySnapshotter,
        runtimes: dict[str, OciRuntime],
        default_runtime: str,
        shim_binary: str,
        log_defaults: LogDefaults,
    ) -> None:
        self.data_root = data_root
        self.exec_root = exec_root
        self.snapshotter = snapshotter
        self.runtimes = runtimes
        self.default_runtime = default_runtime
        self.shim_binary = shim_binary
        self.log_defaults = log_defaults

    # paths
    def bundle(self, container_id: str) -> Path:
        return self.exec_root / "containers" / container_id

    def state_dir(self, container_id: str) -> str:
        return str(self.bundle(container_id))

    def rootfs(self, container_id: str) -> Path:
        return self.bundle(container_id) / "rootfs"

    def container_dir(self, container_id: str) -> Path:
        return self.data_root / "containers" / container_id

    def log_path(self, container_id: str) -> str:
        return str(self.container_dir(container_id) / f"{container_id}-json.log")

    def runtime_for(self, container: Container) -> OciRuntime:
        try:
            return self.runtimes[container.runtime]
        except KeyError:
            raise errors.Unavailable(f"runtime {container.runtime!r} is not configured") from None

    # rootfs
    def prepare_rootfs(self, container_id: str, parent: str | None) -> None:
        self.snapshotter.prepare(container_id, parent)

    def remove_rootfs(self, container_id: str) -> None:
        """Drop the container layer and the bundle; the image layers stay."""
        try:
            self.snapshotter.remove(container_id)
        except errors.NotFound:
            pass
        rootfs = self.rootfs(container_id)
        if rootfs.exists() and not os.path.ismount(rootfs):
            shutil.rmtree(self.bundle(container_id), ignore_errors=True)

    def rootfs_usage(self, container_id: str) -> int:
        try:
            return self.snapshotter.usage(container_id).size
        except errors.DocklingError:
            return 0

    # launch
    async def launch(
        self,
        container: Container,
        volume_path: Callable[[str], str],
        network: NetworkConfig | None = None,
        joins: Mapping[str, str] | None = None,
        ipc_donor: str | None = None,
    ) -> int:
        """Mount the rootfs, write the bundle and start the shim (runc create).

        Returns the container's pid.  On failure everything is undone and the error raised.
        """
        runtime = self.runtime_for(container)
        try:
            await asyncio.to_thread(
                self._write_bundle,
                container,
                volume_path,
                network or NetworkConfig(),
                joins,
                ipc_donor,
            )
            opts = self._shim_options(container, runtime)
            return await shim.launch(opts)
        except errors.RuntimeStartError as exc:
            await self.teardown(container)
            if "hybrid mode not supported" in exc.message and is_hybrid():
                raise errors.RuntimeStartError(
                    f"{runtime.name}: {exc.message} (this host has cgroup v1 controllers plus a "
                    "cgroup2 tree at /sys/fs/cgroup/unified, which this runtime refuses): "
                    "use --runtime runc"
                ) from exc
            raise
        except BaseException:
            await self.teardown(container)
            raise

    def _write_bundle(
        self,
        container: Container,
        volume_path: Callable[[str], str],
        network: NetworkConfig,
        joins: Mapping[str, str] | None = None,
        ipc_donor: str | None = None,
    ) -> None:
        bundle = self.bundle(container.id)
        rootfs = bundle / "rootfs"
        rootfs.mkdir(parents=True, exist_ok=True)
        if not os.path.ismount(rootfs):
            mount_all(self.snapshotter.mounts(container.id), str(rootfs))
        files = self._write_etc_files(container, network)
        shm_source = None
        if container.spec.ipc_mode == "shareable":
            shm_source = self._mount_shm(container)
        elif ipc_donor is not None:
            shm_source = str(self.shm_path(ipc_donor))
        uid, gid, groups = resolve_user(container.process.user, str(rootfs))
        extra = resolve_groups(container.spec.group_add, str(rootfs))
        groups = tuple(dict.fromkeys((*groups, *extra)))
        spec = container.spec
        args: tuple[str, ...] = (container.process.path, *container.process.args)
        runtime_mounts: list[Mount] = []
        if spec.init:
            init = find_init_binary()
            runtime_mounts.append(Mount("bind", init, INIT_PATH, ("rbind", "ro", "rprivate")))
            args = (INIT_PATH, "--", *args)
        process = ocispec.ProcessConfig(
            args=args,
            env=tuple(container.process.env),
            cwd=container.process.cwd,
            uid=uid,
            gid=gid,
            additional_gids=groups,
            terminal=spec.tty,
        )
        user_mounts = mount_parsing.to_runtime_mounts(container.mounts, volume_path)
        runtime_mounts += user_mounts
        # After the user's mounts, as Docker does: a volume on /etc must not hide them; a
        # user mount of /etc/hosts itself replaces the daemon's.
        taken = {m.target for m in user_mounts}
        runtime_mounts += [m for m in files if m.target not in taken]
        netns = network.netns_path
        profile_path = ocispec.seccomp_profile_path(spec)
        profile = seccomp.load_profile(profile_path) if profile_path else None
        config = ocispec.build_spec(
            container_id=container.id,
            spec=spec,
            process=process,
            rootfs=str(rootfs),
            mounts=runtime_mounts,
            hostname=container.hostname,
            netns_path=netns,
            cgroup_parent=CGROUP_PARENT,
            nofile_limit=resource.getrlimit(resource.RLIMIT_NOFILE),
            seccomp_profile=profile,
            joins=joins,
            shm_source=shm_source,
        )
        tmp = bundle / "config.json.tmp"
        tmp.write_text(json.dumps(config))
        os.replace(tmp, bundle / "config.json")
        # A stale exit file from the previous run would answer `wait` too early.
        for stale in ("exit", "exit.tmp", "pid"):
            (bundle / stale).unlink(missing_ok=True)

    def shm_path(self, container_id: str) -> Path:
        """Where a shareable IPC namespace's /dev/shm is mounted on the host."""
        return self.bundle(container_id) / "shm"

    def _mount_shm(self, container: Container) -> str:
        """A tmpfs on the host for a shareable container's /dev/shm, so that containers
        joining its IPC namespace (`--ipc container:<name>`) can bind the same one."""
        path = self.shm_path(container.id)
        path.mkdir(exist_ok=True)
        if not os.path.ismount(path):
            size = container.spec.shm_size or 64 * 1024 * 1024
            options = ("nosuid", "nodev", "noexec", "mode=1777", f"size={size // 1024}k")
            mount_all([Mount("tmpfs", "shm", options=options)], str(path))
        return str(path)

    def _write_etc_files(self, container: Container, network: NetworkConfig) -> list[Mount]:
        directory = self.container_dir(container.id)
        directory.mkdir(parents=True, exist_ok=True)
        hosts = directory / "hosts"
        host_network = container.spec.network_mode == "host"
        if host_network:
            shutil.copyfile("/etc/hosts", hosts)
        elif network.hosts_file:
            shutil.copyfile(network.hosts_file, hosts)
        else:
            lines = [
                "127.0.0.1\tlocalhost",
                "::1\tlocalhost ip6-localhost ip6-loopback",
                "fe00::0\tip6-localnet",
                "ff00::0\tip6-mcastprefix",
                "ff02::1\tip6-allnodes",
                "ff02::2\tip6-allrouters",
            ]
            for entry in container.spec.extra_hosts:
                name, _, address = entry.partition(":")
                if address == "host-gateway":
                    if not network.host_gateway:
                        raise errors.InvalidParameter(
                            "unable to derive the IP value for host-gateway: networking is off"
                        )
                    address = network.host_gateway
                lines.append(f"{address}\t{name}")
            names = container.hostname
            if container.spec.domainname:
                names = f"{container.hostname}.{container.spec.domainname} {names}"
            lines.extend(f"{address}\t{names}" for address in network.addresses)
            hosts.write_text("\n".join(lines) + "\n")
        hostname = directory / "hostname"
        hostname.write_text(container.hostname + "\n")
        resolv = directory / "resolv.conf"
        spec = container.spec
        resolv.write_text(
            _resolv_conf(
                spec.dns or network.nameservers,
                search=spec.dns_search,
                options=spec.dns_options,
            )
        )
        return [
            Mount("bind", str(resolv), "/etc/resolv.conf", ("rbind", "rprivate")),
            Mount("bind", str(hostname), "/etc/hostname", ("rbind", "rprivate")),
            Mount("bind", str(hosts), "/etc/hosts", ("rbind", "rprivate")),
        ]

    def _shim_options(self, container: Container, runtime: OciRuntime) -> shim.ShimOptions:
        spec = container.spec
        max_size = self.log_defaults.max_size
        max_file = self.log_defaults.max_file
        if "max-size" in spec.log_config:
            max_size = parse_size(spec.log_config["max-size"])
        if "max-file" in spec.log_config:
            try:
                max_file = int(spec.log_config["max-file"])
            except ValueError:
                raise errors.InvalidParameter(
                    f"invalid value for max-file: {spec.log_config['max-file']}"
                ) from None
        return shim.ShimOptions(
            shim_binary=self.shim_binary,
            runtime_binary=runtime.binary,
            runtime_root=runtime.root,
            container_id=container.id,
            bundle=str(self.bundle(container.id)),
            state_dir=self.state_dir(container.id),
            tty=spec.tty,
            stdin=spec.open_stdin,
            log_path=self.log_path(container.id) if spec.log_config_type != "none" else "",
            log_max_size=max_size,
            log_max_files=max(max_file, 1),
        )

    async def teardown(self, container: Container) -> None:
        """Delete the runtime's state, unmount the rootfs, remove the cgroup leftovers.

        Safe to call again: a runtime without state for the container is not asked to
        delete it (that costs a process per call on every `--rm` exit otherwise).
        """
        runtime = self.runtime_for(container)

        async def delete() -> None:
            if runtime.has_state(container.id):
                try:
                    await runtime.delete(container.id, force=True)
                except errors.DocklingError as exc:
                    log.warning("runtime delete of %s: %s", container.short_id, exc)

        # The runtime's delete (a process of its own) never touches the rootfs mount of
        # this namespace, and a container's processes see their own copy of it (each has
        # its own mount and PID namespaces): the two run at once.
        results = await asyncio.gather(
            delete(),
            asyncio.to_thread(self._unmount_rootfs, self.rootfs(container.id)),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        await asyncio.to_thread(remove_cgroups, f"{CGROUP_PARENT}/{container.id}")

    @staticmethod
    def _unmount_rootfs(rootfs: Path) -> None:
        if rootfs.exists() and os.path.ismount(rootfs):
            unmount(str(rootfs))
        shm = rootfs.parent / "shm"  # a shareable IPC namespace's /dev/shm
        if shm.exists() and os.path.ismount(shm):
            unmount(str(shm), detach=True)


def _resolv_conf(
    dns: tuple[str, ...], *, search: tuple[str, ...] = (), options: tuple[str, ...] = ()
) -> str:
    """The container's resolv.conf: the given servers or the host's non-loopback ones, with
    the host's search and options lines unless --dns-search / --dns-option replace them."""
    try:
        host = Path("/etc/resolv.conf").read_text().splitlines()
    except OSError:
        host = []
    kept = []
    for line in host:
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "nameserver":
            # Loopback resolvers of the host are unreachable from the container's netns.
            if dns or len(fields) < 2 or fields[1].startswith(("127.", "::1")):
                continue
        elif (fields[0] == "search" and search) or (fields[0] == "options" and options):
            continue
        kept.append(line)
    lines = [f"nameserver {server}" for server in dns] + kept
    if search and search != (".",):
        lines.append("search " + " ".join(search))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"
