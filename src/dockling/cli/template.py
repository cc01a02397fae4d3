"""A subset of Go's text/template, enough for docker's `--format` strings.

Supported: text, `{{pipeline}}`, field chains (`.State.Status`, `.`), method calls
with arguments (`.Label "k"`), functions (json, join, split, upper, lower, title,
index, len, printf, print, println, pad, truncate, eq, ne, not, and, or), `|`
pipes, parentheses, `{{if}}/{{else}}/{{end}}`, `{{range}}`, `{{with}}`, variables
(`$x := ...`, `$x = ...`, `range $k, $v := ...`, `$` for the data), and `{{-` `-}}`
whitespace trimming.  Values print like Go: maps as `map[k:v]`, lists as
`[a b]`, missing values as `<no value>`.
"""

from __future__ import annotations

import json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class TemplateError(Exception):
    """The format string does not parse or cannot be executed against the data."""


# -- values as Go prints them -----------------------------------------------------------


def go_str(value: Any) -> str:
    """The text Go's fmt prints for `value` (as text/template does)."""
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}" if value != int(value) or abs(value) >= 1e21 else str(int(value))
    if isinstance(value, dict):
        items = " ".join(f"{k}:{go_str_inner(v)}" for k, v in sorted(value.items()))
        return f"map[{items}]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_str_inner(v) for v in value) + "]"
    return str(value)


def go_str_inner(value: Any) -> str:
    # Nil values inside containers print as <nil>, not <no value>.
    return "<nil>" if value is None else go_str(value)


def to_json_value(value: Any) -> Any:
    """Plain JSON data for `value`; context objects expose `template_json()`."""
    hook = getattr(value, "template_json", None)
    if callable(hook):
        return hook()
    return value


def go_json(value: Any) -> str:
    """json.Marshal's text: compact, with <, >, & escaped as Go does."""
    text = json.dumps(to_json_value(value), separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def truthy(value: Any) -> bool:
    """Go's notion of a non-empty value for if/with/and/or/not."""
    if value is None:
        return False
    if isinstance(value, bool | int | float | str | list | tuple | dict):
        return bool(value)
    return True


def _printf(fmt: str, *args: Any) -> str:
    out: list[str] = []
    i = 0
    arg_iter = iter(args)
    while i < len(fmt):
        ch = fmt[i]
        if ch == "%" and i + 1 < len(fmt):
            spec = ""
            i += 1
            while i < len(fmt) and fmt[i] in "-+ 0#.123456789":
                spec += fmt[i]
                i += 1
            verb = fmt[i] if i < len(fmt) else "v"
            i += 1
            if verb == "%":
                out.append("%")
                continue
            arg = next(arg_iter, None)
            if verb in "sv":
                out.append(("%" + spec + "s") % go_str(arg))
            elif verb == "q":
                out.append(json.dumps(go_str(arg)))
            elif verb in "dxXof" and isinstance(arg, int | float):
                out.append(("%" + spec + verb) % arg)
            else:
                out.append(go_str(arg))
            continue
        out.append(ch)
        i += 1
    return "".join(out)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "json": go_json,
    "join": lambda items, sep: sep.join(go_str(v) for v in (items or [])),
    "split": lambda text, sep: str(text).split(sep),
    "upper": lambda text: go_str(text).upper(),
    "lower": lambda text: go_str(text).lower(),
    "title": lambda text: go_str(text).title(),
    "len": lambda v: len(v) if v is not None else 0,
    "index": lambda v, *keys: _index(v, keys),
    "printf": _printf,
    "print": lambda *a: "".join(go_str(v) for v in a),
    "println": lambda *a: " ".join(go_str(v) for v in a) + "\n",
    "pad": lambda text, left, right: " " * int(left) + go_str(text) + " " * int(right),
    "truncate": lambda text, n: go_str(text)[: int(n)],
    "eq": lambda a, *bs: any(a == b for b in bs),
    "ne": lambda a, b: a != b,
    "not": lambda v: not truthy(v),
    "and": lambda *a: next((v for v in a if not truthy(v)), a[-1] if a else None),
    "or": lambda *a: next((v for v in a if truthy(v)), a[-1] if a else None),
}


def _index(value: Any, keys: tuple[Any, ...]) -> Any:
    for key in keys:
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list | tuple):
            value = value[int(key)]
        else:
            raise TemplateError(f"can't index item of type {type(value).__name__}")
    return value


# -- parsing ----------------------------------------------------------------------------


class Field:
    """`.A.B` (names ["A", "B"]); no names means "." itself. `pos` is the token's offset
    in the template source, for Go's `:LINE:COL: executing "" at <.A.B>:` errors."""

    __slots__ = ("names", "pos", "text")

    def __init__(self, names: list[str], pos: int = 0, text: str = "") -> None:
        self.names = names
        self.pos = pos
        self.text = text


class Variable:
    """`$name.A.B`: a variable (`$` is the data) and a field chain on it."""

    __slots__ = ("name", "names", "pos", "text")

    def __init__(self, name: str, names: list[str], pos: int, text: str) -> None:
        self.name = name
        self.names = names
        self.pos = pos
        self.text = text


class Chain:
    """`(pipeline).A.B`: fields of a parenthesized result."""

    __slots__ = ("names", "pipeline", "pos", "text")

    def __init__(self, pipeline: Pipeline, names: list[str], pos: int, text: str) -> None:
        self.pipeline = pipeline
        self.names = names
        self.pos = pos
        self.text = text


class Literal:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class Ident:
    """A function name."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class Pipeline:
    """Commands joined by `|`; each command is a list of Field/Literal/Ident/Pipeline.
    `decl` names the variables it declares (`:=`) or, with `assign`, sets (`=`)."""

    __slots__ = ("assign", "commands", "decl")

    def __init__(
        self, commands: list[list[Any]], decl: list[str] | None = None, assign: bool = False
    ) -> None:
        self.commands = commands
        self.decl = decl or []
        self.assign = assign


class Block:
    """`if`, `range` or `with` with its body and else-body."""

    __slots__ = ("body", "else_body", "kind", "pipeline")

    def __init__(self, kind: str, pipeline: Pipeline) -> None:
        self.kind = kind
        self.pipeline = pipeline
        self.body: list[Any] = []
        self.else_body: list[Any] = []


def _tokenize_action(text: str, offsets: list[int] | None = None) -> list[str]:
    """The action's tokens; `offsets`, when given, receives each token's start."""
    tokens: list[str] = []
    starts: list[int] = [] if offsets is None else offsets
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "|(),":
            starts.append(i)
            tokens.append(ch)
            i += 1
        elif ch == '"':
            j = i + 1
            while j < len(text) and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if j >= len(text):
                raise TemplateError("unterminated quoted string")
            starts.append(i)
            tokens.append(text[i : j + 1])
            i = j + 1
        elif ch == "`":
            j = text.find("`", i + 1)
            if j < 0:
                raise TemplateError("unterminated raw quoted string")
            starts.append(i)
            tokens.append(text[i : j + 1])
            i = j + 1
        else:
            j = i
            while j < len(text) and not text[j].isspace() and text[j] not in "|(),":
                j += 1
            starts.append(i)
            tokens.append(text[i:j])
            i = j
    return tokens


def _parse_pipeline(
    tokens: list[str], pos: int = 0, until: str | None = None, starts: list[int] | None = None
) -> tuple[Pipeline, int]:
    commands: list[list[Any]] = [[]]
    decl: list[str] = []
    assign = False
    if until is None:
        # `$a := ...`, `$a, $b := ...` (range) or `$a = ...`
        for end in range(pos + 1, min(pos + 4, len(tokens))):
            if tokens[end] in (":=", "="):
                names = [t for t in tokens[pos:end] if t != ","]
                if names and all(t.startswith("$") and "." not in t for t in names):
                    decl, assign, pos = names, tokens[end] == "=", end + 1
                break
    while pos < len(tokens):
        tok = tokens[pos]
        if tok == until:
            return Pipeline(commands), pos + 1
        pos += 1
        if tok == "|":
            commands.append([])
        elif tok == "(":
            sub, pos = _parse_pipeline(tokens, pos, ")", starts)
            follows = pos < len(tokens) and tokens[pos].startswith(".")
            if follows and starts and starts[pos] == starts[pos - 1] + 1:
                # `(index $v 0).HostPort`: a field chain right after the parenthesis
                tok = tokens[pos]
                pos += 1
                chain = [n for n in tok.split(".") if n]
                commands[-1].append(Chain(sub, chain, starts[pos - 1], tok))
            else:
                commands[-1].append(sub)
        elif tok.startswith('"'):
            commands[-1].append(Literal(json.loads(tok)))
        elif tok.startswith("`"):
            commands[-1].append(Literal(tok[1:-1]))
        elif tok.startswith("$"):
            name, *chain = tok.split(".")
            commands[-1].append(Variable(name, chain, starts[pos - 1] if starts else 0, tok))
        elif tok.startswith("."):
            names = [n for n in tok.split(".") if n]
            # Go places a chain `.A.B` at its second part, and names it in errors.
            where = starts[pos - 1] if starts else 0
            if len(names) > 1:
                where += tok.index(".", 1)
            commands[-1].append(Field(names, where, tok))
        elif tok in ("true", "false"):
            commands[-1].append(Literal(tok == "true"))
        elif tok == "nil":
            commands[-1].append(Literal(None))
        elif tok.lstrip("-").replace(".", "", 1).isdigit():
            commands[-1].append(Literal(float(tok) if "." in tok else int(tok)))
        else:
            if tok not in FUNCTIONS:  # Go finds unknown functions when parsing
                raise TemplateError(f'function "{tok}" not defined')
            commands[-1].append(Ident(tok))
    if until is not None:
        raise TemplateError("unclosed left paren")
    if any(not c for c in commands):
        raise TemplateError("missing value for command")
    return Pipeline(commands, decl, assign), pos


def parse(source: str) -> list[Any]:
    """The template as a tree of text strings, Pipelines and Blocks. Errors name the
    line, as Go's do (":3: unclosed action")."""
    line = [1]
    try:
        return _parse_tree(source, line)
    except TemplateError as exc:
        raise TemplateError(f":{line[0]}: {exc}") from None


def _parse_tree(source: str, line: list[int]) -> list[Any]:
    root: list[Any] = []
    # (block, in_else, closes_parent): an `else if` block ends with its parent's {{end}}.
    stack: list[tuple[Block, bool, bool]] = []

    def current() -> list[Any]:
        if not stack:
            return root
        block, in_else, _ = stack[-1]
        return block.else_body if in_else else block.body

    pos = 0
    while True:
        start = source.find("{{", pos)
        if start < 0:
            current().append(source[pos:])
            break
        text = source[pos:start]
        line[0] = 1 + source.count("\n", 0, start)
        end = source.find("}}", start)
        if end < 0:
            raise TemplateError("unclosed action")
        inner = source[start + 2 : end]
        pos = end + 2
        if inner.startswith("-") and inner[1:2].isspace():
            text = text.rstrip()
            inner = inner[1:]
        if inner.endswith("-") and inner[-2:-1].isspace():
            inner = inner[:-1]
            rest = source[pos:]
            pos += len(rest) - len(rest.lstrip())
        if text:
            current().append(text)
        # Where `inner` starts in the source, after the "{{", a trim marker and blanks.
        base = end - len(inner) + (len(inner) - len(inner.lstrip()))
        inner = inner.strip()
        if inner.startswith("/*"):
            continue
        offsets: list[int] = []
        tokens = _tokenize_action(inner, offsets)
        starts = [base + o for o in offsets]
        if not tokens:
            raise TemplateError("missing value for command")
        head = tokens[0]
        if head in ("if", "range", "with"):
            pipe, _ = _parse_pipeline(tokens[1:], starts=starts[1:])
            block = Block(head, pipe)
            current().append(block)
            stack.append((block, False, False))
        elif head == "else":
            if not stack:
                raise TemplateError("unexpected {{else}}")
            block, _, closes_parent = stack.pop()
            stack.append((block, True, closes_parent))
            if len(tokens) > 1 and tokens[1] == "if":
                pipe, _ = _parse_pipeline(tokens[2:], starts=starts[2:])
                nested = Block("if", pipe)
                block.else_body.append(nested)
                stack.append((nested, False, True))
        elif head == "end":
            if not stack:
                raise TemplateError("unexpected {{end}}")
            _, _, closes_parent = stack.pop()
            while closes_parent:
                _, _, closes_parent = stack.pop()
        else:
            pipe, _ = _parse_pipeline(tokens, starts=starts)
            current().append(pipe)
    if stack:
        raise TemplateError("unexpected EOF")
    return root


# -- execution --------------------------------------------------------------------------


def _lookup(value: Any, name: str, *, strict: bool = False) -> Any:
    if isinstance(value, dict):
        if strict and name not in value and _struct_like(value, name):
            raise TemplateError(f'map has no entry for key "{name}"')
        return value.get(name)
    getter = getattr(value, "template_field", None)
    if callable(getter):
        return getter(name)
    if value is None:
        raise TemplateError(f"nil pointer evaluating .{name}")
    raise TemplateError(f"can't evaluate field {name} in type {type(value).__name__}")


def _struct_like(value: dict[str, Any], name: str) -> bool:
    """Whether a missing `name` in `value` is a missing struct field to docker's inspect.

    docker runs an inspect template on its typed structs first, where a missing map entry
    (a label, a network name) prints <no value>, and only falls back to the raw JSON, with
    missingkey=error, when a struct has no such field. Struct fields are exported, so a
    dict whose keys all start upper-case stands for a struct."""
    return name[:1].isupper() and bool(value) and all(k[:1].isupper() for k in value)


# Variables in scope, innermost last: [name, value] cells, so `=` updates in place.
if TYPE_CHECKING:
    Scope = list[list[Any]]


class Template:
    """A parsed template; `render(data)` executes it. `strict` is Go's
    missingkey=error, which docker's inspect uses: a missing map key is an error."""

    def __init__(self, source: str, *, strict: bool = False) -> None:
        self.source = source
        self.strict = strict
        self.tree = parse(source)

    def render(self, data: Any) -> str:
        out: list[str] = []
        self._run(self.tree, data, [["$", data]], out)
        return "".join(out)

    def _run(self, nodes: list[Any], dot: Any, scope: Scope, out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, str):
                out.append(node)
            elif isinstance(node, Pipeline):
                value = self._pipeline(node, dot, scope)
                if not node.decl:
                    out.append(go_str(value))
            elif isinstance(node, Block):
                mark = len(scope)  # what a block declares ends with it
                try:
                    self._block(node, dot, scope, out)
                finally:
                    del scope[mark:]

    def _block(self, node: Block, dot: Any, scope: Scope, out: list[str]) -> None:
        if node.kind != "range":
            value = self._pipeline(node.pipeline, dot, scope)
            if node.kind == "if":
                self._run(node.body if truthy(value) else node.else_body, dot, scope, out)
            elif truthy(value):
                self._run(node.body, value, scope, out)
            else:
                self._run(node.else_body, dot, scope, out)
            return
        value = self._pipeline(node.pipeline, dot, scope, declare=False)
        pairs: list[tuple[Any, Any]]
        if isinstance(value, dict):
            pairs = [(k, value[k]) for k in sorted(value)]
        elif value is None:
            pairs = []
        else:
            pairs = list(enumerate(value))
        if not pairs:
            self._run(node.else_body, dot, scope, out)
        decl = node.pipeline.decl
        for key, item in pairs:
            mark = len(scope)
            if len(decl) == 1:
                scope.append([decl[0], item])
            elif len(decl) == 2:
                scope += [[decl[0], key], [decl[1], item]]
            self._run(node.body, item, scope, out)
            del scope[mark:]

    def _pipeline(self, pipe: Pipeline, dot: Any, scope: Scope, *, declare: bool = True) -> Any:
        value: Any = None
        for index, command in enumerate(pipe.commands):
            piped = [value] if index > 0 else []
            value = self._command(command, dot, scope, piped)
        if declare and pipe.decl:
            if pipe.assign:
                self._cell(pipe.decl[0], scope)[1] = value
            else:
                scope.append([pipe.decl[0], value])
        return value

    @staticmethod
    def _cell(name: str, scope: Scope) -> list[Any]:
        for cell in reversed(scope):
            if cell[0] == name:
                return cell
        raise TemplateError(f'undefined variable "{name}"')

    def _arg(self, node: Any, dot: Any, scope: Scope) -> Any:
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Field):
            return self._field(node, dot)
        if isinstance(node, Variable):
            return self._field(node, self._cell(node.name, scope)[1])
        if isinstance(node, Pipeline):
            return self._pipeline(node, dot, scope)
        if isinstance(node, Chain):
            return self._field(node, self._pipeline(node.pipeline, dot, scope))
        if isinstance(node, Ident):
            return self._call(node.name, [])
        raise TemplateError("bad argument")

    def _field(self, node: Field | Variable | Chain, dot: Any) -> Any:
        value = dot
        try:
            for name in node.names:
                value = _lookup(value, name, strict=self.strict)
        except TemplateError as exc:
            raise self._located(node, str(exc)) from None
        return value

    def _check_arity(self, node: Field | Variable, method: Any, given: int) -> None:
        """Go's error for a method field called with the wrong number of arguments; only
        looked into once a call has failed, so rows render without inspecting signatures."""
        import inspect

        params = inspect.signature(method).parameters.values()
        wanted = sum(1 for p in params if p.default is p.empty and p.kind != p.VAR_POSITIONAL)
        most = given if any(p.kind == p.VAR_POSITIONAL for p in params) else len(params)
        if not wanted <= given <= most:
            name = node.names[-1] if node.names else "."
            raise self._located(node, f"wrong number of args for {name}: want {wanted} got {given}")

    def _located(self, node: Field | Variable | Chain, message: str) -> TemplateError:
        """Go's text/template names the place: line, column (0-based) and the node."""
        line = 1 + self.source.count("\n", 0, node.pos)
        col = node.pos - (self.source.rfind("\n", 0, node.pos) + 1)
        return TemplateError(f':{line}:{col}: executing "" at <{node.text}>: {message}')

    def _call(self, name: str, args: list[Any]) -> Any:
        func = FUNCTIONS.get(name)
        if func is None:
            raise TemplateError(f'function "{name}" not defined')
        try:
            return func(*args)
        except TypeError as exc:
            raise TemplateError(f"error calling {name}: {exc}") from None

    def _command(self, command: list[Any], dot: Any, scope: Scope, piped: list[Any]) -> Any:
        head = command[0]
        rest = [self._arg(a, dot, scope) for a in command[1:]] + piped
        if isinstance(head, Ident):
            return self._call(head.name, rest)
        value = self._arg(head, dot, scope)
        if callable(value):
            try:
                return value(*rest)
            except TypeError:
                if isinstance(head, Field | Variable):
                    self._check_arity(head, value, len(rest))
                raise
        if rest:
            raise TemplateError("can't give argument to non-function")
        return value


def render(source: str, data: Any) -> str:
    """Parse and execute `source` against `data` in one go."""
    return Template(source).render(data)
