"""RUN --mount: the mounts a RUN container gets, none of which ends up in the step's layer.

- `type=cache`: a directory kept between builds under DATA_ROOT/build-cache/mounts/<id>,
  created with the mount's mode/uid/gid the first time;
- `type=bind`: a path of the build context (or, with `from=`, of a stage's or an image's
  root), read-only unless `rw`; with `rw` the RUN writes into a scratch copy, discarded;
- `type=tmpfs`: a tmpfs, with `size=` as its size;
- `type=secret`: a secret the client sent with the build (`--secret id=...,src=...`),
  copied into a private scratch dir with mode 0400 (or `mode=`), bound read-only at
  `target` (default /run/secrets/<id>).

Secrets travel inside the context tar under SECRETS_DIR (see `cli/commands/build.py`): the
builder takes them out of the context before anything reads it, so no COPY, cache key or
.dockerignore ever sees them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from dockling import errors
from dockling.build.copy import Source, checksum
from dockling.build.instructions import RunMount
from dockling.build.layers import mounted_snapshot
from dockling.containers.spec import MountSpec
from dockling.images.store import Image, ImageService
from dockling.runtime.users import resolve_in_root

SECRETS_DIR = ".dockling-build-secrets"
MAX_SECRET_SIZE = 500 * 1024  # BuildKit's limit for one secret


def take_secrets(context: Path) -> dict[str, bytes]:
    """Remove the reserved secrets dir from an unpacked context; its files by id."""
    folder = context / SECRETS_DIR
    secrets: dict[str, bytes] = {}
    if folder.is_symlink() or folder.is_file():
        folder.unlink()
        return secrets
    if not folder.is_dir():
        return secrets
    try:
        for entry in os.scandir(folder):
            if entry.is_file(follow_symlinks=False):
                data = Path(entry.path).read_bytes()
                if len(data) > MAX_SECRET_SIZE:
                    raise errors.InvalidParameter(f"secret {entry.name} is too big")
                secrets[entry.name] = data
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return secrets


def cache_dir(data_root: Path, mount_id: str) -> Path:
    """The persistent directory of a cache mount id (hashed: ids are free text)."""
    digest = hashlib.sha256(mount_id.encode()).hexdigest()[:32]
    return data_root / "build-cache" / "mounts" / digest


def mounts_cache_key(mounts: tuple[RunMount, ...], context: Path) -> list[str]:
    """What a RUN's mounts add to its cache key: the checksum of each context bind source
    (a changed file re-runs the step, as BuildKit does)."""
    keys = []
    for mount in mounts:
        if mount.type == "bind" and not mount.from_:
            source = resolve_in_root(str(context), mount.source or "/")
            keys.append(
                checksum([Source(source, mount.source or ".")]) if os.path.exists(source) else ""
            )
    return keys


@contextlib.contextmanager
def run_mounts(
    mounts: tuple[RunMount, ...],
    *,
    images: ImageService,
    context: Path,
    sources: Mapping[str, Image],
    secrets: Mapping[str, bytes],
) -> Iterator[tuple[MountSpec, ...]]:
    """The container mounts for a RUN's --mount flags, valid while the context is open.

    `sources` maps each bind's `from=` to the stage result or image it names.  Scratch
    copies and snapshot mounts are undone on exit.
    """
    with contextlib.ExitStack() as stack:
        scratch = Path(tempfile.mkdtemp(prefix="run-mounts-", dir=_tmp(images)))
        stack.callback(shutil.rmtree, scratch, True)
        specs: list[MountSpec] = []
        for number, mount in enumerate(mounts):
            spec = _mount(mount, number, images, context, sources, secrets, scratch, stack)
            if spec is not None:
                specs.append(spec)
        yield tuple(specs)


def _tmp(images: ImageService) -> Path:
    tmp = images.data_root / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return tmp


def _mount(
    mount: RunMount,
    number: int,
    images: ImageService,
    context: Path,
    sources: Mapping[str, Image],
    secrets: Mapping[str, bytes],
    scratch: Path,
    stack: contextlib.ExitStack,
) -> MountSpec | None:
    target = mount.target or ""
    if mount.type == "cache":
        folder = cache_dir(images.data_root, mount.id or target)
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, mount.mode if mount.mode is not None else 0o755)
            os.chown(folder, mount.uid or 0, mount.gid or 0)
        return MountSpec(type="bind", source=str(folder), target=target, read_only=mount.readonly)
    if mount.type == "tmpfs":
        options = (f"size={mount.size}",) if mount.size else ()
        return MountSpec(type="tmpfs", target=target, tmpfs_options=options)
    if mount.type == "bind":
        if mount.from_:
            image = sources[mount.from_]
            held = stack.enter_context(images.lease())
            images.hold(held, *image.chain_ids)
            _key, root = stack.enter_context(
                mounted_snapshot(images, image.top_layer, writable=False)
            )
        else:
            root = str(context)
        source = resolve_in_root(root, mount.source or "/")
        if not os.path.exists(source):
            raise errors.InvalidParameter(
                f"failed to compute cache key: bind mount source {mount.source!r} not found"
            )
        if not mount.readonly:
            # Writes to a rw bind are discarded: they go to a copy.
            copy = scratch / f"bind-{number}"
            if os.path.isdir(source):
                shutil.copytree(source, copy, symlinks=True)
            else:
                shutil.copy2(source, copy)
            source = str(copy)
        return MountSpec(type="bind", source=source, target=target, read_only=mount.readonly)
    if mount.type == "secret":
        secret_id = mount.id or os.path.basename(target)
        data = secrets.get(secret_id)
        if data is None:
            if mount.required:
                raise errors.InvalidParameter(f"secret {secret_id} not found")
            return None
        folder = scratch / f"secret-{number}"
        folder.mkdir(mode=0o700)
        path = folder / "secret"
        path.write_bytes(data)
        os.chmod(path, mount.mode if mount.mode is not None else 0o400)
        os.chown(path, mount.uid or 0, mount.gid or 0)
        return MountSpec(
            type="bind",
            source=str(path),
            target=target or f"/run/secrets/{secret_id}",
            read_only=True,
        )
    raise errors.NotImplementedFeature(f"RUN --mount=type={mount.type} is not supported")


def missing_paths(images: ImageService, image: Image, targets: list[str]) -> list[str]:
    """The paths (relative to the root, deepest first) the RUN's mount `targets` would
    create in `image`: each target and its missing parents.  The runtime makes them as
    mount points; the step's layer leaves out those still empty after the run."""
    found: list[str] = []
    with mounted_snapshot(images, image.top_layer, writable=False) as (_key, root):
        for target in targets:
            path = resolve_in_root(root, posixpath.normpath("/" + target))
            rel = os.path.relpath(path, root)
            while rel not in (".", "") and not os.path.lexists(os.path.join(root, rel)):
                if rel not in found:
                    found.append(rel)
                rel = os.path.dirname(rel)
    # Deepest first, across targets too: a parent is judged after all its stubs.
    return sorted(found, key=lambda rel: rel.count("/"), reverse=True)
