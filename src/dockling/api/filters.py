"""Docker's `filters` query parameter: JSON of {key: [values]} or the old {key: {value: true}}."""

from __future__ import annotations

import json

from dockling import errors


def parse_filters(raw: str) -> dict[str, list[str]]:
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
