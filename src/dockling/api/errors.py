"""The only mapping from dockling errors to HTTP status codes (as moby's httpstatus does)."""

from __future__ import annotations

import json
import logging

from dockling import errors
from dockling.api.http import Response

log = logging.getLogger(__name__)

_STATUS: tuple[tuple[type[errors.DocklingError], int], ...] = (
    (errors.InvalidParameter, 400),
    (errors.Unauthorized, 401),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.NotModified, 304),
    (errors.NotImplementedFeature, 501),
    (errors.Unavailable, 503),
)


def status_for(exc: BaseException) -> int:
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 500


def error_response(exc: BaseException) -> Response:
    status = status_for(exc)
    if isinstance(exc, errors.DocklingError):
        message = exc.message
    else:
        log.exception("internal error", exc_info=exc)
        message = f"internal error: {type(exc).__name__}: {exc}"
    return Response(status=status, body=json.dumps({"message": message}).encode() + b"\n")
