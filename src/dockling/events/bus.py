"""The event bus: every state change is published here and streamed by GET /events."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    type: str  # container, image, volume, network, daemon
    action: str  # create, start, die, ...
    actor_id: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    time_nano: int = 0

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "Type": self.type,
            "Action": self.action,
            "Actor": {"ID": self.actor_id, "Attributes": dict(self.attributes)},
            "scope": "local",
            "time": self.time_nano // 1_000_000_000,
            "timeNano": self.time_nano,
        }
        if self.type == "container":
            # The pre-1.22 fields that the docker CLI still reads for containers.
            data["status"] = self.action
            data["id"] = self.actor_id
            data["from"] = self.attributes.get("image", "")
        return data


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Docker's --filter for events: each key must match one of its values (OR within a key)."""

    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def matches(self, event: Event) -> bool:
        for key, values in self.filters.items():
            if not values:
                continue
            if key == "type" and event.type not in values:
                return False
            if key in ("event", "action") and not any(
                event.action == v or event.action.split(":")[0] == v for v in values
            ):
                return False
            if key in ("container", "image", "volume", "network") and not self._actor(
                key, event, values
            ):
                return False
            if key == "label" and not all(self._label(event, v) for v in values):
                return False
        return True

    @staticmethod
    def _actor(key: str, event: Event, values: tuple[str, ...]) -> bool:
        if key == "image" and event.type == "container":
            return event.attributes.get("image", "") in values
        if event.type != key:
            return False
        name = event.attributes.get("name", "")
        return any(event.actor_id.startswith(v) or name == v for v in values)

    @staticmethod
    def _label(event: Event, selector: str) -> bool:
        key, sep, value = selector.partition("=")
        if key not in event.attributes:
            return False
        return not sep or event.attributes[key] == value


class EventBus:
    """Publish/subscribe with a bounded history so `--since` can replay recent events."""

    def __init__(self, history: int = 1024) -> None:
        self._history: deque[Event] = deque(maxlen=history)
        self._subscribers: set[asyncio.Queue[Event]] = set()

    def publish(
        self, type_: str, action: str, actor_id: str, attributes: Mapping[str, str] | None = None
    ) -> Event:
        event = Event(type_, action, actor_id, dict(attributes or {}), time.time_ns())
        self._history.append(event)
        for queue in list(self._subscribers):
            queue.put_nowait(event)
        return event

    async def subscribe(
        self,
        event_filter: EventFilter,
        *,
        since_ns: int | None = None,
        until_ns: int | None = None,
    ) -> AsyncIterator[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._subscribers.add(queue)
        try:
            if since_ns is not None:
                for event in list(self._history):
                    if event.time_nano < since_ns:
                        continue
                    if until_ns is not None and event.time_nano > until_ns:
                        return
                    if event_filter.matches(event):
                        yield event
            while True:
                if until_ns is not None:
                    remaining = (until_ns - time.time_ns()) / 1e9
                    if remaining <= 0:
                        return
                    try:
                        event = await asyncio.wait_for(queue.get(), remaining)
                    except TimeoutError:
                        return
                else:
                    event = await queue.get()
                if since_ns is not None and event.time_nano < since_ns:
                    continue
                if event_filter.matches(event):
                    yield event
        finally:
            self._subscribers.discard(queue)
