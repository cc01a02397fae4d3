"""Container filesystem routes: commit, export, changes, archive (cp), and GET /system/df."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from dockling import errors
from dockling.api.backend import Backend
from dockling.api.http import Request, Response, Router, StreamResponse, json_response
from dockling.api.piped import piped
from dockling.api.schemas.containers import summary as container_summary
from dockling.containers import files
from dockling.containers.committing import commit_container
from dockling.containers.model import Container
from dockling.diff.compare import changes, write_tree
from dockling.images.store import summary


def register(router: Router, backend: Backend) -> None:
    routes = _Routes(backend)
    router.add("POST", "/commit", routes.commit)
    router.add("GET", "/containers/{id}/export", routes.export)
    router.add("GET", "/containers/{id}/changes", routes.changes)
    router.add("GET", "/containers/{id}/archive", routes.get_archive)
    router.add("PUT", "/containers/{id}/archive", routes.put_archive)
    router.add("GET", "/system/df", routes.disk_usage)


class _Routes:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.launcher = backend.launcher
        self.scratch = backend.launcher.exec_root / "views"
        self.spool_dir = backend.launcher.data_root / "tmp"

    def _root(self, container: Container, *, writable: bool) -> Any:
        return files.container_root(
            self.launcher.snapshotter,
            self.launcher.rootfs(container.id),
            container.id,
            self.scratch,
            writable=writable,
        )

    async def commit(self, req: Request) -> Response:
        ref = req.arg("container")
        if not ref:
            raise errors.InvalidParameter("a container name or id is required (container=)")
        repo, tag = req.arg("repo"), req.arg("tag")
        reference = ""
        if repo:
            reference = f"{repo}:{tag}" if tag else repo
        body = await req.json()
        image = await commit_container(
            self.backend.containers,
            ref,
            reference=reference,
            comment=req.arg("comment"),
            author=req.arg("author"),
            changes=req.query.get("changes", []),
            pause=req.flag("pause", default=True),
            override=body if isinstance(body, dict) else None,
        )
        return json_response({"Id": image.id}, status=201)

    async def export(self, req: Request) -> StreamResponse:
        container = self.backend.containers.get(req.params["id"])

        def produce(out: BinaryIO) -> None:
            with self._root(container, writable=False) as root:
                write_tree(Path(root), out, name="")

        self.backend.events.publish("container", "export", container.id, {"name": container.name})
        return StreamResponse(piped(produce), content_type="application/x-tar")

    async def changes(self, req: Request) -> Response:
        container = self.backend.containers.get(req.params["id"])
        snapshotter = self.launcher.snapshotter
        upper = snapshotter.fs_path(container.id)
        lowers = snapshotter.parent_paths(container.id)
        found = await asyncio.to_thread(changes, upper, lowers)
        return json_response([{"Path": c.path, "Kind": int(c.kind)} for c in found])

    def _mounts(self, container: Container) -> list[files.PathMount]:
        return files.mount_table(
            container.mounts,
            self.backend.containers.volume_path,
            self.launcher.container_dir(container.id),
        )

    async def get_archive(self, req: Request) -> Response | StreamResponse:
        container = self.backend.containers.get(req.params["id"])
        path = req.arg("path")
        if not path:
            raise errors.InvalidParameter("path is required (path=)")
        name = container.name.lstrip("/")
        mounts = self._mounts(container)

        def stat() -> dict[str, object]:
            with self._root(container, writable=False) as root:
                return files.path_stat(root, files.resolve_path(root, path, mounts), name, mounts)

        info = await asyncio.to_thread(stat)
        header = {files.STAT_HEADER: files.encode_stat(info)}
        if req.method == "HEAD":
            return Response(status=200, headers=header)

        def produce(out: BinaryIO) -> None:
            with self._root(container, writable=False) as root:
                files.write_path(root, files.resolve_path(root, path, mounts), out, name, mounts)

        return StreamResponse(piped(produce), content_type="application/x-tar", headers=header)

    async def put_archive(self, req: Request) -> Response:
        container = self.backend.containers.get(req.params["id"])
        path = req.arg("path")
        if not path:
            raise errors.InvalidParameter("path is required (path=)")
        copy_owner = req.flag("copyUIDGID")
        mounts = self._mounts(container)
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        fd, spool = tempfile.mkstemp(dir=self.spool_dir, prefix="cp-")
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in req.stream_body():
                    await asyncio.to_thread(out.write, chunk)

            def extract() -> None:
                with self._root(container, writable=True) as root:
                    files.extract_into(
                        root,
                        path,
                        Path(spool),
                        container_name=container.name.lstrip("/"),
                        copy_owner=copy_owner,
                        spool_dir=self.spool_dir,
                        mounts=mounts,
                        read_only_rootfs=container.spec.read_only_rootfs,
                    )

            await asyncio.to_thread(extract)
        finally:
            os.unlink(spool)
        return Response(status=200, body=b"")

    async def disk_usage(self, req: Request) -> Response:
        return json_response(await asyncio.to_thread(self._disk_usage))

    def _disk_usage(self) -> dict[str, Any]:
        backend = self.backend
        containers = backend.containers.list()
        images = backend.images.list()
        sizes = {i.id: i.size for i in images}
        layer_sizes = {i.id: backend.images.layer_sizes(i) for i in images}
        layer_users: dict[str, int] = {}
        unique: dict[str, int] = {}
        for image in images:
            for chain, size in zip(image.chain_ids, layer_sizes[image.id], strict=False):
                layer_users[chain] = layer_users.get(chain, 0) + 1
                unique[chain] = size
        image_rows = []
        for image in images:
            row = summary(image)
            row["Containers"] = sum(1 for c in containers if c.image_id == image.id)
            row["SharedSize"] = sum(
                size
                for chain, size in zip(image.chain_ids, layer_sizes[image.id], strict=False)
                if layer_users.get(chain, 0) > 1
            )
            image_rows.append(row)
        container_rows = []
        for c in containers:
            size_rw = self.launcher.rootfs_usage(c.id)
            # The same entries as GET /containers/json?size=1: the CLI's verbose view
            # reads Created, Mounts (LOCAL VOLUMES) and Status from them.
            container_rows.append(
                container_summary(
                    c,
                    backend.mounts_json(c),
                    (size_rw, size_rw + sizes.get(c.image_id, 0)),
                    networks=backend.networks,
                    health=backend.containers.health.state(c.id),
                )
            )
        volume_rows = [
            {
                "Name": v.name,
                "Driver": v.driver,
                "Mountpoint": v.mountpoint,
                "CreatedAt": v.created_at,
                "Labels": dict(v.labels),
                "Scope": v.scope,
                "Options": dict(v.options),
                "UsageData": {
                    "Size": backend.volumes.usage(v.name),
                    "RefCount": len(backend.volumes.users(v.name)),
                },
            }
            for v in backend.volumes.list()
        ]
        return {
            "LayersSize": sum(unique.values()),
            "Images": image_rows,
            "Containers": container_rows,
            "Volumes": volume_rows,
            "BuildCache": [],
        }
