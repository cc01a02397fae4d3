"""The container record: what is persisted for each container, and its state machine.

The record is plain data; the service holds the live parts (tasks, locks) separately.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any

from dockling import errors
from dockling.containers.spec import (
    ContainerSpec,
    DeviceMapping,
    HealthcheckSpec,
    MountSpec,
    Resources,
    RestartPolicy,
    Ulimit,
)

ZERO_TIME = "0001-01-01T00:00:00Z"


class Status(enum.StrEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    REMOVING = "removing"
    EXITED = "exited"
    DEAD = "dead"


# The transitions a container may take; anything else is a bug or a user conflict.
_ALLOWED: dict[Status, frozenset[Status]] = {
    Status.CREATED: frozenset({Status.RUNNING, Status.EXITED, Status.REMOVING, Status.DEAD}),
    Status.RUNNING: frozenset({Status.PAUSED, Status.EXITED, Status.RESTARTING, Status.DEAD}),
    Status.PAUSED: frozenset({Status.RUNNING, Status.EXITED, Status.DEAD}),
    Status.RESTARTING: frozenset({Status.RUNNING, Status.EXITED, Status.REMOVING, Status.DEAD}),
    Status.EXITED: frozenset({Status.RUNNING, Status.RESTARTING, Status.REMOVING, Status.DEAD}),
    Status.REMOVING: frozenset({Status.DEAD}),
    Status.DEAD: frozenset({Status.REMOVING}),
}


@dataclass
class State:
    status: Status = Status.CREATED
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    oom_killed: bool = False

    def move(self, new: Status) -> None:
        if new is not self.status and new not in _ALLOWED[self.status]:
            raise errors.Conflict(f"cannot move container from {self.status} to {new}")
        self.status = new

    @property
    def running(self) -> bool:
        return self.status in (Status.RUNNING, Status.PAUSED)


@dataclass
class Process:
    """The process the container runs, after image defaults were applied."""

    path: str
    args: list[str]
    env: list[str]
    cwd: str
    user: str


@dataclass
class Container:
    id: str
    name: str
    created: str
    spec: ContainerSpec
    image_id: str
    image_ref: str
    process: Process
    hostname: str
    state: State = field(default_factory=State)
    restart_count: int = 0
    manually_stopped: bool = False
    mounts: list[MountSpec] = field(default_factory=list)
    runtime: str = "runc"
    exec_ids: list[str] = field(default_factory=list)

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Container:
        spec_data = dict(data["spec"])
        spec_data["mounts"] = tuple(MountSpec(**_tuples(m)) for m in spec_data.get("mounts", ()))
        spec_data["restart_policy"] = RestartPolicy(**spec_data.get("restart_policy", {}))
        spec_data["resources"] = Resources(**spec_data.get("resources", {}))
        spec_data["ulimits"] = tuple(Ulimit(**u) for u in spec_data.get("ulimits", ()))
        spec_data["devices"] = tuple(DeviceMapping(**d) for d in spec_data.get("devices", ()))
        health = spec_data.get("healthcheck")
        if isinstance(health, dict):
            spec_data["healthcheck"] = HealthcheckSpec(**_tuples(health))
        spec = ContainerSpec(**_tuples(spec_data))
        state = dict(data["state"])
        state["status"] = Status(state["status"])
        return cls(
            id=data["id"],
            name=data["name"],
            created=data["created"],
            spec=spec,
            image_id=data["image_id"],
            image_ref=data["image_ref"],
            process=Process(**data["process"]),
            hostname=data["hostname"],
            state=State(**state),
            restart_count=data.get("restart_count", 0),
            manually_stopped=data.get("manually_stopped", False),
            mounts=[MountSpec(**_tuples(m)) for m in data.get("mounts", [])],
            runtime=data.get("runtime", "runc"),
            exec_ids=list(data.get("exec_ids", [])),
        )


def _tuples(data: dict[str, Any]) -> dict[str, Any]:
    """JSON gives lists where the frozen specs hold tuples."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
