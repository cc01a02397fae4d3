"""The one error hierarchy of dockling.

    DocklingError                  base; the message is one actionable line
    ├── InvalidParameter           bad flag, value, reference, unsafe layer path
    ├── NotFound                   ContainerNotFound, ImageNotFound, VolumeNotFound, ExecNotFound
    ├── Conflict                   NameInUse, ImageInUse, ContainerRunning, ContainerNotRunning,
    │   └── AlreadyExists          VolumeInUse
    ├── NotModified                start of a started container (Docker answers 304)
    ├── Unauthorized / Forbidden   registry credentials / denied scope
    ├── Unavailable                runtime binary missing, daemon shutting down
    ├── NotImplemented             feature or platform not supported here
    ├── DataCorrupted              digest or size mismatch
    └── SystemError                runc, mount or kernel failure; always raised `from` the cause

Domain code raises only these.  The single mapping to HTTP status codes lives in
`dockling.api.errors`; the CLI rebuilds the category from the status code.
"""

from __future__ import annotations


class DocklingError(Exception):
    """Base of every error dockling raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidParameter(DocklingError):
    """The caller asked for something malformed; retrying the same request fails the same way."""


class NotFound(DocklingError):
    """The named object does not exist."""


class ContainerNotFound(NotFound):
    def __init__(self, ref: str) -> None:
        super().__init__(f"No such container: {ref}")


class ImageNotFound(NotFound):
    def __init__(self, ref: str) -> None:
        super().__init__(f"No such image: {ref}")


class VolumeNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"get {name}: no such volume")


class ExecNotFound(NotFound):
    def __init__(self, exec_id: str) -> None:
        super().__init__(f"No such exec instance: {exec_id}")


class Conflict(DocklingError):
    """The request is valid but clashes with the current state of an object."""


class AlreadyExists(Conflict):
    """An object with this identity exists already."""


class NameInUse(Conflict):
    pass


class ImageInUse(Conflict):
    pass


class ContainerRunning(Conflict):
    pass


class ContainerNotRunning(Conflict):
    pass


class VolumeInUse(Conflict):
    pass


class NotModified(DocklingError):
    """The request asked for the state the object is already in."""


class Unauthorized(DocklingError):
    """Credentials are missing or wrong."""


class Forbidden(DocklingError):
    """Credentials are valid but do not allow the operation."""


class Unavailable(DocklingError):
    """A dependency (runtime binary, registry, the daemon itself) cannot serve now."""


class NotImplementedFeature(DocklingError):
    """The feature or platform is not supported by this build or host."""


class DataCorrupted(DocklingError):
    """Stored or received data does not match its digest or size."""


class SystemError(DocklingError):
    """The OS or an OCI runtime failed; raised `from` the underlying exception."""


class RuntimeStartError(SystemError):
    """The OCI runtime could not start the container's process.

    `kind` tells the CLI which of Docker's exit codes applies: "not-found" (127),
    "not-executable" (126) or "other" (125).
    """

    def __init__(self, message: str, *, kind: str = "other") -> None:
        super().__init__(message)
        self.kind = kind
