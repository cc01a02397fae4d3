"""The registry's routes: the OCI Distribution Spec v1.1 API over `RegistryStorage`."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from dockling.ids import sha256_digest
from dockling.registry import manifests as mf
from dockling.registry.auth import Authorizer, OpenAccess, TokenService
from dockling.registry.errors import RegistryError
from dockling.registry.http import BodyTooLarge, FileResponse, Request, Response
from dockling.registry.names import check_digest, check_name, check_reference, is_tag
from dockling.registry.storage import RegistryStorage
from dockling.registry.tokens import Scope
from dockling.registry.uploads import Session, Uploads

log = logging.getLogger(__name__)

API_VERSION_HEADER = {"Docker-Distribution-API-Version": "registry/2.0"}
Result = Response | FileResponse
RouteHandler = Callable[[Request, dict[str, str]], Awaitable[Result]]
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CONTENT_RANGE_RE = re.compile(r"^(?:bytes )?(\d+)-(\d+)(?:/(?:\d+|\*))?$")
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status, dict(headers or {}), json.dumps(data).encode() + b"\n")


def _empty(status: int, headers: dict[str, str]) -> Response:
    return Response(status, {"Content-Length": "0", **headers})


def _range_header(offset: int) -> str:
    # Distribution reports "0-0" for an empty session as well; the spec asks for 0-<last byte>.
    return f"0-{max(offset - 1, 0)}"


def _page_size(request: Request) -> int | None:
    raw = request.arg("n")
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise RegistryError(
            "PAGINATION_NUMBER_INVALID", f"n must be a non-negative integer: {raw!r}"
        )
    return int(raw)


def _paginate(items: list[str], request: Request, path: str) -> tuple[list[str], dict[str, str]]:
    """Apply `last` and `n`; a Link header points at the next page when more remain."""
    last = request.arg("last")
    n = _page_size(request)
    if last:
        items = [i for i in items if i > last]
    if n is None or len(items) <= n:
        return items, {}
    page = items[:n]
    if not page:
        return page, {}
    link = f'<{path}?n={n}&last={quote(page[-1], safe="")}>; rel="next"'
    return page, {"Link": link}


class RegistryApp:
    """Routes requests to handlers; `handle` is the HTTP server's handler."""

    def __init__(
        self,
        storage: RegistryStorage,
        auth: Authorizer | None = None,
        *,
        read_only: bool = False,
        token_service: TokenService | None = None,
        scheme: str = "http",
    ) -> None:
        self.storage = storage
        self.auth: Authorizer = auth or OpenAccess()
        self.read_only = read_only
        self.token_service = token_service
        self.scheme = scheme
        self.uploads = Uploads(storage)
        self._routes: list[tuple[re.Pattern[str], dict[str, RouteHandler]]] = [
            (re.compile(r"^/v2/?$"), {"GET": self.base}),
            (re.compile(r"^/v2/_catalog$"), {"GET": self.catalog}),
            (re.compile(r"^/v2/(?P<name>.+)/tags/list$"), {"GET": self.tags_list}),
            (
                re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<reference>[^/]+)$"),
                {
                    "GET": self.get_manifest,
                    "PUT": self.put_manifest,
                    "DELETE": self.delete_manifest,
                },
            ),
            (re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/?$"), {"POST": self.start_upload}),
            (
                re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/(?P<uuid>[^/]+)$"),
                {
                    "GET": self.upload_status,
                    "PATCH": self.patch_upload,
                    "PUT": self.finish_upload,
                    "DELETE": self.cancel_upload,
                },
            ),
            (
                re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<digest>[^/]+)$"),
                {"GET": self.get_blob, "DELETE": self.delete_blob},
            ),
            (
                re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<digest>[^/]+)$"),
                {"GET": self.referrers},
            ),
        ]

    # dispatch ------------------------------------------------------------------------------
    async def handle(self, request: Request) -> Result:
        try:
            result = await self._route(request)
        except RegistryError as exc:
            result = self.error_response(request, exc)
        result.headers.update(API_VERSION_HEADER)
        return result

    def _base_url(self, request: Request) -> str:
        """This server as the client reached it (for the token realm in challenges)."""
        return f"{self.scheme}://{request.headers.get('host', '127.0.0.1')}"

    @staticmethod
    def _scopes(method: str, path: str, params: dict[str, str]) -> list[Scope]:
        """What a request needs: pull to read, pull and push to write, delete to delete."""
        name = params.get("name")
        if name is None:
            if path.startswith("/v2/_catalog"):
                return [Scope("registry", "catalog", ("*",))]
            return []
        if method == "DELETE" and "uuid" not in params:
            return [Scope("repository", name, ("delete",))]
        if method in _WRITE_METHODS or "uuid" in params:
            return [Scope("repository", name, ("pull", "push"))]
        return [Scope("repository", name, ("pull",))]

    async def _route(self, request: Request) -> Result:
        if request.path == "/token" and self.token_service is not None:
            return await self.token(request)
        for pattern, methods in self._routes:
            m = pattern.match(request.path)
            if m is None:
                continue
            method = "GET" if request.method == "HEAD" else request.method
            handler = methods.get(method)
            params = m.groupdict()
            if "name" in params:
                check_name(params["name"])
            grant = await self.auth.authorize(
                request.headers.get("authorization", ""),
                self._scopes(method, request.path, params),
                self._base_url(request),
            )
            request.user = grant.user
            if handler is None:
                raise RegistryError("METHOD_NOT_ALLOWED", f"{request.method} {request.path}")
            if self.read_only and method in _WRITE_METHODS:
                raise RegistryError("UNSUPPORTED", "the registry is in read-only mode")
            return await handler(request, params)
        raise RegistryError("NOT_FOUND", request.path)

    async def token(self, request: Request) -> Result:
        """GET /token?service=&scope=...: a Bearer token for the credentials sent (if any)."""
        assert self.token_service is not None
        if request.method not in ("GET", "HEAD"):
            raise RegistryError("METHOD_NOT_ALLOWED", f"{request.method} /token")
        try:
            answer = await self.token_service.issue(
                request.headers.get("authorization", ""),
                request.arg("service"),
                request.query.get("scope", []),
            )
        except RegistryError as exc:
            if exc.kind == "UNAUTHORIZED":
                exc.headers["WWW-Authenticate"] = 'Basic realm="dockling-registry-token"'
            raise
        request.user = "token"
        return _json(answer, headers={"Cache-Control": "no-store"})

    async def _may_pull(self, request: Request, name: str) -> bool:
        """True when the request's credentials may also pull from `name` (for mounts)."""
        try:
            await self.auth.authorize(
                request.headers.get("authorization", ""),
                [Scope("repository", name, ("pull",))],
                self._base_url(request),
            )
        except RegistryError:
            return False
        return True

    def error_response(self, request: Request, exc: BaseException) -> Response:
        """The one place an exception becomes an answer."""
        if isinstance(exc, BodyTooLarge):
            exc = RegistryError("MANIFEST_TOO_LARGE", f"limit is {mf.MAX_MANIFEST_BYTES} bytes")
        if not isinstance(exc, RegistryError):
            log.error("%s %s failed", request.method, request.path, exc_info=exc)
            exc = RegistryError("INTERNAL", str(exc))
        return Response(
            exc.status,
            {"Content-Type": "application/json", **exc.headers, **API_VERSION_HEADER},
            exc.body(),
        )

    # base, catalog, tags -------------------------------------------------------------------
    async def base(self, request: Request, params: dict[str, str]) -> Result:
        return _json({})

    async def catalog(self, request: Request, params: dict[str, str]) -> Result:
        names, headers = _paginate(self.storage.list_repositories(), request, "/v2/_catalog")
        return _json({"repositories": names}, headers=headers)

    async def tags_list(self, request: Request, params: dict[str, str]) -> Result:
        name = params["name"]
        if not self.storage.repo_exists(name):
            raise RegistryError("NAME_UNKNOWN", f"repository {name} not known to registry")
        tags, headers = _paginate(sorted(self.storage.tags(name)), request, f"/v2/{name}/tags/list")
        return _json({"name": name, "tags": tags}, headers=headers)

    # manifests -----------------------------------------------------------------------------
    def _resolve(self, name: str, reference: str) -> str:
        check_reference(reference)
        if not is_tag(reference):
            return reference
        digest = self.storage.resolve_tag(name, reference)
        if digest is None:
            if not self.storage.repo_exists(name):
                raise RegistryError("NAME_UNKNOWN", f"repository {name} not known to registry")
            raise RegistryError("MANIFEST_UNKNOWN", f"unknown tag {reference}")
        return digest

    async def get_manifest(self, request: Request, params: dict[str, str]) -> Result:
        name = params["name"]
        digest = self._resolve(name, params["reference"])
        media_type = self.storage.manifest_media_type(name, digest)
        if media_type is None:
            raise RegistryError("MANIFEST_UNKNOWN", f"unknown manifest {digest}")
        accept = request.headers.get("accept", "")
        if not mf.accepts(accept, media_type) and media_type != mf.DOCKER_MANIFEST:
            digest, media_type = self._negotiate(name, digest, media_type, accept)
        body = self.storage.content.read(digest)
        headers = {
            "Content-Type": media_type,
            "Docker-Content-Digest": digest,
            "ETag": f'"{digest}"',
        }
        return Response(200, headers, body)

    def _negotiate(self, name: str, digest: str, media_type: str, accept: str) -> tuple[str, str]:
        """A client that cannot read an index gets its linux/amd64 image, as Distribution does."""
        if media_type in mf.INDEX_TYPES:
            doc = json.loads(self.storage.content.read(digest))
            for entry in doc.get("manifests", []):
                platform = entry.get("platform") or {}
                if platform.get("os") == "linux" and platform.get("architecture") == "amd64":
                    child = str(entry.get("digest"))
                    child_type = self.storage.manifest_media_type(name, child)
                    if child_type is not None and mf.accepts(accept, child_type):
                        return child, child_type
        raise RegistryError(
            "MANIFEST_UNKNOWN", f"manifest is {media_type}, which the Accept header excludes"
        )

    async def put_manifest(self, request: Request, params: dict[str, str]) -> Result:
        name, reference = params["name"], params["reference"]
        check_reference(reference)
        body = await request.read_body(mf.MAX_MANIFEST_BYTES)
        parsed = mf.parse_manifest(body, request.headers.get("content-type", ""))
        digest = sha256_digest(body)
        if not is_tag(reference) and reference != digest:
            raise RegistryError("DIGEST_INVALID", f"manifest digest is {digest}, not {reference}")
        for blob in parsed.blobs:
            if not self.storage.is_linked(name, blob):
                raise RegistryError("MANIFEST_BLOB_UNKNOWN", {"digest": blob})
        for child in parsed.children:
            if self.storage.manifest_media_type(name, child) is None:
                raise RegistryError("MANIFEST_BLOB_UNKNOWN", {"digest": child})
        # Order matters for crash safety: bytes, then revision, then referrer and tag.
        await asyncio.to_thread(self.storage.content.write_blob, body, expected_digest=digest)
        self.storage.put_revision(name, digest, parsed.media_type)
        headers = {"Location": f"/v2/{name}/manifests/{digest}", "Docker-Content-Digest": digest}
        if parsed.subject is not None:
            self.storage.add_referrer(name, parsed.subject, parsed.descriptor(digest, len(body)))
            headers["OCI-Subject"] = parsed.subject
        if is_tag(reference):
            self.storage.set_tag(name, reference, digest)
        return _empty(201, headers)

    async def delete_manifest(self, request: Request, params: dict[str, str]) -> Result:
        name, reference = params["name"], params["reference"]
        check_reference(reference)
        if is_tag(reference):
            if not self.storage.delete_tag(name, reference):
                raise RegistryError("MANIFEST_UNKNOWN", f"unknown tag {reference}")
            return _empty(202, {})
        if not self.storage.delete_revision(name, reference):
            raise RegistryError("MANIFEST_UNKNOWN", f"unknown manifest {reference}")
        for tag, target in self.storage.tags(name).items():
            if target == reference:
                self.storage.delete_tag(name, tag)
        self.storage.remove_referrer(name, reference)
        return _empty(202, {})

    async def referrers(self, request: Request, params: dict[str, str]) -> Result:
        name, digest = params["name"], check_digest(params["digest"])
        descriptors = self.storage.referrers(name, digest)
        headers = {"Content-Type": mf.OCI_INDEX}
        artifact_type = request.arg("artifactType")
        if artifact_type:
            descriptors = [d for d in descriptors if d.get("artifactType") == artifact_type]
            headers["OCI-Filters-Applied"] = "artifactType"
        index = {"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": descriptors}
        return _json(index, headers=headers)

    # blobs ---------------------------------------------------------------------------------
    async def get_blob(self, request: Request, params: dict[str, str]) -> Result:
        name, digest = params["name"], check_digest(params["digest"])
        size = self.storage.blob_size(digest)
        if size is None or not self.storage.is_linked(name, digest):
            raise RegistryError("BLOB_UNKNOWN", {"digest": digest})
        headers = {
            "Content-Type": "application/octet-stream",
            "Docker-Content-Digest": digest,
            "Accept-Ranges": "bytes",
            "ETag": f'"{digest}"',
            "Cache-Control": "max-age=31536000",
        }
        path = self.storage.blob_path(digest)
        spec = request.headers.get("range")
        if spec is None or "," in spec:
            # Several ranges at once: RFC 9110 lets a server ignore Range and send it all.
            return FileResponse(path, 0, size, 200, headers)
        start, end = self._byte_range(spec, size)
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return FileResponse(path, start, end - start + 1, 206, headers)

    @staticmethod
    def _byte_range(spec: str, size: int) -> tuple[int, int]:
        """The inclusive (first, last) byte of a `bytes=` range; RANGE_INVALID (416) otherwise."""
        m = _RANGE_RE.match(spec.strip())
        unsatisfiable = RegistryError(
            "RANGE_INVALID",
            f"range {spec!r} of {size} bytes",
            headers={"Content-Range": f"bytes */{size}"},
        )
        if m is None or (not m.group(1) and not m.group(2)):
            raise unsatisfiable
        if not m.group(1):  # suffix: the last N bytes
            n = int(m.group(2))
            if n == 0 or size == 0:
                raise unsatisfiable
            return max(size - n, 0), size - 1
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else size - 1
        if start >= size or end < start:
            raise unsatisfiable
        return start, min(end, size - 1)

    async def delete_blob(self, request: Request, params: dict[str, str]) -> Result:
        name, digest = params["name"], check_digest(params["digest"])
        if not self.storage.unlink_blob(name, digest):
            raise RegistryError("BLOB_UNKNOWN", {"digest": digest})
        return _empty(202, {"Docker-Content-Digest": digest})

    # uploads -------------------------------------------------------------------------------
    def _session_headers(self, session: Session) -> dict[str, str]:
        return {
            "Location": f"/v2/{session.name}/blobs/uploads/{session.uuid}",
            "Range": _range_header(session.offset),
            "Docker-Upload-UUID": session.uuid,
        }

    async def start_upload(self, request: Request, params: dict[str, str]) -> Result:
        name = params["name"]
        mount = request.arg("mount")
        if mount:
            digest = check_digest(mount)
            source = request.arg("from")
            if source:
                check_name(source)
            if source:
                found = await self._may_pull(request, source) and self.storage.is_linked(
                    source, digest
                )
            else:
                # Without `from`, only blobs this repository already holds: any other would
                # let a client read blobs of repositories it may not pull.
                found = self.storage.is_linked(name, digest) or (
                    isinstance(self.auth, OpenAccess) and self.storage.blob_size(digest) is not None
                )
            if found:
                self.storage.link_blob(name, digest)
                return _empty(
                    201, {"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest}
                )
            # Not mountable: the spec says to fall back to an ordinary upload session.
        digest_arg = request.arg("digest")
        if digest_arg is not None:
            check_digest(digest_arg)
        session = self.uploads.start(name)
        if digest_arg is None:
            return _empty(202, self._session_headers(session))
        return await self._finish(request, session, digest_arg)

    async def upload_status(self, request: Request, params: dict[str, str]) -> Result:
        session = self.uploads.get(params["name"], params["uuid"])
        return _empty(204, self._session_headers(session))

    def _check_content_range(self, request: Request, session: Session) -> None:
        value = request.headers.get("content-range")
        if value is None:
            return
        m = _CONTENT_RANGE_RE.match(value.strip())
        if m is None:
            raise RegistryError(
                "RANGE_INVALID",
                f"malformed Content-Range {value!r}",
                headers=self._session_headers(session),
            )
        start, end = int(m.group(1)), int(m.group(2))
        if start != session.offset or end < start:
            raise RegistryError(
                "RANGE_INVALID",
                f"chunk {start}-{end} does not continue the upload at offset {session.offset}",
                headers=self._session_headers(session),
            )
        if request.body_length is not None and request.body_length != end - start + 1:
            raise RegistryError(
                "RANGE_INVALID",
                f"Content-Range {value} does not match Content-Length {request.body_length}",
                headers=self._session_headers(session),
            )

    async def patch_upload(self, request: Request, params: dict[str, str]) -> Result:
        session = self.uploads.get(params["name"], params["uuid"])
        async with session.lock:
            self._check_content_range(request, session)
            await self.uploads.append(session, request.iter_body())
            return _empty(202, self._session_headers(session))

    async def finish_upload(self, request: Request, params: dict[str, str]) -> Result:
        session = self.uploads.get(params["name"], params["uuid"])
        digest = request.arg("digest")
        if digest is None:
            raise RegistryError("DIGEST_INVALID", "PUT needs ?digest=")
        async with session.lock:
            if request.has_body:
                self._check_content_range(request, session)
            return await self._finish(request, session, digest)

    async def _finish(self, request: Request, session: Session, digest: str) -> Result:
        try:
            check_digest(digest)
        except RegistryError:
            self.uploads.cancel(session)
            raise
        if request.has_body:
            await self.uploads.append(session, request.iter_body())
        await self.uploads.commit(session, digest)
        headers = {
            "Location": f"/v2/{session.name}/blobs/{digest}",
            "Docker-Content-Digest": digest,
        }
        return _empty(201, headers)

    async def cancel_upload(self, request: Request, params: dict[str, str]) -> Result:
        session = self.uploads.get(params["name"], params["uuid"])
        async with session.lock:
            self.uploads.cancel(session)
        return _empty(204, {})
