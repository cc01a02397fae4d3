"""Docker's `filters` query parameter: JSON of {key: [values]} or the old {key: {value: true}}."""

from __future__ import annotations

import json

from dockling import errors

CONTAINER_FILTERS = frozenset(
    {
        "ancestor", "before", "expose", "exited", "health", "id", "isolation", "is-task",
        "label", "label!", "name", "network", "publish", "since", "status", "volume",
    }
)  # fmt: skip
CONTAINER_PRUNE_FILTERS = frozenset({"until", "label", "label!"})
IMAGE_FILTERS = frozenset(["before", "dangling", "label", "label!", "reference", "since", "until"])
IMAGE_PRUNE_FILTERS = frozenset({"dangling", "until", "label", "label!"})
NETWORK_FILTERS = frozenset(
    {"dangling", "driver", "id", "label", "label!", "name", "scope", "type"}
)
VOLUME_FILTERS = frozenset(["dangling", "driver", "label", "label!", "name"])
VOLUME_PRUNE_FILTERS = frozenset({"label", "label!", "all"})


def parse_filters(raw: str, allowed: frozenset[str] | None = None) -> dict[str, list[str]]:
    """The `filters` query parameter (JSON); with `allowed`, another key is refused as
    dockerd refuses it ("Invalid filter 'key'") rather than ignored."""
    result = _parse(raw)
    if allowed is not None:
        for key in result:
            if key not in allowed:
                raise errors.InvalidParameter(f"Invalid filter '{key}'")
    return result


def _parse(raw: str) -> dict[str, list[str]]:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise errors.InvalidParameter(f"invalid filter: {raw!r}") from None
    if not isinstance(data, dict):
        raise errors.InvalidParameter(f"invalid filter: {raw!r}")
    result: dict[str, list[str]] = {}
    for key, values in data.items():
        if isinstance(values, dict):
            result[key] = [v for v, on in values.items() if on]
        elif isinstance(values, list):
            result[key] = [str(v) for v in values]
        else:
            result[key] = [str(values)]
    return result
