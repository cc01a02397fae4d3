"""Instruction flags (`COPY --from=x`, `RUN --mount=...`): Docker's BFlags rules and values.

A string flag needs `=value`; a bool flag is `--link` or `--link=true|false`; a
repeatable flag collects every value; unknown flags are refused with a suggestion.
Also the value parsers flags need: Go durations and `--mount` option lists.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, replace

from dockling.build.instructions import RunMount
from dockling.build.suggest import did_you_mean
from dockling.errors import InvalidParameter


@dataclass(frozen=True)
class FlagSpec:
    """The flags one instruction accepts: name -> kind ("string", "bool", "strings")."""

    kinds: dict[str, str]


def parse_flags(flags: tuple[str, ...], kinds: dict[str, str]) -> dict[str, str | bool | list[str]]:
    """The values of `flags` (each `--name[=value]`) for an instruction accepting `kinds`.

    Flags not given are absent from the result.  Raises InvalidParameter for an unknown
    flag, a string flag without a value, a bad bool, or a repeated non-list flag.
    """
    values: dict[str, str | bool | list[str]] = {}
    for raw in flags:
        if not raw.startswith("--"):
            raise InvalidParameter(f"arg should start with -- : {raw}")
        if raw == "--":
            break
        body = raw[2:]
        name, has_value, value = body.partition("=")
        kind = kinds.get(name)
        if kind is None:
            raise InvalidParameter(
                f"unknown flag: {name}" + did_you_mean(name, sorted(kinds), upper=False)
            )
        if name in values and kind != "strings":
            raise InvalidParameter(f"Duplicate flag specified: {name}")
        if kind == "bool":
            if has_value and value.lower() not in ("true", "false"):
                raise InvalidParameter(f"expecting boolean value for flag {name}, not: {value}")
            values[name] = not has_value or value.lower() == "true"
        elif not has_value:
            raise InvalidParameter(f"missing a value on flag: {name}")
        elif kind == "strings":
            previous = values.get(name)
            values[name] = [*previous, value] if isinstance(previous, list) else [value]
        else:
            values[name] = value
    return values


_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def _parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?", text.strip().lower())
    if match is None:
        raise InvalidParameter(f"invalid size: '{text}'")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


def _parse_bool(key: str, value: str | None) -> bool:
    if value is None:
        return True
    lowered = value.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise InvalidParameter(f"invalid value for {key}: {value}")


def _parse_int(key: str, value: str | None, base: int = 10) -> int:
    try:
        return int(value or "", base)
    except ValueError:
        raise InvalidParameter(f"invalid value for {key}: {value}") from None


MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")


def parse_mount(spec: str) -> RunMount:
    """One `RUN --mount=` value (comma-separated, CSV-quoted key[=value] fields).

    Bind, secret and ssh mounts are read-only unless `rw`; a cache's id defaults to
    its target; bind, cache and tmpfs need a target; a secret needs an id or a target.
    """
    fields = next(csv.reader([spec]), [])
    kind = "bind"
    options: list[tuple[str, str | None, str]] = []
    for field in fields:
        key, has_value, value = field.partition("=")
        key = key.strip().lower()
        if key == "type":
            if value not in MOUNT_TYPES:
                raise InvalidParameter(f'unsupported mount type "{value}"')
            kind = value
        else:
            options.append((key, value if has_value else None, field))
    mount = RunMount(type=kind, target=None, readonly=kind in ("bind", "secret", "ssh"))
    for option_key, option_value, option_field in options:
        mount = _mount_option(mount, option_key, option_value, option_field)
    if kind == "secret" and mount.target is None and mount.id is None:
        raise InvalidParameter("secret mount requires an id or a target")
    if kind in ("bind", "cache", "tmpfs") and not mount.target:
        raise InvalidParameter(f"mount type={kind} requires a target")
    if kind == "cache" and mount.id is None:
        mount = replace(mount, id=mount.target)
    return mount


def _mount_option(mount: RunMount, key: str, value: str | None, field: str) -> RunMount:
    if key in ("target", "dst", "destination"):
        return replace(mount, target=value)
    if key in ("source", "src"):
        return replace(mount, source=value)
    if key in ("readonly", "ro"):
        return replace(mount, readonly=_parse_bool(key, value))
    if key in ("readwrite", "rw"):
        return replace(mount, readonly=not _parse_bool(key, value))
    if key == "id":
        return replace(mount, id=value)
    if key == "from":
        return replace(mount, from_=value)
    if key == "env":
        return replace(mount, env=value)
    if key == "sharing":
        if value not in ("shared", "private", "locked"):
            raise InvalidParameter(f'unsupported sharing value "{value}"')
        return replace(mount, sharing=value)
    if key == "required":
        return replace(mount, required=_parse_bool(key, value))
    if key == "mode":
        return replace(mount, mode=_parse_int(key, value, 8))
    if key == "uid":
        return replace(mount, uid=_parse_int(key, value))
    if key == "gid":
        return replace(mount, gid=_parse_int(key, value))
    if key == "size":
        return replace(mount, size=_parse_size(value or ""))
    raise InvalidParameter(f"unexpected key '{key}' in '{field}'")
