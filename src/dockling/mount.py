"""The `Mount` value shared by snapshots, volumes and the runtime."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Mount:
    """One filesystem mount as the OCI runtime spec describes it.

    `target` is empty for a root filesystem mount (the snapshotter's answer); `options`
    are mount(8)-style option strings such as "lowerdir=...", "ro", "rbind".
    """

    type: str
    source: str
    target: str = ""
    options: tuple[str, ...] = field(default_factory=tuple)

    def to_oci(self) -> dict[str, object]:
        return {
            "destination": self.target,
            "type": self.type,
            "source": self.source,
            "options": list(self.options),
        }
