"""Container mounts: Docker's create body into `MountSpec`s, and those into runtime mounts.

Parsing covers HostConfig.Binds (`-v`), HostConfig.Mounts (`--mount`), HostConfig.Tmpfs
(`--tmpfs`) and Config.Volumes / image VOLUMEs (anonymous volumes), with Docker's error
messages.  One distinction matters and is kept: a missing host directory in a Binds entry
is created at start (`prepare_bind_sources`), while `--mount type=bind` with a missing
source is refused at create.  Parsing does no I/O except that existence check.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TypeVar

from dockling import errors
from dockling.containers.spec import MountSpec
from dockling.mount import Mount
from dockling.volumes.names import validate_volume_name

DEFAULT_PROPAGATION = "rprivate"
PROPAGATION_MODES = ("private", "rprivate", "slave", "rslave", "shared", "rshared")
_RW_MODES = ("ro", "rw")
_LABEL_MODES = ("z", "Z")
_COPY_MODES = ("nocopy",)
_CONSISTENCY_MODES = ("consistent", "cached", "delegated")

# Docker's defaults for every tmpfs mount; user options given later override them.
TMPFS_DEFAULT_OPTIONS = ("noexec", "nosuid", "nodev", DEFAULT_PROPAGATION)
# Mount flags allowed in a --tmpfs value, grouped so that the last of a group wins.
_FLAG_GROUPS: tuple[tuple[str, ...], ...] = (
    ("ro", "rw"),
    ("exec", "noexec"),
    ("suid", "nosuid"),
    ("dev", "nodev"),
    ("sync", "async"),
    ("dirsync",),
    ("mand", "nomand"),
    ("atime", "noatime"),
    ("diratime", "nodiratime"),
    ("relatime", "norelatime"),
    ("strictatime", "nostrictatime"),
    (*PROPAGATION_MODES, "unbindable", "runbindable"),
)
_FLAG_GROUP_OF = {flag: group[0] for group in _FLAG_GROUPS for flag in group}
_TMPFS_DATA_KEYS = ("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol")

PathExists = Callable[[str], bool]
_T = TypeVar("_T")


# -- the create body -----------------------------------------------------------------------


def parse_host_mounts(
    *,
    binds: Sequence[str] = (),
    mounts: Sequence[Mapping[str, object]] = (),
    tmpfs: Mapping[str, str] | None = None,
    path_exists: PathExists = os.path.exists,
) -> tuple[MountSpec, ...]:
    """All mounts of a HostConfig, in Binds, Mounts, Tmpfs order.

    Raises InvalidParameter with Docker's message for a malformed entry and
    `Duplicate mount point: <target>` when two entries share a destination.
    `path_exists` checks `--mount type=bind` sources (Binds sources are created later).
    """
    specs = [parse_bind(raw) for raw in binds]
    specs += [parse_mount_object(obj, path_exists=path_exists) for obj in mounts]
    specs += parse_tmpfs(tmpfs or {})
    seen: set[str] = set()
    for spec in specs:
        if spec.target in seen:
            raise errors.InvalidParameter(f"Duplicate mount point: {spec.target}")
        seen.add(spec.target)
    return tuple(specs)


def parse_bind(raw: str) -> MountSpec:
    """One HostConfig.Binds entry: `src:dst[:mode]` (src absolute = bind, else a volume name)
    or a lone `dst` (an anonymous volume, as dockerd accepts it)."""
    parts = raw.split(":", 3)
    if not parts[0] or len(parts) > 3:
        raise _invalid_spec(raw)
    source, mode = "", ""
    if len(parts) == 1:
        target = parts[0]
    elif len(parts) == 2:
        if _valid_mode(parts[1]):
            # `/dst:ro` names a destination and a mode but no source.
            raise _invalid_spec(raw)
        source, target = parts
    else:
        source, target, mode = parts
    if not _valid_mode(mode):
        raise errors.InvalidParameter(f"invalid mode: {mode}")
    options = mode.split(",") if mode else []
    kind = "bind" if source.startswith("/") else "volume"
    propagation = next((o for o in options if o in PROPAGATION_MODES), "")
    read_only = "ro" in options
    try:
        _validate_target(kind, target)
        if kind == "volume" and propagation:
            raise _config_error(kind, "field BindOptions must not be specified")
        if kind == "volume" and not source and read_only:
            raise _config_error(kind, "must not set ReadOnly mode when using anonymous volumes")
    except errors.InvalidParameter as exc:
        raise errors.InvalidParameter(f"{_invalid_spec(raw)}: {exc}") from None
    if kind == "volume" and source:
        validate_volume_name(source)
    return MountSpec(
        type=kind,
        target=clean_path(target),
        source=clean_path(source) if kind == "bind" else source,
        read_only=read_only,
        propagation=(propagation or DEFAULT_PROPAGATION) if kind == "bind" else "",
        no_copy=kind == "volume" and "nocopy" in options,
    )


def parse_mount_object(
    obj: Mapping[str, object], *, path_exists: PathExists = os.path.exists
) -> MountSpec:
    """One HostConfig.Mounts object (`--mount`), validated as dockerd does at create."""
    kind = _field(obj, "Type", str, "")
    target = _field(obj, "Target", str, "")
    source = _field(obj, "Source", str, "")
    read_only = _field(obj, "ReadOnly", bool, False)
    bind_opts = _section(obj, kind, "BindOptions")
    volume_opts = _section(obj, kind, "VolumeOptions")
    tmpfs_opts = _section(obj, kind, "TmpfsOptions")
    _validate_target(kind, target)
    if kind == "bind":
        return _bind_object(source, target, read_only, bind_opts, volume_opts, path_exists)
    if kind == "volume":
        return _volume_object(source, target, read_only, bind_opts, volume_opts)
    if kind == "tmpfs":
        if bind_opts is not None:
            raise _config_error(kind, "field BindOptions must not be specified")
        if source:
            raise _config_error(kind, "field Source must not be specified")
        return MountSpec(
            type="tmpfs",
            target=clean_path(target),
            read_only=read_only,
            tmpfs_options=_tmpfs_object_options(kind, tmpfs_opts, read_only),
        )
    if kind in ("image", "npipe", "cluster"):
        raise errors.NotImplementedFeature(f'mount type "{kind}" is not supported by dockling')
    raise _config_error(kind, "mount type unknown")


def parse_tmpfs(tmpfs: Mapping[str, str]) -> list[MountSpec]:
    """HostConfig.Tmpfs (`{"/run": "rw,size=64m"}`): one tmpfs spec per destination."""
    specs: list[MountSpec] = []
    for target, data in tmpfs.items():
        if clean_path(target) == "/":
            raise errors.InvalidParameter("invalid specification: destination can't be '/'")
        if not target.startswith("/"):
            raise errors.InvalidParameter(
                f"invalid mount path: '{target}' mount path must be absolute"
            )
        options = tuple(o for o in data.split(",") if o)
        for option in options:
            key, sep, value = option.partition("=")
            if not (sep and key in _TMPFS_DATA_KEYS) and option not in _FLAG_GROUP_OF:
                quoted = " ".join(f'"{p}"' for p in ((key, value) if sep else (key,)))
                raise errors.InvalidParameter(f"Invalid tmpfs option [{quoted}]")
        read_only = merge_tmpfs_options(options).count("ro") > 0
        specs.append(
            MountSpec(
                type="tmpfs", target=clean_path(target), read_only=read_only, tmpfs_options=options
            )
        )
    return specs


def parse_config_volumes(volumes: Iterable[str]) -> tuple[str, ...]:
    """Config.Volumes keys (`{"/data": {}}`) as clean absolute targets, in order, unique."""
    targets: list[str] = []
    for raw in volumes:
        if not raw.startswith("/"):
            raise errors.InvalidParameter(
                f"invalid mount path: '{raw}' mount path must be absolute"
            )
        target = clean_path(raw)
        if target == "/":
            raise errors.InvalidParameter("invalid specification: destination can't be '/'")
        if target not in targets:
            targets.append(target)
    return tuple(targets)


def merge_image_volumes(
    specs: Sequence[MountSpec], image_volumes: Iterable[str]
) -> tuple[MountSpec, ...]:
    """`specs` plus an anonymous volume for each of `image_volumes` (image VOLUMEs or
    Config.Volumes) whose destination no spec mounts already."""
    merged = list(specs)
    covered = {spec.target for spec in specs}
    for target in parse_config_volumes(image_volumes):
        if target not in covered:
            merged.append(MountSpec(type="volume", target=target))
            covered.add(target)
    return tuple(merged)


# -- the service's steps between create and start ---------------------------------------------


def resolve_anonymous_volumes(
    specs: Sequence[MountSpec], create_volume: Callable[[], str]
) -> tuple[MountSpec, ...]:
    """Give each anonymous volume spec a name: `create_volume()` makes one and returns it."""
    return tuple(
        replace(spec, source=create_volume()) if spec.type == "volume" and not spec.source else spec
        for spec in specs
    )


def prepare_bind_sources(specs: Sequence[MountSpec]) -> list[str]:
    """Create (mode 0755) each missing bind source, as dockerd does for `-v`, and return them.

    `--mount type=bind` sources were checked at create, so a bind whose source is missing
    here came from Binds (or from BindOptions.CreateMountpoint).
    """
    created: list[str] = []
    for spec in specs:
        if spec.type == "bind" and not os.path.lexists(spec.source):
            try:
                os.makedirs(spec.source, mode=0o755, exist_ok=True)
            except OSError as exc:
                raise errors.SystemError(
                    f"error while creating mount source path '{spec.source}': {exc}"
                ) from exc
            created.append(spec.source)
    return created


# -- into the runtime spec and the inspect JSON --------------------------------------------


def to_runtime_mounts(specs: Sequence[MountSpec], volume_path: Callable[[str], str]) -> list[Mount]:
    """OCI mounts for resolved specs, parents before children (sorted by target depth).

    Binds and volumes are recursive binds (`rbind`, propagation, `ro`/`rw`); `volume_path`
    maps a volume name to its host directory.  Tmpfs mounts get Docker's defaults
    (`noexec,nosuid,nodev,rprivate`), overridden by the user's options.
    """
    out: list[Mount] = []
    for spec in sorted(specs, key=lambda s: _depth(s.target)):
        rw = "ro" if spec.read_only else "rw"
        if spec.type == "bind":
            propagation = spec.propagation or DEFAULT_PROPAGATION
            out.append(Mount("bind", spec.source, spec.target, ("rbind", propagation, rw)))
        elif spec.type == "volume":
            source = volume_path(_volume_name(spec))
            propagation = spec.propagation or DEFAULT_PROPAGATION
            out.append(Mount("bind", source, spec.target, ("rbind", propagation, rw)))
        elif spec.type == "tmpfs":
            options = merge_tmpfs_options((*TMPFS_DEFAULT_OPTIONS, *spec.tmpfs_options))
            out.append(Mount("tmpfs", "tmpfs", spec.target, options))
        else:
            raise errors.InvalidParameter(f'invalid mount config: mount type "{spec.type}" unknown')
    return out


def inspect_mounts(
    specs: Sequence[MountSpec], volume_path: Callable[[str], str]
) -> list[dict[str, object]]:
    """The `Mounts` array of `GET /containers/{id}/json` for resolved specs.

    `Mode` is approximated: MountSpec does not keep the Binds mode string, so binds show
    "ro" or "", and volumes "ro" or Docker's default "z".
    """
    out: list[dict[str, object]] = []
    for spec in specs:
        entry: dict[str, object] = {"Type": spec.type}
        if spec.type == "volume":
            name = _volume_name(spec)
            entry |= {"Name": name, "Source": volume_path(name), "Destination": spec.target}
            entry |= {"Driver": "local", "Mode": "ro" if spec.read_only else "z"}
            propagation = spec.propagation
        elif spec.type == "bind":
            entry |= {"Source": spec.source, "Destination": spec.target}
            entry["Mode"] = "ro" if spec.read_only else ""
            propagation = spec.propagation or DEFAULT_PROPAGATION
        else:
            entry |= {"Source": "", "Destination": spec.target, "Mode": ""}
            propagation = ""
        entry |= {"RW": not spec.read_only, "Propagation": propagation}
        out.append(entry)
    return out


def merge_tmpfs_options(options: Iterable[str]) -> tuple[str, ...]:
    """Tmpfs options with the last of each conflicting flag group or `key=` winning."""
    merged: dict[str, str] = {}
    for option in options:
        key = option.partition("=")[0] if "=" in option else _FLAG_GROUP_OF.get(option, option)
        merged.pop(key, None)
        merged[key] = option
    return tuple(merged.values())


def clean_path(path: str) -> str:
    """Go's path.Clean for POSIX paths (normpath keeps a leading '//'; Clean does not)."""
    if not path:
        return ""
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


# -- helpers --------------------------------------------------------------------------------


def _bind_object(
    source: str,
    target: str,
    read_only: bool,
    bind_opts: Mapping[str, object] | None,
    volume_opts: Mapping[str, object] | None,
    path_exists: PathExists,
) -> MountSpec:
    if not source:
        raise _config_error("bind", "field Source must not be empty")
    propagation = ""
    create_mountpoint = False
    if bind_opts is not None:
        propagation = _field(bind_opts, "Propagation", str, "")
        create_mountpoint = _field(bind_opts, "CreateMountpoint", bool, False)
        if propagation and propagation not in PROPAGATION_MODES:
            raise _config_error("bind", f"invalid propagation mode: {propagation}")
    if volume_opts is not None:
        raise _config_error("bind", "field VolumeOptions must not be specified")
    if not source.startswith("/"):
        raise _config_error("bind", f"invalid mount path: '{source}' mount path must be absolute")
    if not create_mountpoint and not path_exists(clean_path(source)):
        raise _config_error("bind", f"bind source path does not exist: {source}")
    return MountSpec(
        type="bind",
        target=clean_path(target),
        source=clean_path(source),
        read_only=read_only,
        propagation=propagation or DEFAULT_PROPAGATION,
    )


def _volume_object(
    source: str,
    target: str,
    read_only: bool,
    bind_opts: Mapping[str, object] | None,
    volume_opts: Mapping[str, object] | None,
) -> MountSpec:
    if bind_opts is not None:
        raise _config_error("volume", "field BindOptions must not be specified")
    if volume_opts is not None:
        subpath = _field(volume_opts, "Subpath", str, "")
        if subpath and not source:
            raise _config_error("volume", "must not set Subpath when using anonymous volumes")
        if subpath:
            raise errors.NotImplementedFeature(
                "volume Subpath mounts are not supported by dockling"
            )
        driver = volume_opts.get("DriverConfig")
        if isinstance(driver, Mapping) and driver.get("Name") not in (None, "", "local"):
            raise errors.NotImplementedFeature(
                f'volume driver "{driver.get("Name")}" is not supported: only "local" is'
            )
    if read_only and not source:
        raise _config_error("volume", "must not set ReadOnly mode when using anonymous volumes")
    if source:
        validate_volume_name(source)
    no_copy = bool(volume_opts.get("NoCopy")) if volume_opts is not None else False
    return MountSpec(
        type="volume",
        target=clean_path(target),
        source=source,
        read_only=read_only,
        no_copy=no_copy,
    )


def _tmpfs_object_options(
    kind: str, opts: Mapping[str, object] | None, read_only: bool
) -> tuple[str, ...]:
    # Docker's ConvertTmpfsOptions: ro, mode (octal), size (largest exact g/m/k suffix),
    # then the [name, value] pairs of Options (only exec and noexec are accepted).
    out = ["ro"] if read_only else []
    if opts is None:
        return tuple(out)
    mode = _field(opts, "Mode", int, 0)
    if mode:
        out.append(f"mode={mode:o}")
    size = _field(opts, "SizeBytes", int, 0)
    if size < 0:
        raise _config_error(kind, f"invalid tmpfs size: {size}")
    if size:
        for suffix, divisor in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
            if size % divisor == 0:
                out.append(f"size={size // divisor}{suffix}")
                break
        else:
            out.append(f"size={size}")
    raw_options = opts.get("Options") or []
    if not isinstance(raw_options, list):
        raise _config_error(kind, "invalid TmpfsOptions.Options")
    for pair in raw_options:
        if not isinstance(pair, list) or not 1 <= len(pair) <= 2:
            raise _config_error(kind, "invalid option array length")
        if pair[0] not in ("exec", "noexec"):
            raise _config_error(kind, f"invalid option: {pair[0]}")
        out.append("=".join(str(p) for p in pair))
    return tuple(out)


def _validate_target(kind: str, target: str) -> None:
    if not target:
        raise _config_error(kind, "field Target must not be empty")
    if clean_path(target) == "/":
        raise _config_error(kind, "invalid specification: destination can't be '/'")
    if not target.startswith("/"):
        raise _config_error(kind, f"invalid mount path: '{target}' mount path must be absolute")


def _valid_mode(mode: str) -> bool:
    # Docker's linuxValidMountMode: known words only, at most one of each kind.
    if not mode:
        return True
    counts: dict[tuple[str, ...], int] = {}
    for option in mode.split(","):
        kinds = (_RW_MODES, _LABEL_MODES, PROPAGATION_MODES, _COPY_MODES, _CONSISTENCY_MODES)
        kind = next((k for k in kinds if option in k), None)
        if kind is None:
            return False
        counts[kind] = counts.get(kind, 0) + 1
        if counts[kind] > 1:
            return False
    return True


def _volume_name(spec: MountSpec) -> str:
    if not spec.source:
        raise errors.SystemError(
            f"anonymous volume at {spec.target} was not created (resolve_anonymous_volumes)"
        )
    return spec.source


def _depth(target: str) -> int:
    return len([p for p in target.split("/") if p])


def _invalid_spec(raw: str) -> errors.InvalidParameter:
    return errors.InvalidParameter(f"invalid volume specification: '{raw}'")


def _config_error(kind: str, message: str) -> errors.InvalidParameter:
    return errors.InvalidParameter(f'invalid mount config for type "{kind}": {message}')


def _section(obj: Mapping[str, object], kind: str, key: str) -> Mapping[str, object] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _config_error(kind, f"field {key} must be an object")
    return value


def _field(obj: Mapping[str, object], key: str, kind: type[_T], default: _T) -> _T:
    value = obj.get(key)
    if value is None:
        return default
    # bool is an int in Python; JSON `true` must not pass as a number, nor 1 as a bool.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise errors.InvalidParameter(f"invalid mount config: field {key} has the wrong type")
    return value
