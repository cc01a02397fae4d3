"""The registry's errors: the Distribution spec's codes and the one mapping to HTTP status.

Handlers raise `RegistryError(kind, detail)`; `kind` names a row of `KINDS`, which gives the
spec's code for the JSON body and the status.  Several kinds share one spec code where the
spec asks for a different status (an out-of-order chunk is BLOB_UPLOAD_INVALID with 416).
"""

from __future__ import annotations

import json
from typing import Any

# kind -> (spec code, HTTP status, message)
KINDS: dict[str, tuple[str, int, str]] = {
    "BLOB_UNKNOWN": ("BLOB_UNKNOWN", 404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": ("BLOB_UPLOAD_INVALID", 400, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": ("BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry"),
    "RANGE_INVALID": ("BLOB_UPLOAD_INVALID", 416, "requested range not satisfiable"),
    "DIGEST_INVALID": ("DIGEST_INVALID", 400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": ("MANIFEST_BLOB_UNKNOWN", 400, "manifest references unknown blob"),
    "MANIFEST_INVALID": ("MANIFEST_INVALID", 400, "manifest invalid"),
    "MANIFEST_UNKNOWN": ("MANIFEST_UNKNOWN", 404, "manifest unknown to registry"),
    "MANIFEST_TOO_LARGE": ("SIZE_INVALID", 413, "manifest exceeds the size limit"),
    "NAME_INVALID": ("NAME_INVALID", 400, "invalid repository name"),
    "NAME_UNKNOWN": ("NAME_UNKNOWN", 404, "repository name not known to registry"),
    "SIZE_INVALID": ("SIZE_INVALID", 400, "provided length did not match content length"),
    "UNAUTHORIZED": ("UNAUTHORIZED", 401, "authentication required"),
    "DENIED": ("DENIED", 403, "requested access to the resource is denied"),
    "UNSUPPORTED": ("UNSUPPORTED", 405, "the operation is unsupported"),
    "TOOMANYREQUESTS": ("TOOMANYREQUESTS", 429, "too many requests"),
    "PAGINATION_NUMBER_INVALID": ("PAGINATION_NUMBER_INVALID", 400, "invalid number of results"),
    "NOT_FOUND": ("NOT_FOUND", 404, "no route for this request"),
    "TOKEN_REQUEST_INVALID": ("UNSUPPORTED", 400, "invalid token request"),
    "METHOD_NOT_ALLOWED": ("UNSUPPORTED", 405, "method not allowed on this path"),
    "INTERNAL": ("UNKNOWN", 500, "internal server error"),
}


class RegistryError(Exception):
    """A failure answered with the spec's error body; `kind` is a key of `KINDS`."""

    def __init__(
        self, kind: str, detail: Any = None, *, headers: dict[str, str] | None = None
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown registry error kind {kind!r}")
        self.kind = kind
        self.code, self.status, self.message = KINDS[kind]
        self.detail = detail
        self.headers = headers or {}
        super().__init__(f"{self.code}: {detail if detail is not None else self.message}")

    def body(self) -> bytes:
        """The JSON error body the spec defines: {"errors": [{code, message, detail}]}."""
        entry: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        return json.dumps({"errors": [entry]}).encode() + b"\n"
