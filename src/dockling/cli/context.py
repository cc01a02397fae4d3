"""What every command receives: the daemon address and a lazily made API client."""

from __future__ import annotations

TYPE_CHECKING = False

if TYPE_CHECKING:
    from dockling.client.api import EngineClient


class CLIError(Exception):
    """Stop the command: print `message` (if any) on stderr and exit with `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Context:
    """Per-invocation state shared by command functions."""

    def __init__(self, host: str | None = None) -> None:
        self.host_flag = host
        self._client: EngineClient | None = None

    @property
    def client(self) -> EngineClient:
        if self._client is None:
            from dockling.client.api import EngineClient

            self._client = EngineClient(self.host_flag)
        return self._client
