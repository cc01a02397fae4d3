"""Access rules: which user may do what to which repositories.

The rules file (`--access FILE`) is JSON or a plain text format, one rule per line:

    # USER       PREFIX      ACTIONS
    alice        team/       pull,push,delete
    *            public/     pull
    anonymous    public/     pull
    admin        *           *

JSON holds the same rules: `{"rules": [{"user": "alice", "prefix": "team/",
"actions": ["pull", "push"]}]}` (or the bare list).

USER is a user name from the htpasswd file, `*` (any authenticated user) or `anonymous`
(anyone, logged in or not).  PREFIX is a repository name or a path prefix: `team` and `team/`
both match `team` and everything under `team/` but not `teamx`; `*` (or an empty string)
matches every repository.  ACTIONS are `pull`, `push`, `delete`, `catalog` (the `_catalog`
listing, which only a rule with prefix `*` can grant) and `*` (all of them).  A user's
actions on a repository are the union of every rule that matches; no rule, no access.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockling import errors

ACTIONS = frozenset({"pull", "push", "delete", "catalog", "*"})
ANONYMOUS = "anonymous"
ANY_USER = "*"


@dataclass(frozen=True, slots=True)
class Rule:
    user: str
    prefix: str  # without a trailing "/"; "" matches everything
    actions: frozenset[str]

    def matches(self, user: str | None, name: str) -> bool:
        """True when the rule applies to `user` (None: not logged in) on repository `name`."""
        if self.user == ANONYMOUS:
            pass
        elif user is None or (self.user != ANY_USER and self.user != user):
            return False
        p = self.prefix
        return not p or name == p or name.startswith(p + "/")


def _rule(user: str, prefix: str, actions: list[str], where: str) -> Rule:
    if not user:
        raise errors.InvalidParameter(f"{where}: empty user")
    unknown = set(actions) - ACTIONS
    if unknown or not actions:
        raise errors.InvalidParameter(
            f"{where}: actions must be some of {', '.join(sorted(ACTIONS))}, got {actions}"
        )
    prefix = "" if prefix == "*" else prefix.strip().rstrip("/")
    return Rule(user, prefix, frozenset(actions))


def _parse_json(text: str, source: str) -> list[Rule]:
    try:
        doc: Any = json.loads(text)
    except ValueError as exc:
        raise errors.InvalidParameter(f"{source}: invalid JSON: {exc}") from None
    entries = doc.get("rules") if isinstance(doc, dict) else doc
    if not isinstance(entries, list):
        raise errors.InvalidParameter(f'{source}: expected {{"rules": [...]}} or a list')
    rules: list[Rule] = []
    for i, entry in enumerate(entries):
        where = f"{source}: rule {i}"
        if not isinstance(entry, dict):
            raise errors.InvalidParameter(f"{where}: expected an object")
        actions = entry.get("actions", [])
        if isinstance(actions, str):
            actions = actions.split(",")
        if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
            raise errors.InvalidParameter(f"{where}: actions must be a list of strings")
        rules.append(
            _rule(str(entry.get("user", "")), str(entry.get("prefix", "")), actions, where)
        )
    return rules


def _parse_text(text: str, source: str) -> list[Rule]:
    rules: list[Rule] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 3:
            raise errors.InvalidParameter(f"{source}:{lineno}: expected USER PREFIX ACTIONS")
        user, prefix, actions = fields
        rules.append(_rule(user, prefix, actions.split(","), f"{source}:{lineno}"))
    return rules


class AccessRules:
    """The parsed rules; `actions` answers what a user may do to a repository."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules

    @classmethod
    def parse(cls, text: str, source: str = "<rules>") -> AccessRules:
        """Rules from JSON (text starting with `{` or `[`) or the line format."""
        stripped = text.lstrip()
        if stripped.startswith(("{", "[")):
            return cls(_parse_json(text, source))
        return cls(_parse_text(text, source))

    @classmethod
    def load(cls, path: Path) -> AccessRules:
        return cls.parse(path.read_text(), str(path))

    def actions(self, user: str | None, name: str) -> frozenset[str]:
        """What `user` (None: anonymous) may do to repository `name`: pull, push, delete."""
        granted: set[str] = set()
        for rule in self.rules:
            if rule.matches(user, name):
                granted |= rule.actions
        if "*" in granted:
            return frozenset({"pull", "push", "delete"})
        return frozenset(granted & {"pull", "push", "delete"})

    def may_list_catalog(self, user: str | None) -> bool:
        """True when a rule over every repository grants `catalog` (or `*`) to `user`."""
        return any(
            not rule.prefix and rule.matches(user, "") and rule.actions & {"catalog", "*"}
            for rule in self.rules
        )
