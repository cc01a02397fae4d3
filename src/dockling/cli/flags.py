"""Command-line flags parsed the way docker's (cobra/pflag) parser does.

Long flags `--name value` / `--name=value`, short flags `-n value` / `-nvalue`,
grouped booleans `-dit`, `--` ends flags.  With `interspersed=False` (run, create,
exec) parsing stops at the first positional so the container's own arguments are
left alone.  Errors carry docker's wording and exit codes.
"""

from __future__ import annotations

import builtins

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    Converter = Callable[[str], Any]

PROG = "dockling"


class UsageError(Exception):
    """A command line docker would reject; `text` is the whole stderr output."""

    def __init__(self, text: str, code: int) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


class HelpRequested(Exception):
    """--help was given; `text` is the help to print on stdout."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class Flag:
    """One flag: long and short names, kind ("bool", "value" or "list"), where it lands."""

    __slots__ = ("convert", "default", "dest", "help", "hidden", "kind", "long", "short")

    def __init__(
        self,
        long: str,
        short: str | None,
        kind: str,
        dest: str,
        default: Any,
        help: str,
        convert: Converter | None = None,
        hidden: bool = False,
    ) -> None:
        self.long = long
        self.short = short
        self.kind = kind
        self.dest = dest
        self.default = default
        self.help = help
        self.convert = convert
        self.hidden = hidden

    def label(self) -> str:
        return f"-{self.short}, --{self.long}" if self.short else f"--{self.long}"


class FlagSet:
    """The flags of one command, with the usage line docker prints for it."""

    def __init__(
        self,
        command: str,
        usage: str,
        description: str = "",
        *,
        interspersed: bool = True,
        min_args: int = 0,
        max_args: int | None = None,
        exact_args: bool = False,
    ) -> None:
        self.command = command  # e.g. "run" or "container ls"
        self.usage = usage  # e.g. "[OPTIONS] IMAGE [COMMAND] [ARG...]"
        self.description = description
        self.interspersed = interspersed
        self.min_args = min_args
        self.max_args = max_args
        self.exact_args = exact_args
        self.flags: builtins.list[Flag] = []

    def _add(self, flag: Flag) -> None:
        self.flags.append(flag)

    def bool(
        self,
        long: str,
        short: str | None = None,
        help: str = "",
        *,
        default: bool = False,
    ) -> None:
        self._add(Flag(long, short, "bool", long.replace("-", "_"), default, help))

    def value(
        self,
        long: str,
        short: str | None = None,
        help: str = "",
        *,
        default: Any = None,
        convert: Converter | None = None,
        dest: str | None = None,
    ) -> None:
        self._add(
            Flag(long, short, "value", dest or long.replace("-", "_"), default, help, convert)
        )

    def list(
        self,
        long: str,
        short: str | None = None,
        help: str = "",
        *,
        dest: str | None = None,
        convert: Converter | None = None,
    ) -> None:
        self._add(Flag(long, short, "list", dest or long.replace("-", "_"), None, help, convert))

    def alias(self, long: str, target: str) -> None:
        """Another long name for an existing flag (e.g. --net for --network)."""
        base = next(f for f in self.flags if f.long == target)
        self._add(Flag(long, None, base.kind, base.dest, base.default, "", base.convert, True))

    # -- output --------------------------------------------------------------------

    def usage_line(self) -> str:
        return f"Usage:  {PROG} {self.command} {self.usage}".rstrip()

    def flag_error(self, message: str) -> UsageError:
        text = (
            f"{message}\n\n{self.usage_line()}\n\n"
            f"Run '{PROG} {self.command} --help' for more information"
        )
        return UsageError(text, 125)

    def args_error(self, message: str, *, hint: str = "See") -> UsageError:
        # The docker CLI says "Run ... --help" for an exact count, "See ..." otherwise.
        text = (
            f"{PROG}: '{PROG} {self.command}' {message}\n\n{self.usage_line()}\n\n"
            f"{hint} '{PROG} {self.command} --help' for more information"
        )
        return UsageError(text, 1)

    def help_text(self) -> str:
        lines = [self.usage_line(), ""]
        if self.description:
            lines += [self.description, ""]
        shown = [f for f in self.flags if not f.hidden]
        if shown:
            lines.append("Options:")
            width = max(len(self._help_label(f)) for f in shown)
            for f in shown:
                lines.append(f"  {self._help_label(f).ljust(width)}   {f.help}".rstrip())
        return "\n".join(lines)

    @staticmethod
    def _help_label(f: Flag) -> str:
        head = f"-{f.short}, --{f.long}" if f.short else f"    --{f.long}"
        if f.kind == "bool":
            return head
        return head + (" list" if f.kind == "list" else " string")

    # -- parsing -------------------------------------------------------------------

    def _find_long(self, name: str) -> Flag | None:
        return next((f for f in self.flags if f.long == name), None)

    def _find_short(self, letter: str) -> Flag | None:
        return next((f for f in self.flags if f.short == letter), None)

    def _store(self, values: dict[str, Any], flag: Flag, raw: str) -> None:
        if flag.kind == "bool":
            lowered = raw.lower()
            if lowered in ("1", "t", "true"):
                values[flag.dest] = True
            elif lowered in ("0", "f", "false"):
                values[flag.dest] = False
            else:
                raise self.flag_error(
                    f'invalid argument "{raw}" for "{flag.label()}" flag: '
                    f'strconv.ParseBool: parsing "{raw}": invalid syntax'
                )
            return
        converted: Any = raw
        if flag.convert is not None:
            try:
                converted = flag.convert(raw)
            except ValueError as exc:
                raise self.flag_error(
                    f'invalid argument "{raw}" for "{flag.label()}" flag: {exc}'
                ) from None
        if flag.kind == "list":
            values.setdefault(flag.dest, []).append(converted)
        else:
            values[flag.dest] = converted

    def parse(self, args: Sequence[str]) -> tuple[dict[str, Any], builtins.list[str]]:
        """Flag values by dest (defaults filled in) and the positional arguments."""
        values: dict[str, Any] = {}
        positionals: builtins.list[str] = []
        i = 0
        n = len(args)
        while i < n:
            arg = args[i]
            i += 1
            if arg == "--":
                positionals.extend(args[i:])
                break
            if arg.startswith("--") and len(arg) > 2:
                name, eq, inline = arg[2:].partition("=")
                if name == "help":
                    raise HelpRequested(self.help_text())
                flag = self._find_long(name)
                if flag is None:
                    raise self.flag_error(f"unknown flag: --{name}")
                if flag.kind == "bool":
                    self._store(values, flag, inline if eq else "true")
                elif eq:
                    self._store(values, flag, inline)
                elif i < n:
                    self._store(values, flag, args[i])
                    i += 1
                else:
                    raise self.flag_error(f"flag needs an argument: --{name}")
                continue
            if arg.startswith("-") and len(arg) > 1:
                letters = arg[1:]
                j = 0
                while j < len(letters):
                    letter = letters[j]
                    j += 1
                    flag = self._find_short(letter)
                    if flag is None:
                        if letter == "h":
                            raise HelpRequested(self.help_text())
                        raise self.flag_error(f"unknown shorthand flag: '{letter}' in -{letters}")
                    if flag.kind == "bool":
                        if j < len(letters) and letters[j] == "=":
                            self._store(values, flag, letters[j + 1 :])
                            break
                        values[flag.dest] = True
                        continue
                    rest = letters[j:]
                    if rest.startswith("="):
                        rest = rest[1:]
                    if rest:
                        self._store(values, flag, rest)
                    elif i < n:
                        self._store(values, flag, args[i])
                        i += 1
                    else:
                        raise self.flag_error(f"flag needs an argument: '{letter}' in -{letters}")
                    break
                continue
            positionals.append(arg)
            if not self.interspersed:
                positionals.extend(args[i:])
                break
        for flag in self.flags:
            if flag.dest not in values:
                values[flag.dest] = [] if flag.kind == "list" else flag.default
        self._check_count(len(positionals))
        return values, positionals

    def _check_count(self, count: int) -> None:
        def plural(k: int) -> str:
            return "argument" if k == 1 else "arguments"

        if self.exact_args and count != self.min_args:
            raise self.args_error(f"requires {self.min_args} {plural(self.min_args)}", hint="Run")
        if count < self.min_args:
            raise self.args_error(f"requires at least {self.min_args} {plural(self.min_args)}")
        if self.max_args is not None and count > self.max_args:
            if self.max_args == 0:
                raise self.args_error("accepts no arguments", hint="Run")
            raise self.args_error(f"requires at most {self.max_args} {plural(self.max_args)}")
